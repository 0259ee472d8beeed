// src/core/ledger/request.cpp: canonical request bytes (see request.h).
#include "core/no_postgres.h"

#include "core/ledger/request.h"

namespace ducto::ledger {
namespace {

constexpr char kNull = 0;
constexpr char kText = 1;
constexpr char kInteger = 2;

}  // namespace

RequestBytes::RequestBytes(std::string_view operation) { text(operation); }

RequestBytes& RequestBytes::text(std::optional<std::string_view> value) {
  if (!value) {
    bytes_ += kNull;
    return *this;
  }
  bytes_ += kText;
  append_u64(value->size());
  bytes_.append(*value);
  return *this;
}

RequestBytes& RequestBytes::integer(std::optional<std::int64_t> value) {
  if (!value) {
    bytes_ += kNull;
    return *this;
  }
  bytes_ += kInteger;
  append_u64(static_cast<std::uint64_t>(*value));
  return *this;
}

void RequestBytes::append_u64(std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) bytes_ += static_cast<char>((value >> shift) & 0xFF);
}

}  // namespace ducto::ledger
