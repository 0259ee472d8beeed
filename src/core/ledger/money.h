// src/core/ledger/money.h: credit amounts as int64 micro-credits (design.md, Money).
//
// Storage and the ledger's arithmetic use micro-credits (10^-6 credit): every valid amount has at most 6
// decimal places and is below 10^12, so it fits int64 with room for sums of many of them. A sum that would
// leave int64 is an error (out_of_range), never a wrap.
#pragma once
#include "core/no_postgres.h"

#include <cstdint>
#include <string>

#include "core/decimal.h"

namespace ducto::ledger {

using Micros = std::int64_t;

inline constexpr Micros kMicrosPerCredit = 1'000'000;
// Amounts are below 10^12 credits: 10^18 micro-credits, exclusive.
inline constexpr Micros kAmountLimit = 1'000'000'000'000 * kMicrosPerCredit;

// a + b and a - b; Error(out_of_range, "credit total out of range") when the result leaves int64.
Micros checked_add(Micros a, Micros b);
Micros checked_sub(Micros a, Micros b);

// A config's min_balance in micro-credits, rounded up (a floor is never undercut by rounding) and
// clamped to the int64 range.
Micros floor_micros(const Decimal& min_balance);

// True when a debit or hold of `amount` leaves available credit (balance - reserved) at or above `floor`.
bool floor_allows(Micros balance, Micros reserved, Micros amount, Micros floor);

// "-12.500000": the amount in credits with exactly 6 decimal places (messages and tests).
std::string format_micros(Micros micros);

}  // namespace ducto::ledger
