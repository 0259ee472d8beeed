// test/unit/decimal_test.cpp: unit tests of ducto::Decimal (src/core/decimal.h).
// Expected values of non-trivial quotients and remainders were computed independently with Python's
// decimal module (ROUND_HALF_UP, which rounds half away from zero).
#include "core/decimal.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace ducto {
namespace {

using Coefficient = Decimal::Coefficient;

constexpr const char* kOutOfRange = "numeric value out of range";
constexpr const char* kDivisionByZero = "division by zero";
const std::string k38Nines = "99999999999999999999999999999999999999";

Decimal D(std::string_view text) { return Decimal::parse(text); }

Coefficient pow10(int power) {
  Coefficient result = 1;
  for (int i = 0; i < power; ++i) result *= 10;
  return result;
}

// Passes when `action` throws ducto::Error with exactly this code and message.
template <typename Action>
testing::AssertionResult Throws(Action&& action, Errc code, const std::string& message) {
  try {
    action();
  } catch (const Error& error) {
    if (error.code() != code || message != error.what()) {
      return testing::AssertionFailure() << "threw " << sqlstate(error.code()) << " \"" << error.what()
                                         << "\", expected " << sqlstate(code) << " \"" << message << "\"";
    }
    return testing::AssertionSuccess();
  } catch (const std::exception& other) {
    return testing::AssertionFailure() << "threw a foreign exception: " << other.what();
  }
  return testing::AssertionFailure() << "did not throw";
}

testing::AssertionResult IsOutOfRange(const std::function<Decimal()>& action) {
  return Throws(action, Errc::out_of_range, kOutOfRange);
}

// ---------------------------------------------------------------- parse

TEST(DecimalParse, AcceptsTheGrammar) {
  struct Case {
    const char* text;
    const char* printed;
  };
  const std::vector<Case> cases = {
      {"12", "12"},
      {"-0.5", "-0.5"},
      {"+3", "3"},
      {"1e-3", "0.001"},
      {"1.5E+3", "1500"},
      {"1.5e3", "1500"},
      {"2E0", "2"},
      {".5", "0.5"},
      {"-.5", "-0.5"},
      {"5.", "5"},
      {"-5.", "-5"},
      {"5.e2", "500"},
      {"0", "0"},
      {"-0", "0"},
      {"-0.00", "0.00"},
      {"0.000000", "0.000000"},
      {"00.00100", "0.00100"},
      {"1.50", "1.50"},
      {"000000000000000000000000000000000000000000000123.45", "123.45"},
      {"12.5e-1", "1.25"},
      {"1250e-3", "1.250"},
      {"9.99e37", "99900000000000000000000000000000000000"},
      {k38Nines.c_str(), k38Nines.c_str()},
      {"-99999999999999999999999999999999999999", "-99999999999999999999999999999999999999"},
      {"0.99999999999999999999999999999999999999", "0.99999999999999999999999999999999999999"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(D(c.text).to_string(), c.printed) << c.text;
  }
}

TEST(DecimalParse, StripsTrailingZerosOnlyAsFarAsNeeded) {
  // 47 significant digits, 45 of them trailing zeros: keeps 38 digits.
  const Decimal long_fraction = D("1.5000000000000000000000000000000000000000000000");
  EXPECT_EQ(long_fraction.to_string(), "1.5000000000000000000000000000000000000");
  EXPECT_EQ(long_fraction.exponent(), -37);
  EXPECT_EQ(long_fraction, D("1.5"));

  const Decimal tiny = D("1e-70");
  EXPECT_EQ(tiny.coefficient(), 1);
  EXPECT_EQ(tiny.exponent(), -70);

  const Decimal smallest = D("1000e-79");  // 1e-76 once three zeros are stripped
  EXPECT_EQ(smallest.coefficient(), 1);
  EXPECT_EQ(smallest.exponent(), Decimal::kMinExponent);

  const Decimal zero = D("0e-999999999999");
  EXPECT_TRUE(zero.is_zero());
  EXPECT_EQ(zero.exponent(), Decimal::kMinExponent);
  EXPECT_EQ(D("0e999999999999").to_string(), "0");
  EXPECT_EQ(D("-0.000e5").to_string(), "0");
}

TEST(DecimalParse, OutOfRange) {
  const std::vector<std::string> too_big_or_too_precise = {
      "1e38", "-1e38", "100000000000000000000000000000000000000", "123e-80", "1e-77", "1e999999999999",
      "1e-999999999999", "1e99999999999999999999999999999999", "1.00000000000000000000000000000000000001",
      "99999999999999999999999999999999999999.5", "100000000000000000000000000000000000000.0",
      "0." + std::string(76, '0') + "15"};
  for (const auto& text : too_big_or_too_precise) {
    EXPECT_TRUE(IsOutOfRange([&] { return D(text); })) << text;
  }
}

TEST(DecimalParse, RejectsEverythingElse) {
  const std::vector<std::string> bad = {"",      "1 ",  ".",      "-",   "+",        "e5",    "1e",    "1e+",
                                        "1e-",   ".e1", "NaN",    "nan", "Infinity", "inf",   "-inf",  "0x10",
                                        "1_000", "1,5", "1.2.3",  "--1", "+-1",      "1e5.5", "1e5e5", "1..2",
                                        "1d",    "1f",  "\u0661", "++1", "- 1",      "1e 5",  " 1"};
  for (const auto& text : bad) {
    EXPECT_TRUE(Throws([&] { D(text); }, Errc::invalid_value, "invalid number \"" + text + "\"")) << text;
  }
}

TEST(DecimalParse, ControlCharactersAreMaskedInTheMessage) {
  EXPECT_TRUE(Throws([] { D(std::string("1\0", 2)); }, Errc::invalid_value, "invalid number \"1?\""));
  EXPECT_TRUE(Throws([] { D("\t1"); }, Errc::invalid_value, "invalid number \"?1\""));
  EXPECT_TRUE(Throws([] { D("1\n"); }, Errc::invalid_value, "invalid number \"1?\""));
}

TEST(DecimalParse, LongBadInputIsAbbreviatedInTheMessage) {
  const std::string text = std::string(100, '1') + "x";
  EXPECT_TRUE(Throws([&] { D(text); }, Errc::invalid_value, "invalid number \"" + std::string(64, '1') + "...\""));
}

// ---------------------------------------------------------------- to_string

TEST(DecimalToString, KeepsTheScale) {
  EXPECT_EQ(Decimal().to_string(), "0");
  EXPECT_EQ(Decimal(-42).to_string(), "-42");
  EXPECT_EQ(D("0.001").to_string(), "0.001");
  EXPECT_EQ(D("1.50").to_string(), "1.50");
  EXPECT_EQ(D("1e3").to_string(), "1000");
  EXPECT_EQ(Decimal::from_parts(0, -6).to_string(), "0.000000");
  EXPECT_EQ(D("-0.5").to_string(), "-0.5");
  EXPECT_EQ(Decimal::from_micros(-1'500'000).to_string(), "-1.500000");
  EXPECT_EQ(Decimal::from_parts(1, -76).to_string(), "0." + std::string(75, '0') + "1");
  EXPECT_EQ(Decimal::from_parts(-(pow10(38) - 1), -19).to_string(), "-9999999999999999999.9999999999999999999");
  EXPECT_EQ(Decimal(std::numeric_limits<std::int64_t>::min()).to_string(), "-9223372036854775808");
}

TEST(DecimalToString, RoundTripsThroughParse) {
  for (const char* text :
       {"0", "1", "-1", "0.1", "-0.01", "123456789.123456789", "0.000000", "10000000000000000000",
        "18446744073709551616", "-170141183460469231731687303715884105", "99999999999999999999999999999999999999",
        "0.0000000000000000000000000000000000000000000000000000000000000000000000000001",
        "-1234567890123456789.0123456789012345678"}) {
    EXPECT_EQ(D(text).to_string(), text);
  }
}

TEST(DecimalToString, FixedScale) {
  EXPECT_EQ(D("1.5").to_string(6), "1.500000");
  EXPECT_EQ(D("-1.5").to_string(2), "-1.50");
  EXPECT_EQ(D("1.500").to_string(1), "1.5");
  EXPECT_EQ(D("12").to_string(0), "12");
  EXPECT_EQ(D("12.000").to_string(0), "12");
  // Integers get their point before the padding.
  EXPECT_EQ(Decimal(5).to_string(6), "5.000000");
  EXPECT_EQ(Decimal(-5).to_string(2), "-5.00");
  EXPECT_EQ(D("1e37").to_string(1), "1" + std::string(37, '0') + ".0");
  EXPECT_EQ(Decimal().to_string(3), "0.000");
  EXPECT_EQ(D("-0.25").to_string(2), "-0.25");
  EXPECT_EQ(D("0e-76").to_string(2), "0.00");
  EXPECT_EQ(D("1e-76").to_string(76), "0." + std::string(75, '0') + "1");
  EXPECT_TRUE(
      Throws([] { return D("1.25").to_string(1); }, Errc::invalid_value, "1.25 has more than 1 fractional digits"));
  EXPECT_TRUE(Throws([] { return D("1e-70").to_string(6); }, Errc::invalid_value,
                     "0." + std::string(69, '0') + "1 has more than 6 fractional digits"));
  EXPECT_TRUE(Throws([] { return D("1").to_string(-1); }, Errc::invalid_value, "scale must not be negative"));
}

// ---------------------------------------------------------------- from_parts, micros, int64

TEST(DecimalFromParts, ChecksTheFit) {
  EXPECT_EQ(Decimal::from_parts(1, 3).to_string(), "1000");
  EXPECT_EQ(Decimal::from_parts(1, 3).exponent(), 0);
  EXPECT_EQ(Decimal::from_parts(-15, -1).to_string(), "-1.5");
  EXPECT_EQ(Decimal::from_parts(pow10(38), -1).to_string(), "10000000000000000000000000000000000000");
  EXPECT_EQ(Decimal::from_parts(50, -77).to_string(), "0." + std::string(75, '0') + "5");
  EXPECT_EQ(Decimal::from_parts(0, 1000).to_string(), "0");
  EXPECT_EQ(Decimal::from_parts(0, -1000).exponent(), Decimal::kMinExponent);
  EXPECT_EQ(Decimal::from_parts(0, INT_MIN).exponent(), Decimal::kMinExponent);
  EXPECT_TRUE(IsOutOfRange([] { return Decimal::from_parts(1, 38); }));
  EXPECT_TRUE(IsOutOfRange([] { return Decimal::from_parts(1, INT_MAX); }));
  EXPECT_TRUE(IsOutOfRange([] { return Decimal::from_parts(1, INT_MIN); }));
  EXPECT_TRUE(IsOutOfRange([] { return Decimal::from_parts(pow10(38), 0); }));
  EXPECT_TRUE(IsOutOfRange([] { return Decimal::from_parts(-pow10(38), 0); }));
  EXPECT_TRUE(IsOutOfRange([] { return Decimal::from_parts(5, -77); }));
  EXPECT_TRUE(IsOutOfRange([] { return Decimal::from_parts(std::numeric_limits<Coefficient>::min(), 0); }));
}

TEST(DecimalMicros, ExactOnly) {
  EXPECT_EQ(D("1.5").to_micros(), 1'500'000);
  EXPECT_EQ(D("-1.5000000").to_micros(), -1'500'000);
  EXPECT_EQ(D("0.000001").to_micros(), 1);
  EXPECT_EQ(D("12").to_micros(), 12'000'000);
  EXPECT_EQ(D("0e-76").to_micros(), 0);
  EXPECT_EQ(D("9223372036854.775807").to_micros(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(D("-9223372036854.775808").to_micros(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(D("1.0000001").to_micros(), std::nullopt);
  EXPECT_EQ(D("1e-70").to_micros(), std::nullopt);
  EXPECT_EQ(D("9223372036854.775808").to_micros(), std::nullopt);
  EXPECT_EQ(D("1e13").to_micros(), std::nullopt);
  EXPECT_EQ(D("1e37").to_micros(), std::nullopt);
}

TEST(DecimalMicros, FromMicrosRoundTrips) {
  for (const std::int64_t micros :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{123'456'789},
        std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()}) {
    const Decimal value = Decimal::from_micros(micros);
    EXPECT_EQ(value.exponent(), -6);
    EXPECT_EQ(value.to_micros(), micros);
  }
  EXPECT_EQ(Decimal::from_micros(1'234'567).to_string(), "1.234567");
}

TEST(DecimalInt64, IntegersThatFit) {
  EXPECT_EQ(D("12.000").to_int64(), 12);
  EXPECT_EQ(D("-7").to_int64(), -7);
  EXPECT_EQ(D("0e-76").to_int64(), 0);
  EXPECT_EQ(D("9223372036854775807").to_int64(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(D("-9223372036854775808").to_int64(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(D("9223372036854775808").to_int64(), std::nullopt);
  EXPECT_EQ(D("12.5").to_int64(), std::nullopt);
  EXPECT_EQ(D("1e-70").to_int64(), std::nullopt);
  EXPECT_EQ(D("1e37").to_int64(), std::nullopt);
}

// ---------------------------------------------------------------- + and -

TEST(DecimalAdd, SignCombinations) {
  EXPECT_EQ(D("1.5") + D("2.25"), D("3.75"));
  EXPECT_EQ(D("-1.5") + D("2.25"), D("0.75"));
  EXPECT_EQ(D("1.5") + D("-2.25"), D("-0.75"));
  EXPECT_EQ(D("-1.5") + D("-2.25"), D("-3.75"));
  EXPECT_EQ((D("1.5") + D("2.25")).to_string(), "3.75");
  EXPECT_EQ((D("-1.5") + D("1.50")).to_string(), "0.00");
}

TEST(DecimalAdd, ResultKeepsTheFinerScale) {
  EXPECT_EQ((D("1.50") + Decimal(1)).to_string(), "2.50");
  EXPECT_EQ((D("0.5") + D("0.50")).to_string(), "1.00");
  EXPECT_EQ((Decimal(5) + D("0.001")).to_string(), "5.001");
  Decimal total = D("0.1");
  total += D("0.2");
  EXPECT_EQ(total.to_string(), "0.3");
  total -= D("0.35");
  EXPECT_EQ(total.to_string(), "-0.05");
}

TEST(DecimalAdd, ExponentsFarApart) {
  // 1.000...0 (37 zeros) + 1e-33 written with 38 digits: aligned it needs 10^70, the sum fits.
  const Decimal one = Decimal::from_parts(pow10(37), -37);
  const Decimal tiny = Decimal::from_parts(pow10(37), -70);
  const Decimal sum = one + tiny;
  EXPECT_EQ(sum, D("1.000000000000000000000000000000001"));
  EXPECT_EQ(sum.exponent(), -37);
  EXPECT_EQ(tiny + one, sum);
  // 18 - 9.99..9 (38 digits): the aligned 18 exceeds int128, the difference has 38 digits.
  const Decimal nines = Decimal::from_parts(pow10(38) - 1, -37);
  EXPECT_EQ((Decimal(18) - nines).to_string(), "8.0000000000000000000000000000000000001");
  EXPECT_EQ((-nines + Decimal(18)).to_string(), "8.0000000000000000000000000000000000001");
  EXPECT_EQ((nines - Decimal(18)).to_string(), "-8.0000000000000000000000000000000000001");
  EXPECT_EQ(D("1e37") + D("-1e37"), Decimal());
  EXPECT_EQ((D("1e-76") - D("1e-76")).exponent(), -76);
}

TEST(DecimalAdd, Overflow) {
  const Decimal max = D(k38Nines);
  EXPECT_TRUE(IsOutOfRange([&] { return max + Decimal(1); }));
  EXPECT_TRUE(IsOutOfRange([&] { return Decimal(1) + max; }));
  EXPECT_TRUE(IsOutOfRange([&] { return -max - Decimal(1); }));
  EXPECT_TRUE(IsOutOfRange([&] { return max + max; }));  // beyond int128 itself
  EXPECT_TRUE(IsOutOfRange([&] { return -max + -max; }));
  EXPECT_TRUE(IsOutOfRange([&] { return max - -max; }));
  EXPECT_TRUE(IsOutOfRange([&] { return max + D("0.5"); }));
  EXPECT_TRUE(IsOutOfRange([] { return D("1e37") + D("1e-70"); }));  // 108 significant digits
  EXPECT_TRUE(IsOutOfRange([] { return D("1") + D("1e-38"); }));     // 39 significant digits
  EXPECT_EQ((max - Decimal(1)) + Decimal(1), max);
  EXPECT_EQ(max + -max, Decimal());
  EXPECT_EQ((D("1") + D("1e-37")).to_string(), "1.0000000000000000000000000000000000001");
}

TEST(DecimalSubtract, SignCombinations) {
  EXPECT_EQ((D("5") - D("3")).to_string(), "2");
  EXPECT_EQ((D("3") - D("5")).to_string(), "-2");
  EXPECT_EQ((D("-3") - D("5")).to_string(), "-8");
  EXPECT_EQ((D("-3") - D("-5")).to_string(), "2");
  EXPECT_EQ((D("3") - D("-5")).to_string(), "8");
  EXPECT_EQ((D("0.1") - D("0.3")).to_string(), "-0.2");
  EXPECT_EQ((D("5") - D("5")).to_string(), "0");
  EXPECT_EQ((D("1") - D("0.001")).to_string(), "0.999");
  EXPECT_EQ((D("0.001") - D("1")).to_string(), "-0.999");
}

TEST(DecimalNegate, AndAbs) {
  EXPECT_EQ((-D("1.50")).to_string(), "-1.50");
  EXPECT_EQ((-D("-1.50")).to_string(), "1.50");
  EXPECT_EQ((-Decimal()).to_string(), "0");
  EXPECT_EQ((-D(k38Nines)).to_string(), "-" + k38Nines);
  EXPECT_EQ(D("-2.5").abs().to_string(), "2.5");
  EXPECT_EQ(D("2.5").abs().to_string(), "2.5");
  EXPECT_EQ(D("-0.00").abs().to_string(), "0.00");
}

// ---------------------------------------------------------------- *

TEST(DecimalMultiply, SignCombinations) {
  EXPECT_EQ((D("1.5") * D("2")).to_string(), "3.0");
  EXPECT_EQ((D("-1.5") * D("2")).to_string(), "-3.0");
  EXPECT_EQ((D("1.5") * D("-2")).to_string(), "-3.0");
  EXPECT_EQ((D("-1.5") * D("-2")).to_string(), "3.0");
  EXPECT_EQ((D("-1.5") * Decimal()).to_string(), "0.0");
  EXPECT_EQ((D("0.001") * D("0.003")).to_string(), "0.000003");
  EXPECT_EQ((Decimal(1200) * D("0.001")).to_string(), "1.200");
}

TEST(DecimalMultiply, StripsTrailingZerosToFit) {
  const Decimal product = D("0.10000000000000000000000") * D("0.1000000000000000000000");
  EXPECT_EQ(product, D("0.01"));
  EXPECT_EQ(product.to_string(), "0.01" + std::string(37, '0'));  // 38 digits kept
  EXPECT_EQ(Decimal::from_parts(10, -76) * D("0.1"), D("1e-76"));
  EXPECT_EQ((D("1e20") * D("1e17")).to_string(), "1" + std::string(37, '0'));
  // 19 nines squared has exactly 38 digits.
  EXPECT_EQ((D("9999999999999999999") * D("9999999999999999999")).to_string(),
            "99999999999999999980000000000000000001");
  EXPECT_EQ((D("0.9999999999999999999") * D("-0.9999999999999999999")).to_string(),
            "-0.99999999999999999980000000000000000001");
  const Decimal third = Decimal(1).divide(Decimal(3));
  EXPECT_EQ((third * third).to_string(), "0.111111111111111110888888888888888889");
  EXPECT_EQ((D("1e-38") * D("1e-38")).exponent(), -76);
  EXPECT_EQ((D("1e-50") * D("0e-50")).exponent(), -76);
}

TEST(DecimalMultiply, Overflow) {
  EXPECT_TRUE(IsOutOfRange([] { return D("1e37") * Decimal(100); }));
  EXPECT_TRUE(IsOutOfRange([] { return D("1e20") * D("1e18"); }));
  EXPECT_TRUE(IsOutOfRange([] { return D("-1e20") * D("1e18"); }));
  EXPECT_TRUE(IsOutOfRange([] { return D("99999999999999999999") * D("99999999999999999999"); }));  // 40 digits
  EXPECT_TRUE(IsOutOfRange([] { return D(k38Nines) * D(k38Nines); }));
  EXPECT_TRUE(IsOutOfRange([] { return D(k38Nines) * D("-" + k38Nines); }));
  const Decimal third = Decimal(1).divide(Decimal(3));
  EXPECT_TRUE(IsOutOfRange([&] { return third * third * third; }));  // 54 digits
}

TEST(DecimalMultiply, ExponentUnderflow) {
  EXPECT_TRUE(IsOutOfRange([] { return D("1e-40") * D("1e-40"); }));
  EXPECT_TRUE(IsOutOfRange([] { return D("1e-70") * D("1e-7"); }));
  EXPECT_TRUE(IsOutOfRange([] { return D("3e-76") * D("0.5"); }));
}

// ---------------------------------------------------------------- divide

TEST(DecimalDivide, RoundsTo18PlacesHalfAwayFromZero) {
  EXPECT_EQ(Decimal(1).divide(Decimal(3)).to_string(), "0.333333333333333333");
  EXPECT_EQ(Decimal(2).divide(Decimal(3)).to_string(), "0.666666666666666667");
  EXPECT_EQ(Decimal(-2).divide(Decimal(3)).to_string(), "-0.666666666666666667");
  EXPECT_EQ(Decimal(2).divide(Decimal(-3)).to_string(), "-0.666666666666666667");
  EXPECT_EQ(Decimal(-2).divide(Decimal(-3)).to_string(), "0.666666666666666667");
}

TEST(DecimalDivide, TiesAtThe18thDigit) {
  EXPECT_EQ(D("0.000000000000000001").divide(Decimal(2)).to_string(), "0.000000000000000001");
  EXPECT_EQ(D("-0.000000000000000001").divide(Decimal(2)).to_string(), "-0.000000000000000001");
  EXPECT_EQ(D("0.000000000000000003").divide(Decimal(2)).to_string(), "0.000000000000000002");
  EXPECT_EQ(D("0.000000000000000005").divide(Decimal(2)).to_string(), "0.000000000000000003");
  EXPECT_EQ(D("-0.000000000000000005").divide(Decimal(-2)).to_string(), "0.000000000000000003");
  EXPECT_EQ(D("5e-19").divide(Decimal(1)).to_string(), "0.000000000000000001");
  EXPECT_EQ(D("-5e-19").divide(Decimal(1)).to_string(), "-0.000000000000000001");
  EXPECT_EQ(D("4.99999e-19").divide(Decimal(1)).to_string(), "0");
  EXPECT_EQ(Decimal(1).divide(D("2e18")).to_string(), "0.000000000000000001");
  EXPECT_EQ(Decimal(1).divide(D("2.000000000000000001e18")).to_string(), "0");
  EXPECT_EQ(D("0.000000000000000001").divide(Decimal(3)).to_string(), "0");
  EXPECT_EQ(D("1e-76").divide(D("1e30")).to_string(), "0");
  EXPECT_EQ(D("7e-76").divide(Decimal(3)).to_string(), "0");
}

TEST(DecimalDivide, StripsTrailingZeros) {
  EXPECT_EQ(Decimal(1).divide(Decimal(8)).to_string(), "0.125");
  EXPECT_EQ(Decimal(10).divide(Decimal(2)).to_string(), "5");
  EXPECT_EQ(D("1.00").divide(Decimal(4)).to_string(), "0.25");
  EXPECT_EQ(Decimal().divide(Decimal(5)).to_string(), "0");
  EXPECT_EQ(D("0.000").divide(D("-5")).to_string(), "0");
  const Decimal big = D("1e30").divide(Decimal(1));
  EXPECT_EQ(big.to_string(), "1" + std::string(30, '0'));
  EXPECT_EQ(big.exponent(), 0);
  EXPECT_EQ(D("12345678901234567890.123456789").divide(Decimal(7)).to_string(), "1763668414462081127.160493827");
}

TEST(DecimalDivide, WideOperands) {
  EXPECT_EQ(Decimal(1).divide(D("0.12345678901234567890123456789012345678")).to_string(), "8.100000072900000663");
  EXPECT_EQ(
      D("9999999999999999999.9999999999999999999").divide(D("0.12345678901234567890123456789012345678")).to_string(),
      "81000000729000006633.900060368490549358");
  EXPECT_EQ(D("-9876543210987654321").divide(D("0.0000000000000000003")).to_string(),
            "-32921810703292181070000000000000000000");
  EXPECT_EQ(D("12345678901234567890123456789012345678").divide(D(k38Nines)).to_string(), "0.123456789012345679");
  EXPECT_EQ(D(k38Nines).divide(Decimal(1)).to_string(), k38Nines);
  EXPECT_EQ(D(k38Nines).divide(Decimal(10)).to_string(), "9999999999999999999999999999999999999.9");
  EXPECT_EQ(D(k38Nines).divide(D("-100")).to_string(), "-999999999999999999999999999999999999.99");
  EXPECT_EQ(Decimal(1).divide(D("1e-37")).to_string(), "1" + std::string(37, '0'));
  EXPECT_EQ(Decimal(7).divide(D("1e-30")).to_string(), "7" + std::string(30, '0'));
  EXPECT_EQ(D("1e-40").divide(D("3e-40")).to_string(), "0.333333333333333333");
}

TEST(DecimalDivide, OverflowAndDivisionByZero) {
  EXPECT_TRUE(IsOutOfRange([] { return Decimal(1).divide(D("1e-38")); }));
  EXPECT_TRUE(IsOutOfRange([] { return D(k38Nines).divide(D("0.5")); }));
  EXPECT_TRUE(IsOutOfRange([] { return D(k38Nines).divide(D("0.12345678901234567890123456789012345678")); }));
  EXPECT_TRUE(IsOutOfRange([] { return Decimal(2).divide(D("7e-76")); }));
  EXPECT_TRUE(Throws([] { return Decimal(1).divide(Decimal()); }, Errc::invalid_value, kDivisionByZero));
  EXPECT_TRUE(Throws([] { return Decimal().divide(D("0.000")); }, Errc::invalid_value, kDivisionByZero));
}

// ---------------------------------------------------------------- // and %

TEST(DecimalDivideTruncated, TowardZero) {
  EXPECT_EQ(Decimal(7).divide_truncated(Decimal(2)).to_string(), "3");
  EXPECT_EQ(Decimal(-7).divide_truncated(Decimal(2)).to_string(), "-3");
  EXPECT_EQ(Decimal(7).divide_truncated(Decimal(-2)).to_string(), "-3");
  EXPECT_EQ(Decimal(-7).divide_truncated(Decimal(-2)).to_string(), "3");
  EXPECT_EQ(D("7.5").divide_truncated(Decimal(2)).to_string(), "3");
  EXPECT_EQ(D("7.5").divide_truncated(D("0.5")).to_string(), "15");
  EXPECT_EQ(Decimal(-1).divide_truncated(Decimal(3)).to_string(), "0");
  EXPECT_EQ(D("1e-76").divide_truncated(D("1e37")).to_string(), "0");
  EXPECT_EQ(D("1e37").divide_truncated(D("0.5")).to_string(), "2" + std::string(37, '0'));
  EXPECT_EQ(D("12345678901234567890.123").divide_truncated(D("-0.007")).to_string(), "-1763668414462081127160");
  EXPECT_EQ(D("0.000").divide_truncated(D("3")).to_string(), "0");
  EXPECT_TRUE(IsOutOfRange([] { return D("1e37").divide_truncated(D("0.1")); }));
  EXPECT_TRUE(IsOutOfRange([] { return D(k38Nines).divide_truncated(D("1e-76")); }));
  EXPECT_TRUE(Throws([] { return Decimal(1).divide_truncated(Decimal()); }, Errc::invalid_value, kDivisionByZero));
}

TEST(DecimalRemainder, SignOfTheDividend) {
  EXPECT_EQ(Decimal(7).remainder(Decimal(2)).to_string(), "1");
  EXPECT_EQ(Decimal(-7).remainder(Decimal(2)).to_string(), "-1");
  EXPECT_EQ(Decimal(7).remainder(Decimal(-2)).to_string(), "1");
  EXPECT_EQ(Decimal(-7).remainder(Decimal(-2)).to_string(), "-1");
  EXPECT_EQ(D("7.5").remainder(Decimal(2)).to_string(), "1.5");
  EXPECT_EQ(Decimal(7).remainder(D("2.5")).to_string(), "2.0");
  EXPECT_EQ(Decimal(6).remainder(Decimal(3)).to_string(), "0");
  EXPECT_EQ(D("0.5").remainder(D(k38Nines)).to_string(), "0.5");
  EXPECT_EQ(D("1e37").remainder(D("3e-30")), D("1e-30"));
  EXPECT_EQ(D(k38Nines).remainder(D("7e-76")), D("4e-76"));
  EXPECT_EQ(D("-123456789012345678901234567890.5").remainder(D("0.0000000007")), D("-2e-10"));
  EXPECT_EQ(D("12345678901234567890.123").remainder(D("-0.007")).to_string(), "0.003");
  EXPECT_TRUE(Throws([] { return Decimal(1).remainder(Decimal()); }, Errc::invalid_value, kDivisionByZero));
}

TEST(DecimalRemainder, MatchesTheDefinition) {
  const std::vector<const char*> values = {"7", "-7", "2", "-2", "7.5", "-0.3", "0.07", "1000000.000001", "-3e-5"};
  for (const char* a : values) {
    for (const char* b : values) {
      const Decimal x = D(a);
      const Decimal y = D(b);
      EXPECT_EQ(x.remainder(y), x - y * x.divide_truncated(y)) << a << " % " << b;
    }
  }
}

// ---------------------------------------------------------------- round, ceil, floor

TEST(DecimalRound, HalfAwayFromZero) {
  struct Case {
    const char* value;
    int places;
    const char* rounded;
  };
  const std::vector<Case> cases = {
      {"0.0000005", 6, "0.000001"},
      {"-0.0000005", 6, "-0.000001"},
      {"0.0000004999", 6, "0.000000"},
      {"2.5", 0, "3"},
      {"-2.5", 0, "-3"},
      {"2.4999", 0, "2"},
      {"-2.4999", 0, "-2"},
      {"0.5", 0, "1"},
      {"-0.5", 0, "-1"},
      {"1.005", 2, "1.01"},
      {"1.0049", 2, "1.00"},
      {"9.9999995", 6, "10.000000"},
      {"1.5", 6, "1.5"},
      {"12", 0, "12"},
      {"1.25", 1, "1.3"},
      {"-1.25", 1, "-1.3"},
      {"1e-70", 6, "0.000000"},
      {"5e-39", 38, "0.00000000000000000000000000000000000001"},
      {"0.99999999999999999999999999999999999999", 0, "1"},
      {"99999999999999999999999999999999999.999", 2, "100000000000000000000000000000000000.00"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(D(c.value).round(c.places).to_string(), c.rounded) << c.value << " at " << c.places;
  }
  EXPECT_TRUE(
      Throws([] { return D("1.5").round(-1); }, Errc::invalid_value, "rounding places must be between 0 and 38"));
  EXPECT_TRUE(
      Throws([] { return D("1.5").round(39); }, Errc::invalid_value, "rounding places must be between 0 and 38"));
}

TEST(DecimalCeilFloor, GiveIntegers) {
  EXPECT_EQ(D("1.2").ceil().to_string(), "2");
  EXPECT_EQ(D("1.2").floor().to_string(), "1");
  EXPECT_EQ(D("-1.2").ceil().to_string(), "-1");
  EXPECT_EQ(D("-1.2").floor().to_string(), "-2");
  EXPECT_EQ(D("-0.5").ceil().to_string(), "0");
  EXPECT_EQ(D("2.000").ceil().to_string(), "2");
  EXPECT_EQ(D("2.000").floor().to_string(), "2");
  EXPECT_EQ(D("7").ceil().to_string(), "7");
  EXPECT_EQ(D("1e-70").ceil().to_string(), "1");
  EXPECT_EQ(D("1e-70").floor().to_string(), "0");
  EXPECT_EQ(D("-1e-70").ceil().to_string(), "0");
  EXPECT_EQ(D("-1e-70").floor().to_string(), "-1");
  EXPECT_EQ(D("0e-76").floor().to_string(), "0");
  EXPECT_EQ(D("9999999999999999999999999999999999999.9").ceil().to_string(), "10000000000000000000000000000000000000");
}

// ---------------------------------------------------------------- predicates

TEST(DecimalPredicates, IntegerScaleSign) {
  EXPECT_TRUE(D("2.000").is_integer());
  EXPECT_TRUE(D("0e-76").is_integer());
  EXPECT_TRUE(D("1e37").is_integer());
  EXPECT_FALSE(D("2.5").is_integer());
  EXPECT_FALSE(D("1e-70").is_integer());
  EXPECT_EQ(D("1.500").significant_scale(), 1);
  EXPECT_EQ(D("2.000").significant_scale(), 0);
  EXPECT_EQ(D("0.000").significant_scale(), 0);
  EXPECT_EQ(D("12").significant_scale(), 0);
  EXPECT_EQ(D("-0.0000001").significant_scale(), 7);
  EXPECT_EQ(D("1e-70").significant_scale(), 70);
  EXPECT_EQ(D("-3.5").sign(), -1);
  EXPECT_EQ(D("0.00").sign(), 0);
  EXPECT_EQ(D("3e-76").sign(), 1);
  EXPECT_TRUE(D("-0.000").is_zero());
  EXPECT_FALSE(D("-0.000").is_negative());
  EXPECT_TRUE(D("-1e-76").is_negative());
}

// ---------------------------------------------------------------- comparison

TEST(DecimalCompare, ByValueAcrossExponents) {
  EXPECT_EQ(D("1.50"), D("1.5"));
  EXPECT_EQ(D("0"), D("0.000000"));
  EXPECT_EQ(D("0e-76"), Decimal());
  EXPECT_EQ(D("1e3"), Decimal(1000));
  EXPECT_NE(D("1.5"), D("1.05"));
  EXPECT_LT(D("1e-76"), D("1e-75"));
  EXPECT_GT(D("-1e-76"), D("-1e-75"));
  EXPECT_LT(D("1.49"), D("1.5"));
  EXPECT_LT(D("-1.5"), D("-1.49"));
  EXPECT_LT(D("-0.001"), Decimal());
  EXPECT_EQ(D("1.5") <=> D("1.500"), std::strong_ordering::equal);
  EXPECT_EQ(D("2") <=> D("1.999"), std::strong_ordering::greater);
  EXPECT_EQ(D("-2") <=> D("-1.999"), std::strong_ordering::less);
}

TEST(DecimalCompare, AlignmentWouldOverflow) {
  const Decimal big = D("9.9e37");
  const Decimal tiny = D("1e-70");
  EXPECT_GT(big, tiny);
  EXPECT_LT(tiny, big);
  EXPECT_LT(-big, tiny);
  EXPECT_GT(tiny, -big);
  EXPECT_GT(big, -tiny);
  EXPECT_LT(-big, -tiny);
  EXPECT_NE(big, tiny);
  EXPECT_LT(Decimal(), tiny);
  EXPECT_GT(Decimal(), -tiny);
  EXPECT_LT(-D("1e-76"), Decimal());
  EXPECT_EQ(Decimal(), D("0e-76"));
  EXPECT_GT(Decimal(2), D("1.9999999999999999999999999999999999999"));
  EXPECT_LT(D("18"), D("18.000000000000000000000000000000000001"));
  EXPECT_GT(D("18"), D("17.999999999999999999999999999999999999"));
}

}  // namespace
}  // namespace ducto
