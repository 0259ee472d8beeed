// src/core/ledger/money.cpp: checked micro-credit arithmetic and the floor (see money.h).
#include "core/no_postgres.h"

#include "core/ledger/money.h"

#include <limits>

#include "core/error.h"

namespace ducto::ledger {
namespace {

[[noreturn]] void throw_out_of_range() { throw Error(Errc::out_of_range, "credit total out of range"); }

}  // namespace

Micros checked_add(Micros a, Micros b) {
  Micros sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) throw_out_of_range();
  return sum;
}

Micros checked_sub(Micros a, Micros b) {
  Micros difference = 0;
  if (__builtin_sub_overflow(a, b, &difference)) throw_out_of_range();
  return difference;
}

Micros floor_micros(const Decimal& min_balance) {
  constexpr Micros kMax = std::numeric_limits<Micros>::max();
  constexpr Micros kMin = std::numeric_limits<Micros>::min();
  // A floor beyond ±9.2e12 credits is as good as none (or as all): clamp before scaling can overflow.
  if (min_balance >= Decimal(kMax / kMicrosPerCredit)) return kMax;
  if (min_balance <= Decimal(kMin / kMicrosPerCredit)) return kMin;
  const Decimal scaled = (min_balance * Decimal(kMicrosPerCredit)).ceil();
  return *scaled.to_int64();
}

bool floor_allows(Micros balance, Micros reserved, Micros amount, Micros floor) {
  // In 128 bits: the three int64 terms cannot overflow there.
  const __int128 available_after = static_cast<__int128>(balance) - reserved - amount;
  return available_after >= floor;
}

std::string format_micros(Micros micros) {
  const bool negative = micros < 0;
  // Through unsigned: -INT64_MIN does not fit int64.
  const unsigned long long magnitude =
      negative ? 0ULL - static_cast<unsigned long long>(micros) : static_cast<unsigned long long>(micros);
  std::string fraction = std::to_string(magnitude % kMicrosPerCredit);
  fraction.insert(0, 6 - fraction.size(), '0');
  return (negative ? "-" : "") + std::to_string(magnitude / kMicrosPerCredit) + "." + fraction;
}

}  // namespace ducto::ledger
