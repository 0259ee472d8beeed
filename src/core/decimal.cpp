// src/core/decimal.cpp: exact decimal arithmetic.
// Every operation has a 128-bit fast path (equal or nearby exponents, small coefficients) that is a few
// instructions, and an exact slow path on WideUInt for the rest. Slow paths compute the exact result,
// strip trailing zeros only as far as needed to fit, and throw out_of_range otherwise.
//
// Representation invariant (stronger than the header's): kMinExponent <= exponent <= 0 and
// |coefficient| < 10^38. A value with a positive exponent (1e3) is stored as an integer (1000, 0), so
// "fits" is a single coefficient check and |value| < 10^38 follows from it.
#include "core/no_postgres.h"

#include "core/decimal.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/wide_int.h"

namespace ducto {
namespace {

using Coefficient = Decimal::Coefficient;
using detail::UInt128;
using detail::WideUInt;

constexpr int kMinExponent = Decimal::kMinExponent;

constexpr std::array<UInt128, 39> kPow10 = [] {
  std::array<UInt128, 39> powers{};
  UInt128 power = 1;
  for (auto& p : powers) {
    p = power;
    power *= 10;
  }
  return powers;
}();

// |coefficient| < kLimit, i.e. at most 38 digits.
constexpr Coefficient kLimit = static_cast<Coefficient>(kPow10[Decimal::kMaxDigits]);

constexpr bool fits(Coefficient c) { return c < kLimit && c > -kLimit; }

constexpr UInt128 magnitude(Coefficient c) {
  return c < 0 ? UInt128{0} - static_cast<UInt128>(c) : static_cast<UInt128>(c);
}

constexpr Coefficient with_sign(bool negative, UInt128 m) {
  const auto c = static_cast<Coefficient>(m);
  return negative ? -c : c;
}

constexpr Coefficient pow10(int power) { return static_cast<Coefficient>(kPow10[power]); }

[[noreturn]] void throw_out_of_range() { throw Error(Errc::out_of_range, "numeric value out of range"); }

[[noreturn]] void throw_division_by_zero() { throw Error(Errc::invalid_value, "division by zero"); }

// The exact value (-1)^negative * m * 10^exponent as a Decimal. Trailing zeros are stripped only as
// far as needed to fit (keeping as much of the scale as possible); out_of_range when it cannot fit.
Decimal fit(bool negative, WideUInt m, int exponent) {
  if (m.is_zero()) return Decimal::from_parts(0, std::clamp(exponent, kMinExponent, 0));
  if (exponent > 0) {
    if (exponent > Decimal::kMaxDigits || !m.multiply_pow10(exponent)) throw_out_of_range();
    exponent = 0;
  }
  const WideUInt limit(kPow10[Decimal::kMaxDigits]);
  while ((exponent < kMinExponent || m >= limit) && exponent < 0) {
    WideUInt stripped = m;
    if (stripped.divide(std::uint64_t{10}) != 0) break;
    m = stripped;
    ++exponent;
  }
  if (exponent < kMinExponent || m >= limit) throw_out_of_range();
  return Decimal::from_parts(with_sign(negative, m.low_128()), exponent);
}

// Exact a + b when the 128-bit fast path of operator+ did not apply.
[[gnu::noinline]] Decimal add_general(const Decimal& a, const Decimal& b) {
  const bool a_finer = a.exponent() <= b.exponent();
  const Decimal& fine = a_finer ? a : b;
  const Decimal& coarse = a_finer ? b : a;
  const int shift = coarse.exponent() - fine.exponent();
  Coefficient aligned = 0;
  Coefficient sum = 0;
  if (shift <= Decimal::kMaxDigits && !__builtin_mul_overflow(coarse.coefficient(), pow10(shift), &aligned) &&
      !__builtin_add_overflow(aligned, fine.coefficient(), &sum)) {
    return Decimal::from_parts(sum, fine.exponent());
  }
  // Aligned magnitudes stay below 10^114, well inside 384 bits.
  WideUInt big(magnitude(coarse.coefficient()));
  big.multiply_pow10(shift);
  WideUInt small(magnitude(fine.coefficient()));
  const bool coarse_negative = coarse.is_negative();
  const bool fine_negative = fine.is_negative();
  if (coarse_negative == fine_negative) {
    big.add(small);
    return fit(coarse_negative, big, fine.exponent());
  }
  if (big >= small) {
    big.subtract(small);
    return fit(coarse_negative, big, fine.exponent());
  }
  small.subtract(big);
  return fit(fine_negative, small, fine.exponent());
}

// Exact a * b when the 128-bit fast path of operator* did not apply.
[[gnu::noinline]] Decimal multiply_general(const Decimal& a, const Decimal& b) {
  const bool negative = a.is_negative() != b.is_negative();
  return fit(negative, WideUInt::product(magnitude(a.coefficient()), magnitude(b.coefficient())),
             a.exponent() + b.exponent());
}

// Number of decimal digits of m (0 for 0).
int digit_count(UInt128 m) {
  const auto it = std::upper_bound(kPow10.begin(), kPow10.end(), m);
  return static_cast<int>(it - kPow10.begin());
}

// Removes up to max_strip trailing zeros from q, raising exponent accordingly.
void strip_trailing_zeros(UInt128& q, int& exponent, int max_strip) {
  if (q == 0) {
    exponent += max_strip;
    return;
  }
  for (const int step : {16, 8, 4, 2, 1}) {
    while (max_strip >= step && q % kPow10[step] == 0) {
      q /= kPow10[step];
      exponent += step;
      max_strip -= step;
    }
  }
}

void strip_trailing_zeros(WideUInt& q, int& exponent, int max_strip) {
  if (q.is_zero()) {
    exponent += max_strip;
    return;
  }
  for (; max_strip > 0; --max_strip) {
    WideUInt stripped = q;
    if (stripped.divide(std::uint64_t{10}) != 0) return;
    q = stripped;
    ++exponent;
  }
}

// Whether a discarded part remainder/divisor is at least one half, so that rounding half away from zero
// adds one to the magnitude. Written without 2 * remainder, which could exceed 128 bits.
bool rounds_up(UInt128 remainder, UInt128 divisor) { return remainder >= divisor - remainder; }

// The truncated quotient and the remainder of |dividend| * 10^shift / |divisor|. The quotient is in
// `quotient`, or in `wide_quotient` when the numerator needed more than 128 bits.
struct ScaledDivision {
  bool wide = false;
  UInt128 quotient = 0;
  WideUInt wide_quotient;
  UInt128 remainder = 0;
  UInt128 divisor = 0;  // the effective divisor: remainder / divisor is the discarded fraction
};

// |dividend| * 10^shift / |divisor| truncated, with its remainder. Callers rule out quotients too large
// to fit first (quotient_surely_exceeds), so a wide numerator stays below 10^95.
ScaledDivision scaled_divide(UInt128 dividend, int shift, UInt128 divisor) {
  ScaledDivision result;
  if (shift < 0) {
    // Dividing by divisor * 10^-shift; a divisor above 128 bits exceeds twice any dividend.
    UInt128 scaled_divisor = 0;
    if (-shift > Decimal::kMaxDigits || __builtin_mul_overflow(divisor, kPow10[-shift], &scaled_divisor)) {
      result.remainder = dividend;
      result.divisor = ~UInt128{0};
      return result;
    }
    result.quotient = dividend / scaled_divisor;
    result.remainder = dividend % scaled_divisor;
    result.divisor = scaled_divisor;
    return result;
  }
  result.divisor = divisor;
  UInt128 numerator = 0;
  if (shift <= Decimal::kMaxDigits && !__builtin_mul_overflow(dividend, kPow10[shift], &numerator)) {
    result.quotient = numerator / divisor;
    result.remainder = numerator % divisor;
    return result;
  }
  result.wide = true;
  result.wide_quotient = WideUInt(dividend);
  result.wide_quotient.multiply_pow10(shift);
  result.remainder = result.wide_quotient.divide(divisor);
  return result;
}

// True when |dividend * 10^shift / divisor| >= 10^limit_digits for certain (a cheap digit-count bound);
// this keeps wide numerators bounded.
bool quotient_surely_exceeds(UInt128 dividend, int shift, UInt128 divisor, int limit_digits) {
  return digit_count(dividend) - 1 + shift - digit_count(divisor) >= limit_digits;
}

// The input as shown in an error message: abbreviated, and with control characters (a NUL would cut
// the message short at the Postgres boundary) replaced by '?'.
std::string quoted_for_message(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string shown(text.substr(0, kMaxShown));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (text.size() > kMaxShown) shown += "...";
  return "\"" + shown + "\"";
}

[[noreturn]] void throw_invalid_number(std::string_view text) {
  throw Error(Errc::invalid_value, "invalid number " + quoted_for_message(text));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// coefficient * 10^exponent (exponent <= 0) truncated toward zero, and whether a non-zero fraction was cut.
struct Truncated {
  Coefficient integer = 0;
  bool had_fraction = false;
};

Truncated truncate(Coefficient coefficient, int exponent) {
  if (-exponent > Decimal::kMaxDigits) return {0, coefficient != 0};
  const Coefficient unit = pow10(-exponent);
  return {coefficient / unit, coefficient % unit != 0};
}

// A syntactically valid number: value = (-1)^negative * digits * 10^exponent, where digits are the
// integer digits followed by the fraction digits (leading and trailing zeros included).
struct NumberText {
  bool negative = false;
  std::string_view integer_digits;
  std::string_view fraction_digits;
  std::int64_t exponent = 0;

  std::size_t size() const { return integer_digits.size() + fraction_digits.size(); }
  int digit(std::size_t i) const {
    return (i < integer_digits.size() ? integer_digits[i] : fraction_digits[i - integer_digits.size()]) - '0';
  }
};

// Splits text by the grammar [+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits]; nullopt when
// it does not match.
std::optional<NumberText> scan_number(std::string_view text) {
  std::size_t pos = 0;
  const auto accept = [&](auto predicate) {
    if (pos >= text.size() || !predicate(text[pos])) return false;
    ++pos;
    return true;
  };
  const auto is_sign = [](char c) { return c == '+' || c == '-'; };
  const auto digits = [&] {
    const std::size_t begin = pos;
    while (accept(is_digit)) {
    }
    return text.substr(begin, pos - begin);
  };
  NumberText number;
  if (accept(is_sign)) number.negative = text[pos - 1] == '-';
  number.integer_digits = digits();
  if (accept([](char c) { return c == '.'; })) number.fraction_digits = digits();
  if (number.size() == 0) return std::nullopt;
  if (accept([](char c) { return c == 'e' || c == 'E'; })) {
    const bool exponent_negative = accept(is_sign) && text[pos - 1] == '-';
    const std::string_view exponent_digits = digits();
    if (exponent_digits.empty()) return std::nullopt;
    // Saturating: beyond the cap every non-zero value is out of range anyway, and the cap keeps the
    // arithmetic in number_value far from int64 limits whatever the input length.
    constexpr std::int64_t kExponentCap = 1'000'000'000'000'000;
    for (const char c : exponent_digits) number.exponent = std::min(kExponentCap, number.exponent * 10 + (c - '0'));
    if (exponent_negative) number.exponent = -number.exponent;
  }
  number.exponent -= static_cast<std::int64_t>(number.fraction_digits.size());
  if (pos != text.size()) return std::nullopt;
  return number;
}

// The exact value of a scanned number, stripping trailing zeros only as far as needed to fit.
Decimal number_value(const NumberText& number) {
  const std::size_t total = number.size();
  std::size_t first = 0;  // the first non-zero digit
  while (first < total && number.digit(first) == 0) ++first;
  std::int64_t exponent = number.exponent;
  if (first == total) {
    return Decimal::from_parts(0, static_cast<int>(std::clamp<std::int64_t>(exponent, kMinExponent, 0)));
  }
  std::size_t last = total;  // one past the last non-zero digit
  while (number.digit(last - 1) == 0) --last;
  const auto length = static_cast<std::int64_t>(total - first);
  const auto trailing_zeros = static_cast<std::int64_t>(total - last);

  std::int64_t kept = length;
  if (exponent > 0) {
    if (length + exponent > Decimal::kMaxDigits) throw_out_of_range();
  } else {
    // At most 38 digits and an exponent of at least -76, by dropping trailing zeros only.
    const std::int64_t strip = std::max<std::int64_t>({0, length - Decimal::kMaxDigits, kMinExponent - exponent});
    if (strip > trailing_zeros || strip > -exponent) throw_out_of_range();
    kept -= strip;
    exponent += strip;
  }
  UInt128 m = 0;
  for (std::int64_t i = 0; i < kept; ++i) m = m * 10 + static_cast<UInt128>(number.digit(first + i));
  if (exponent > 0) {
    m *= kPow10[exponent];
    exponent = 0;
  }
  return Decimal::from_parts(with_sign(number.negative, m), static_cast<int>(exponent));
}

// Decimal digits of m, most significant first ("0" for 0).
std::string digits_of(UInt128 m) {
  constexpr std::uint64_t kChunk = 10'000'000'000'000'000'000ULL;  // 10^19
  char buffer[40];
  char* const end = buffer + sizeof buffer;
  char* begin = end;
  auto write_chunk = [&](std::uint64_t chunk, int min_digits) {
    int written = 0;
    do {
      *--begin = static_cast<char>('0' + chunk % 10);
      chunk /= 10;
      ++written;
    } while (chunk != 0 || written < min_digits);
  };
  while (m >> 64 != 0) {
    write_chunk(static_cast<std::uint64_t>(m % kChunk), 19);
    m /= kChunk;
  }
  write_chunk(static_cast<std::uint64_t>(m), 1);
  return std::string(begin, end);
}

// Plain notation of coefficient * 10^-scale (scale >= 0).
std::string format(Coefficient coefficient, int scale) {
  std::string digits = digits_of(magnitude(coefficient));
  if (scale > 0) {
    if (digits.size() <= static_cast<std::size_t>(scale)) digits.insert(0, scale + 1 - digits.size(), '0');
    digits.insert(digits.size() - scale, 1, '.');
  }
  if (coefficient < 0) digits.insert(0, 1, '-');
  return digits;
}

}  // namespace

Decimal Decimal::from_parts(Coefficient coefficient, int exponent) {
  if (exponent <= 0 && exponent >= kMinExponent && fits(coefficient)) return Decimal(coefficient, exponent, Raw{});
  return fit(coefficient < 0, WideUInt(magnitude(coefficient)), exponent);
}

Decimal Decimal::parse(std::string_view text) {
  const std::optional<NumberText> number = scan_number(text);
  if (!number) throw_invalid_number(text);
  return number_value(*number);
}

std::string Decimal::to_string() const { return format(coefficient_, -exponent_); }

std::string Decimal::to_string(int scale) const {
  if (scale < 0) throw Error(Errc::invalid_value, "scale must not be negative");
  const int own_scale = -exponent_;
  if (own_scale <= scale) {
    std::string text = format(coefficient_, own_scale);
    if (own_scale == 0 && scale > 0) text += '.';  // an integer has no point to pad after
    return text.append(scale - own_scale, '0');
  }
  const int dropped = own_scale - scale;
  const bool loses_digits = dropped > kMaxDigits ? coefficient_ != 0 : coefficient_ % pow10(dropped) != 0;
  if (loses_digits) {
    throw Error(Errc::invalid_value, to_string() + " has more than " + std::to_string(scale) + " fractional digits");
  }
  return format(dropped > kMaxDigits ? 0 : coefficient_ / pow10(dropped), scale);
}

std::optional<std::int64_t> Decimal::to_micros() const {
  const int shift = exponent_ + kMoneyScale;
  Coefficient micros = 0;
  if (shift >= 0) {
    if (__builtin_mul_overflow(coefficient_, pow10(shift), &micros)) return std::nullopt;
  } else if (-shift > kMaxDigits) {
    if (coefficient_ != 0) return std::nullopt;
  } else {
    if (coefficient_ % pow10(-shift) != 0) return std::nullopt;
    micros = coefficient_ / pow10(-shift);
  }
  if (micros < std::numeric_limits<std::int64_t>::min() || micros > std::numeric_limits<std::int64_t>::max()) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(micros);
}

Decimal Decimal::operator+(const Decimal& other) const {
  Coefficient sum = 0;
  if (exponent_ == other.exponent_ && !__builtin_add_overflow(coefficient_, other.coefficient_, &sum) && fits(sum)) {
    return Decimal(sum, exponent_, Raw{});
  }
  return add_general(*this, other);
}

Decimal Decimal::operator-(const Decimal& other) const {
  Coefficient difference = 0;
  if (exponent_ == other.exponent_ && !__builtin_sub_overflow(coefficient_, other.coefficient_, &difference) &&
      fits(difference)) {
    return Decimal(difference, exponent_, Raw{});
  }
  return add_general(*this, -other);
}

Decimal Decimal::operator*(const Decimal& other) const {
  const int exponent = exponent_ + other.exponent_;
  Coefficient product = 0;
  if (exponent >= kMinExponent && !__builtin_mul_overflow(coefficient_, other.coefficient_, &product) &&
      fits(product)) {
    return Decimal(product, exponent, Raw{});
  }
  return multiply_general(*this, other);
}

Decimal Decimal::operator-() const { return Decimal(-coefficient_, exponent_, Raw{}); }

Decimal Decimal::divide(const Decimal& divisor) const {
  if (divisor.is_zero()) throw_division_by_zero();
  if (is_zero()) return Decimal();
  // quotient = |a| * 10^shift / |b| in units of 10^-kDivisionScale.
  const int shift = exponent_ - divisor.exponent_ + kDivisionScale;
  const UInt128 dividend = magnitude(coefficient_);
  const UInt128 denominator = magnitude(divisor.coefficient_);
  // 10^(38 + kDivisionScale) units or more can never fit, whatever rounding and stripping do.
  if (quotient_surely_exceeds(dividend, shift, denominator, kMaxDigits + kDivisionScale)) throw_out_of_range();
  const bool negative = is_negative() != divisor.is_negative();
  ScaledDivision division = scaled_divide(dividend, shift, denominator);
  int exponent = -kDivisionScale;
  if (!division.wide) {
    if (rounds_up(division.remainder, division.divisor)) ++division.quotient;
    strip_trailing_zeros(division.quotient, exponent, kDivisionScale);
    if (division.quotient >= kPow10[kMaxDigits]) throw_out_of_range();
    return Decimal(with_sign(negative, division.quotient), exponent, Raw{});
  }
  if (rounds_up(division.remainder, division.divisor)) division.wide_quotient.add(WideUInt(1));
  strip_trailing_zeros(division.wide_quotient, exponent, kDivisionScale);
  return fit(negative, division.wide_quotient, exponent);
}

Decimal Decimal::divide_truncated(const Decimal& divisor) const {
  if (divisor.is_zero()) throw_division_by_zero();
  const int shift = exponent_ - divisor.exponent_;
  const UInt128 dividend = magnitude(coefficient_);
  const UInt128 denominator = magnitude(divisor.coefficient_);
  if (dividend != 0 && quotient_surely_exceeds(dividend, shift, denominator, kMaxDigits)) throw_out_of_range();
  const bool negative = is_negative() != divisor.is_negative();
  const ScaledDivision division = scaled_divide(dividend, shift, denominator);
  const WideUInt quotient = division.wide ? division.wide_quotient : WideUInt(division.quotient);
  return fit(negative, quotient, 0);
}

Decimal Decimal::remainder(const Decimal& divisor) const {
  if (divisor.is_zero()) throw_division_by_zero();
  // a - b * trunc(a / b) = sign(a) * (|a| mod |b|), computed at the finer exponent; it is below both
  // |a| and |b| there, so it always fits.
  const int exponent = std::min(exponent_, divisor.exponent_);
  const UInt128 dividend = magnitude(coefficient_);
  const UInt128 denominator = magnitude(divisor.coefficient_);
  UInt128 rest = 0;
  if (exponent_ > exponent) {
    WideUInt numerator(dividend);
    numerator.multiply_pow10(exponent_ - exponent);
    rest = numerator.divide(denominator);
  } else {
    rest = scaled_divide(dividend, exponent - divisor.exponent_, denominator).remainder;
  }
  return Decimal(with_sign(is_negative(), rest), exponent, Raw{});
}

Decimal Decimal::round(int places) const {
  if (places < 0 || places > kMaxDigits) {
    throw Error(Errc::invalid_value, "rounding places must be between 0 and " + std::to_string(kMaxDigits));
  }
  if (exponent_ >= -places) return *this;
  const int dropped = -places - exponent_;
  if (dropped > kMaxDigits) return Decimal(0, -places, Raw{});  // |value| < 10^-(places+1): rounds to 0
  const UInt128 unit = kPow10[dropped];
  UInt128 quotient = magnitude(coefficient_) / unit;
  if (rounds_up(magnitude(coefficient_) % unit, unit)) ++quotient;
  return Decimal(with_sign(is_negative(), quotient), -places, Raw{});
}

Decimal Decimal::ceil() const {
  const Truncated truncated = truncate(coefficient_, exponent_);
  return Decimal(truncated.integer + (truncated.had_fraction && coefficient_ > 0 ? 1 : 0), 0, Raw{});
}

Decimal Decimal::floor() const {
  const Truncated truncated = truncate(coefficient_, exponent_);
  return Decimal(truncated.integer - (truncated.had_fraction && coefficient_ < 0 ? 1 : 0), 0, Raw{});
}

Decimal Decimal::abs() const { return coefficient_ < 0 ? -*this : *this; }

bool Decimal::is_integer() const { return !truncate(coefficient_, exponent_).had_fraction; }

int Decimal::significant_scale() const {
  UInt128 m = magnitude(coefficient_);
  int exponent = exponent_;
  strip_trailing_zeros(m, exponent, -exponent_);
  return m == 0 ? 0 : -exponent;
}

std::optional<std::int64_t> Decimal::to_int64() const {
  const Truncated truncated = truncate(coefficient_, exponent_);
  if (truncated.had_fraction) return std::nullopt;
  const Coefficient value = truncated.integer;
  if (value < std::numeric_limits<std::int64_t>::min() || value > std::numeric_limits<std::int64_t>::max()) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(value);
}

int Decimal::compare(const Decimal& a, const Decimal& b) {
  const auto three_way = [](Coefficient x, Coefficient y) { return x < y ? -1 : (x > y ? 1 : 0); };
  if (a.exponent_ == b.exponent_) return three_way(a.coefficient_, b.coefficient_);
  const bool a_finer = a.exponent_ < b.exponent_;
  const Decimal& fine = a_finer ? a : b;
  const Decimal& coarse = a_finer ? b : a;
  const int shift = coarse.exponent_ - fine.exponent_;
  Coefficient aligned = 0;
  int coarse_vs_fine = 0;
  if (shift <= kMaxDigits && !__builtin_mul_overflow(coarse.coefficient_, pow10(shift), &aligned)) {
    coarse_vs_fine = three_way(aligned, fine.coefficient_);
  } else if (coarse.coefficient_ == 0) {
    coarse_vs_fine = -fine.sign();
  } else {
    // The aligned coarse coefficient would exceed int128 (or 10^38 * 10 when shift > 38), so it is
    // larger than any |fine coefficient|: the coarse value has the larger magnitude and its sign decides.
    coarse_vs_fine = coarse.sign();
  }
  return a_finer ? -coarse_vs_fine : coarse_vs_fine;
}

}  // namespace ducto
