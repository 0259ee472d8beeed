// src/core/wide_int.h: a fixed-width unsigned integer for the slow paths of Decimal.
// Exact decimal results that do not fit 128 bits (aligned sums, full products, wide division numerators)
// are computed here and then stripped back to 38 digits or rejected. 384 bits hold every intermediate
// Decimal needs (at most 10^114 after aligning exponents 76 apart), so this type never has to grow.
#pragma once
#include "core/no_postgres.h"

#include <array>
#include <bit>
#include <compare>
#include <cstdint>

namespace ducto::detail {

using UInt128 = unsigned __int128;

class WideUInt {
 public:
  static constexpr int kLimbs = 6;

  constexpr WideUInt() = default;
  explicit constexpr WideUInt(UInt128 value)
      : limbs_{static_cast<std::uint64_t>(value), static_cast<std::uint64_t>(value >> 64)} {}

  // The full 256-bit product of two 128-bit values (schoolbook on 64-bit limbs).
  static WideUInt product(UInt128 a, UInt128 b) {
    const std::uint64_t x[2] = {static_cast<std::uint64_t>(a), static_cast<std::uint64_t>(a >> 64)};
    const std::uint64_t y[2] = {static_cast<std::uint64_t>(b), static_cast<std::uint64_t>(b >> 64)};
    WideUInt result;
    for (int i = 0; i < 2; ++i) {
      std::uint64_t carry = 0;
      for (int j = 0; j < 2; ++j) {
        const UInt128 t = static_cast<UInt128>(x[i]) * y[j] + result.limbs_[i + j] + carry;
        result.limbs_[i + j] = static_cast<std::uint64_t>(t);
        carry = static_cast<std::uint64_t>(t >> 64);
      }
      result.limbs_[i + 2] = carry;
    }
    return result;
  }

  // *this *= factor; false (and *this unspecified) when the product needs more than 384 bits.
  bool multiply(std::uint64_t factor) {
    std::uint64_t carry = 0;
    for (auto& limb : limbs_) {
      const UInt128 t = static_cast<UInt128>(limb) * factor + carry;
      limb = static_cast<std::uint64_t>(t);
      carry = static_cast<std::uint64_t>(t >> 64);
    }
    return carry == 0;
  }

  // *this *= 10^power (power >= 0); false on overflow.
  bool multiply_pow10(int power) {
    constexpr std::uint64_t kChunk = 10'000'000'000'000'000'000ULL;  // 10^19, the largest in 64 bits
    for (; power >= 19; power -= 19) {
      if (!multiply(kChunk)) return false;
    }
    std::uint64_t rest = 1;
    for (; power > 0; --power) rest *= 10;
    return multiply(rest);
  }

  // *this += other; false on overflow.
  bool add(const WideUInt& other) {
    std::uint64_t carry = 0;
    for (int i = 0; i < kLimbs; ++i) {
      const UInt128 t = static_cast<UInt128>(limbs_[i]) + other.limbs_[i] + carry;
      limbs_[i] = static_cast<std::uint64_t>(t);
      carry = static_cast<std::uint64_t>(t >> 64);
    }
    return carry == 0;
  }

  // *this -= other; requires *this >= other.
  void subtract(const WideUInt& other) {
    std::uint64_t borrow = 0;
    for (int i = 0; i < kLimbs; ++i) {
      const std::uint64_t subtrahend = other.limbs_[i] + borrow;
      const bool wrapped = subtrahend < borrow;  // other limb was all ones and a borrow came in
      borrow = (wrapped || limbs_[i] < subtrahend) ? 1 : 0;
      limbs_[i] -= subtrahend;
    }
  }

  // *this /= divisor (non-zero); returns the remainder.
  std::uint64_t divide(std::uint64_t divisor) {
    std::uint64_t remainder = 0;
    for (int i = top_limb(); i >= 0; --i) {
      const UInt128 current = (static_cast<UInt128>(remainder) << 64) | limbs_[i];
      limbs_[i] = static_cast<std::uint64_t>(current / divisor);
      remainder = static_cast<std::uint64_t>(current % divisor);
    }
    return remainder;
  }

  // *this /= divisor (non-zero); returns the remainder. Divisors above 64 bits use binary long
  // division: it only runs on rare slow paths, where simplicity beats Knuth's algorithm D.
  UInt128 divide(UInt128 divisor) {
    if (divisor >> 64 == 0) return divide(static_cast<std::uint64_t>(divisor));
    UInt128 remainder = 0;
    WideUInt quotient;
    for (int bit = bit_width() - 1; bit >= 0; --bit) {
      const bool carried_out = (remainder >> 127) != 0;
      remainder = (remainder << 1) | ((limbs_[bit / 64] >> (bit % 64)) & 1);
      if (carried_out || remainder >= divisor) {
        remainder -= divisor;  // wraps back into range when carried_out
        quotient.limbs_[bit / 64] |= std::uint64_t{1} << (bit % 64);
      }
    }
    *this = quotient;
    return remainder;
  }

  bool is_zero() const { return top_limb() < 0; }
  bool fits_128() const { return top_limb() < 2; }
  // The low 128 bits (the whole value when fits_128()).
  UInt128 low_128() const { return (static_cast<UInt128>(limbs_[1]) << 64) | limbs_[0]; }

  int bit_width() const {
    const int top = top_limb();
    return top < 0 ? 0 : top * 64 + static_cast<int>(std::bit_width(limbs_[top]));
  }

  friend std::strong_ordering operator<=>(const WideUInt& a, const WideUInt& b) {
    for (int i = kLimbs - 1; i >= 0; --i) {
      if (a.limbs_[i] != b.limbs_[i]) return a.limbs_[i] <=> b.limbs_[i];
    }
    return std::strong_ordering::equal;
  }
  friend bool operator==(const WideUInt& a, const WideUInt& b) = default;

 private:
  // Index of the highest non-zero limb, -1 for zero.
  int top_limb() const {
    int top = kLimbs - 1;
    while (top >= 0 && limbs_[top] == 0) --top;
    return top;
  }

  std::array<std::uint64_t, kLimbs> limbs_{};  // little-endian 64-bit limbs
};

}  // namespace ducto::detail
