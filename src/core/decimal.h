// src/core/decimal.h: the exact decimal number used for credits and formulas.
//
// A value is coefficient * 10^exponent with a 128-bit coefficient of at most 38 significant digits.
// + - * are exact; an exact result that does not fit (more than 38 significant digits, or a magnitude of
// 10^38 or more, or an exponent below kMinExponent) throws Error(Errc::out_of_range): never a wrap, never a
// float, never a silent rounding. Division rounds half away from zero to 18 fractional digits.
// Values are not normalized after each operation (trailing zeros are kept, like numeric's scale), so the
// hot path does no digit counting; comparison and equality are by value.
#pragma once
#include "core/no_postgres.h"

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ducto {

class Decimal {
 public:
  using Coefficient = __int128;

  static constexpr int kMaxDigits = 38;         // significant digits a value may carry
  static constexpr int kMaxMagnitudeDigits = 38;  // |value| < 10^38
  static constexpr int kMinExponent = -76;      // smallest exponent (exact products of small values)
  static constexpr int kDivisionScale = 18;     // fractional digits of a quotient
  static constexpr int kMoneyScale = 6;         // fractional digits of a credit amount

  constexpr Decimal() = default;  // zero
  constexpr Decimal(std::int64_t integer) : coefficient_(integer), exponent_(0) {}  // NOLINT: implicit by design

  // coefficient * 10^exponent; throws out_of_range when it does not fit.
  static Decimal from_parts(Coefficient coefficient, int exponent);
  // micro-credits (value * 10^6) to a decimal with exponent -6.
  static Decimal from_micros(std::int64_t micros) { return Decimal(micros, -kMoneyScale, Raw{}); }

  // Parses "12", "-0.5", "1e-3", "1.5E+3", ".5", "5." (surrounding spaces are not allowed).
  // Throws Error(invalid_value) on bad syntax (also "NaN", "Infinity") and Error(out_of_range) when the
  // exact value does not fit.
  static Decimal parse(std::string_view text);

  // Plain notation without an exponent, keeping the value's scale: "12", "-0.50", "0.001".
  // A value with a positive exponent prints its zeros: 1e3 -> "1000".
  std::string to_string() const;
  // Plain notation with exactly `scale` fractional digits; requires that the value has no non-zero digit
  // past `scale` (call round() first), otherwise throws Error(invalid_value).
  std::string to_string(int scale) const;

  // Exact value * 10^6 when it has no non-zero digit past the 6th place and fits int64; otherwise nullopt.
  std::optional<std::int64_t> to_micros() const;

  Decimal operator+(const Decimal& other) const;
  Decimal operator-(const Decimal& other) const;
  Decimal operator*(const Decimal& other) const;
  Decimal operator-() const;
  Decimal& operator+=(const Decimal& other) { return *this = *this + other; }
  Decimal& operator-=(const Decimal& other) { return *this = *this - other; }

  // Quotient rounded half away from zero to kDivisionScale fractional digits. Division by zero throws
  // Error(invalid_value, "division by zero").
  Decimal divide(const Decimal& divisor) const;
  // Quotient truncated toward zero (an integer). Division by zero throws as divide().
  Decimal divide_truncated(const Decimal& divisor) const;
  // Remainder with the sign of the dividend: a - b * divide_truncated(a, b).
  Decimal remainder(const Decimal& divisor) const;

  // Rounded half away from zero to `places` fractional digits (0 <= places <= 38); the result has
  // exactly that scale when the value had more digits, otherwise the value unchanged.
  Decimal round(int places) const;
  Decimal ceil() const;
  Decimal floor() const;
  Decimal abs() const;

  bool is_zero() const { return coefficient_ == 0; }
  bool is_negative() const { return coefficient_ < 0; }
  bool is_integer() const;
  int sign() const { return coefficient_ > 0 ? 1 : (coefficient_ < 0 ? -1 : 0); }
  // Number of fractional digits that are not trailing zeros (0 for integers).
  int significant_scale() const;
  // The value as int64 if it is an integer that fits; otherwise nullopt.
  std::optional<std::int64_t> to_int64() const;

  Coefficient coefficient() const { return coefficient_; }
  int exponent() const { return exponent_; }

  friend bool operator==(const Decimal& a, const Decimal& b) { return compare(a, b) == 0; }
  friend std::strong_ordering operator<=>(const Decimal& a, const Decimal& b) { return compare(a, b) <=> 0; }

 private:
  struct Raw {};
  constexpr Decimal(Coefficient coefficient, int exponent, Raw) : coefficient_(coefficient), exponent_(exponent) {}
  static int compare(const Decimal& a, const Decimal& b);

  Coefficient coefficient_ = 0;
  int exponent_ = 0;
};

}  // namespace ducto
