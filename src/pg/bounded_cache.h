// src/pg/bounded_cache.h: a small least-recently-used map from byte strings to values.
//
// The per-backend caches of compiled formulas and configs use it: their keys are untrusted SQL input, so
// the number of entries is capped. Pure C++ (no Postgres call); lookups take a string_view and do not
// allocate, and the most recent entry is checked first because a query usually repeats one key per row.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace ducto::pg {

template <class Value>
class BoundedCache {
 public:
  explicit BoundedCache(std::size_t capacity) : capacity_(capacity) {}
  BoundedCache(const BoundedCache&) = delete;
  BoundedCache& operator=(const BoundedCache&) = delete;

  // The value stored under `key` (now the most recent), or nullptr.
  Value* find(std::string_view key) {
    if (entries_.empty()) return nullptr;
    if (entries_.front().first == key) return &entries_.front().second;
    const auto found = index_.find(key);
    if (found == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, found->second);
    return &found->second->second;
  }

  // Stores `value` under `key` (which must not be present), evicting the least recently used entry
  // when full. Returns the stored value.
  Value& insert(std::string_view key, Value value) {
    if (entries_.size() >= capacity_) {
      index_.erase(std::string_view(entries_.back().first));
      entries_.pop_back();
    }
    entries_.emplace_front(std::string(key), std::move(value));
    try {
      index_.emplace(std::string_view(entries_.front().first), entries_.begin());
    } catch (...) {
      entries_.pop_front();  // keep the list and the index in step
      throw;
    }
    return entries_.front().second;
  }

  void clear() {
    index_.clear();
    entries_.clear();
  }
  std::size_t size() const { return entries_.size(); }

 private:
  using Entry = std::pair<std::string, Value>;
  std::size_t capacity_;
  std::list<Entry> entries_;  // most recent first; list nodes never move, so index_ keys stay valid
  std::unordered_map<std::string_view, typename std::list<Entry>::iterator> index_;
};

}  // namespace ducto::pg
