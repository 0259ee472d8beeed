// src/core/ledger/lots.h: how credit moves between lots (design.md, Accounts, lots and holds).
//
// Credits arrive as lots; a debit consumes the free (unearmarked) credit of usable lots in consumption
// order, a hold earmarks it, settling spends the earmark, a refund puts credit back into the lots the
// debit consumed (newest allocation first), and expiry removes the free credit of expired lots, never
// the earmarked part. The glue reads the lots an operation touches under the account's lock into a
// LotBook, plans the operation here, and writes back the lots that changed.
//
// A debit or hold that lot credit cannot cover (possible only under a negative floor) records the rest
// as one overdraft part (lot id kOverdraft) at the end: the account's debt.
#pragma once
#include "core/no_postgres.h"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/ledger/money.h"

namespace ducto::ledger {

inline constexpr std::int64_t kOverdraft = 0;  // the lot id of an overdraft part

// An allocation: credit taken from (or earmarked in, or restored to) one lot.
struct Part {
  std::int64_t lot_id = kOverdraft;
  Micros micros = 0;
  friend bool operator==(const Part&, const Part&) = default;
};

struct Lot {
  std::int64_t id = 0;
  Micros remaining = 0;  // credit still in the lot, earmarked part included
  Micros earmarked = 0;  // held by active holds
  std::optional<std::int64_t> expires_at;  // a Postgres timestamp; nullopt: never expires
  std::uint64_t row = 0;  // where the glue read the lot's row (opaque here; 0: unknown)
  Micros free() const { return remaining - earmarked; }
  // Usable while now < expires_at.
  bool expired_at(std::int64_t now) const { return expires_at && *expires_at <= now; }
  friend bool operator==(const Lot&, const Lot&) = default;
};

// The lots one operation touches, in the order they were added. Every change keeps
// 0 <= earmarked <= remaining; a plan that would break it is a bug, reported as Error(invalid_value).
class LotBook {
 public:
  LotBook() = default;
  // Adds a lot; a lot already in the book keeps its current state (the glue may read one twice).
  void add(const Lot& lot);
  bool contains(std::int64_t id) const;
  const Lot& lot(std::int64_t id) const;
  std::span<const Lot> lots() const { return current_; }

  // Takes up to `micros` of the lot's free credit; returns what it took.
  Micros take_free(std::int64_t id, Micros micros);
  // Earmarks up to `micros` of the lot's free credit; returns what it earmarked.
  Micros earmark_free(std::int64_t id, Micros micros);
  void unearmark(std::int64_t id, Micros micros);
  // Spends earmarked credit (a hold being settled): remaining and earmarked both drop.
  void spend_earmarked(std::int64_t id, Micros micros);
  void restore(std::int64_t id, Micros micros);
  // Removes the lot's free credit (expiry); returns it.
  Micros expire(std::int64_t id);

  // The lots whose state differs from when they were added, in book order, with their new state.
  std::vector<Lot> changed() const;

 private:
  std::size_t index_of(std::int64_t id) const;
  Lot& mutable_lot(std::int64_t id);
  std::vector<Lot> original_;
  std::vector<Lot> current_;
};

// Takes `amount` from the free credit of the lots `order` lists (usable lots, in consumption order);
// the rest, if any, becomes an overdraft part. Returns the parts in consumption order.
std::vector<Part> take_in_order(LotBook& book, std::span<const std::int64_t> order, Micros amount);

// Earmarks `amount` for a hold the same way (the hold's parts, overdraft part last).
std::vector<Part> earmark_in_order(LotBook& book, std::span<const std::int64_t> order, Micros amount);

// Ends a hold without spending it (release, expiry): its earmarks become free credit again.
void release_hold(LotBook& book, std::span<const Part> hold_parts);

// Settles a hold for `amount`: spends the hold's parts in order up to `amount`, returns the rest of
// them, and takes an excess above the hold with take_in_order over `order`. Returns the debit's parts.
// Affordability of an excess is the caller's decision (floor_allows), made before.
std::vector<Part> settle_hold(LotBook& book, std::span<const Part> hold_parts, Micros amount,
                              std::span<const std::int64_t> order);

// The parts of a debit that a refund of `amount` restores: newest allocation first, after skipping the
// `already_refunded` micro-credits earlier refunds restored the same way. Requires
// already_refunded + amount <= the debit's total.
std::vector<Part> restoration_parts(std::span<const Part> debit_parts, Micros already_refunded, Micros amount);

// Puts restored parts back into their lots (overdraft parts are the caller's: see restore_overdraft).
void restore_lots(LotBook& book, std::span<const Part> parts);

// Refunding an overdraft part first pays back the account's current debt; credit beyond it (the debt was
// meanwhile repaid by a grant) comes back as a new lot that never expires.
struct OverdraftRestoration {
  Micros repaid = 0;
  Micros new_lot = 0;
};
OverdraftRestoration restore_overdraft(Micros debt, Micros micros);

// A grant first repays the account's debt; the rest stays in the new lot.
Micros debt_repaid_by_grant(Micros debt, Micros granted);

// Expires the free credit of every expired lot of the book. Returns (lot, micro-credits) per lot that
// lost credit, in book order.
std::vector<Part> expire_due(LotBook& book, std::int64_t now);

// The earliest expiry among the book's lots that hold free credit and have not expired yet: what an
// account's next_expiry_at must not be later than after the operation.
std::optional<std::int64_t> next_expiry(const LotBook& book, std::int64_t now);

// Sum of parts (all, or only the overdraft ones).
Micros total_of(std::span<const Part> parts);
Micros overdraft_of(std::span<const Part> parts);

// The earlier of two optional timestamps (nullopt: none).
std::optional<std::int64_t> earliest(std::optional<std::int64_t> a, std::optional<std::int64_t> b);

}  // namespace ducto::ledger
