// src/core/ledger/lots.cpp: lot bookkeeping and the plans of the credit operations (see lots.h).
#include "core/no_postgres.h"

#include "core/ledger/lots.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace ducto::ledger {
namespace {

[[noreturn]] void broken(const std::string& what) {
  throw Error(Errc::invalid_value, "internal ledger error: " + what);
}

void check_lot(const Lot& lot) {
  if (lot.earmarked < 0 || lot.earmarked > lot.remaining) {
    broken("lot " + std::to_string(lot.id) + " would hold " + format_micros(lot.remaining) + " with " +
           format_micros(lot.earmarked) + " earmarked");
  }
}

}  // namespace

// ---- LotBook ---------------------------------------------------------------------------------------
// Books hold the few lots one operation touches: a linear search beats hashing at that size.

std::size_t LotBook::index_of(std::int64_t id) const {
  for (std::size_t i = 0; i < current_.size(); ++i) {
    if (current_[i].id == id) return i;
  }
  return current_.size();
}

void LotBook::add(const Lot& lot) {
  if (contains(lot.id)) return;
  original_.push_back(lot);
  current_.push_back(lot);
}

bool LotBook::contains(std::int64_t id) const { return index_of(id) < current_.size(); }

const Lot& LotBook::lot(std::int64_t id) const {
  const std::size_t index = index_of(id);
  if (index == current_.size()) broken("lot " + std::to_string(id) + " was not read");
  return current_[index];
}

Lot& LotBook::mutable_lot(std::int64_t id) { return const_cast<Lot&>(lot(id)); }

Micros LotBook::take_free(std::int64_t id, Micros micros) {
  Lot& lot = mutable_lot(id);
  const Micros taken = std::clamp<Micros>(lot.free(), 0, micros);
  lot.remaining -= taken;
  return taken;
}

Micros LotBook::earmark_free(std::int64_t id, Micros micros) {
  Lot& lot = mutable_lot(id);
  const Micros earmarked = std::clamp<Micros>(lot.free(), 0, micros);
  lot.earmarked += earmarked;
  return earmarked;
}

void LotBook::unearmark(std::int64_t id, Micros micros) {
  Lot& lot = mutable_lot(id);
  lot.earmarked -= micros;
  check_lot(lot);
}

void LotBook::spend_earmarked(std::int64_t id, Micros micros) {
  Lot& lot = mutable_lot(id);
  lot.remaining -= micros;
  lot.earmarked -= micros;
  check_lot(lot);
}

void LotBook::restore(std::int64_t id, Micros micros) {
  Lot& lot = mutable_lot(id);
  lot.remaining = checked_add(lot.remaining, micros);
}

Micros LotBook::expire(std::int64_t id) {
  Lot& lot = mutable_lot(id);
  const Micros expired = lot.free();
  lot.remaining = lot.earmarked;
  return expired;
}

std::vector<Lot> LotBook::changed() const {
  std::vector<Lot> changed;
  for (std::size_t i = 0; i < current_.size(); ++i) {
    if (current_[i] != original_[i]) changed.push_back(current_[i]);
  }
  return changed;
}

// ---- plans -----------------------------------------------------------------------------------------

namespace {

template <class Move>
std::vector<Part> in_order(LotBook& book, std::span<const std::int64_t> order, Micros amount, Move move) {
  std::vector<Part> parts;
  Micros rest = amount;
  for (const std::int64_t id : order) {
    if (rest == 0) break;
    const Micros moved = move(book, id, rest);
    if (moved > 0) {
      parts.push_back({id, moved});
      rest -= moved;
    }
  }
  if (rest > 0) parts.push_back({kOverdraft, rest});
  return parts;
}

}  // namespace

std::vector<Part> take_in_order(LotBook& book, std::span<const std::int64_t> order, Micros amount) {
  return in_order(book, order, amount,
                  [](LotBook& b, std::int64_t id, Micros rest) { return b.take_free(id, rest); });
}

std::vector<Part> earmark_in_order(LotBook& book, std::span<const std::int64_t> order, Micros amount) {
  return in_order(book, order, amount,
                  [](LotBook& b, std::int64_t id, Micros rest) { return b.earmark_free(id, rest); });
}

void release_hold(LotBook& book, std::span<const Part> hold_parts) {
  for (const Part& part : hold_parts) {
    if (part.lot_id != kOverdraft) book.unearmark(part.lot_id, part.micros);
  }
}

std::vector<Part> settle_hold(LotBook& book, std::span<const Part> hold_parts, Micros amount,
                              std::span<const std::int64_t> order) {
  std::vector<Part> parts;
  Micros rest = amount;
  for (const Part& part : hold_parts) {
    const Micros spent = std::min(part.micros, rest);
    if (part.lot_id != kOverdraft) {
      book.spend_earmarked(part.lot_id, spent);
      book.unearmark(part.lot_id, part.micros - spent);
    }
    if (spent > 0) parts.push_back({part.lot_id, spent});
    rest -= spent;
  }
  if (rest > 0) {
    const std::vector<Part> excess = take_in_order(book, order, rest);
    parts.insert(parts.end(), excess.begin(), excess.end());
  }
  return parts;
}

std::vector<Part> restoration_parts(std::span<const Part> debit_parts, Micros already_refunded, Micros amount) {
  if (already_refunded < 0 || amount < 0 || already_refunded + amount > total_of(debit_parts)) {
    broken("a refund beyond its debit");
  }
  std::vector<Part> parts;
  Micros skip = already_refunded;
  Micros rest = amount;
  for (auto part = debit_parts.rbegin(); part != debit_parts.rend() && rest > 0; ++part) {
    const Micros skipped = std::min(skip, part->micros);
    skip -= skipped;
    const Micros restored = std::min(part->micros - skipped, rest);
    if (restored > 0) {
      parts.push_back({part->lot_id, restored});
      rest -= restored;
    }
  }
  return parts;
}

void restore_lots(LotBook& book, std::span<const Part> parts) {
  for (const Part& part : parts) {
    if (part.lot_id != kOverdraft) book.restore(part.lot_id, part.micros);
  }
}

OverdraftRestoration restore_overdraft(Micros debt, Micros micros) {
  const Micros repaid = std::clamp<Micros>(debt, 0, micros);
  return {repaid, micros - repaid};
}

Micros debt_repaid_by_grant(Micros debt, Micros granted) { return std::clamp<Micros>(debt, 0, granted); }

std::vector<Part> expire_due(LotBook& book, std::int64_t now) {
  std::vector<Part> expired;
  for (const Lot& lot : book.lots()) {
    if (lot.expired_at(now) && lot.free() > 0) expired.push_back({lot.id, 0});
  }
  for (Part& part : expired) part.micros = book.expire(part.lot_id);
  return expired;
}

std::optional<std::int64_t> next_expiry(const LotBook& book, std::int64_t now) {
  std::optional<std::int64_t> next;
  for (const Lot& lot : book.lots()) {
    if (lot.free() > 0 && lot.expires_at && !lot.expired_at(now)) next = earliest(next, lot.expires_at);
  }
  return next;
}

Micros total_of(std::span<const Part> parts) {
  Micros total = 0;
  for (const Part& part : parts) total = checked_add(total, part.micros);
  return total;
}

Micros overdraft_of(std::span<const Part> parts) {
  Micros total = 0;
  for (const Part& part : parts) {
    if (part.lot_id == kOverdraft) total = checked_add(total, part.micros);
  }
  return total;
}

std::optional<std::int64_t> earliest(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

}  // namespace ducto::ledger
