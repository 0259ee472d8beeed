// test/unit/expr_test.cpp: the expression language against design.md: every operator, precedence
// rule, function, error message with its position, short-circuit, and the limits on untrusted formulas.
#include "core/no_postgres.h"

#include <array>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/decimal.h"
#include "core/error.h"
#include "core/expr/program.h"

namespace ducto {
// Readable failures: gtest prints a Decimal as its text.
void PrintTo(const Decimal& value, std::ostream* out) { *out << value.to_string(); }
}  // namespace ducto

namespace {

using ducto::Decimal;
using ducto::Errc;
using ducto::Error;
using ducto::expr::Program;
using ducto::expr::SymbolTable;

Decimal D(std::string_view text) { return Decimal::parse(text); }

const SymbolTable& symbols() {
  static const SymbolTable table({"x", "y", "zero", "input_tokens", "output_tokens", "cache_read_tokens"});
  return table;
}

// x = 7, y = -2.5, zero = 0, input_tokens = 1000, output_tokens = 2500, cache_read_tokens = 0
const std::array<Decimal, 6>& values() {
  static const std::array<Decimal, 6> bound = {Decimal(7), D("-2.5"), Decimal(0), Decimal(1000), Decimal(2500), Decimal(0)};
  return bound;
}

Decimal eval(std::string_view formula, const SymbolTable& table = symbols()) {
  return Program::compile(formula, table).evaluate(values());
}

// The message of the error that compiling or evaluating `formula` raises; fails the test when there is
// none or when it is not invalid_value (every formula error is SQLSTATE 22023).
std::string error_of(std::string_view formula, const SymbolTable& table = symbols()) {
  try {
    const Program program = Program::compile(formula, table);
    const Decimal result = program.evaluate(values());
    ADD_FAILURE() << "\"" << formula << "\" gave " << result.to_string() << ", expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::invalid_value) << formula;
    return error.what();
  }
  return "";
}

std::string repeat(std::string_view text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  return out;
}

TEST(ExprNumbers, LiteralForms) {
  EXPECT_EQ(eval("12"), Decimal(12));
  EXPECT_EQ(eval("0.5"), D("0.5"));
  EXPECT_EQ(eval("1e-3"), D("0.001"));
  EXPECT_EQ(eval("1.5E+3"), Decimal(1500));
  EXPECT_EQ(eval("2e2"), Decimal(200));
  EXPECT_EQ(eval(".5"), D("0.5"));
  EXPECT_EQ(eval("5."), Decimal(5));
  EXPECT_EQ(eval("true"), Decimal(1));
  EXPECT_EQ(eval("false"), Decimal(0));
  EXPECT_EQ(eval("0.000000000000000001"), D("1e-18"));
}

TEST(ExprNumbers, OutOfRange) {
  EXPECT_EQ(error_of("1e40"), "number out of range at 1");
  EXPECT_EQ(error_of("2 + 123456789012345678901234567890123456789012"), "number out of range at 5");
}

TEST(ExprNumbers, Whitespace) {
  EXPECT_EQ(eval("\t1\r\n+\n 2 "), Decimal(3));
  EXPECT_EQ(error_of("1 +\n$"), "unexpected character \"$\" at 5");
}

TEST(ExprArithmetic, Operators) {
  EXPECT_EQ(eval("2 + 3"), Decimal(5));
  EXPECT_EQ(eval("2 - 5"), Decimal(-3));
  EXPECT_EQ(eval("2 * 3.5"), Decimal(7));
  EXPECT_EQ(eval("x * y"), D("-17.5"));
  EXPECT_EQ(eval("7 / 2"), D("3.5"));
  EXPECT_EQ(eval("1 / 3").to_string(), "0.333333333333333333");
  EXPECT_EQ(eval("2 / 3").to_string(), "0.666666666666666667");
  EXPECT_EQ(eval("-2 / 3").to_string(), "-0.666666666666666667");
}

TEST(ExprArithmetic, TruncatingDivisionAndRemainder) {
  EXPECT_EQ(eval("7 // 2"), Decimal(3));
  EXPECT_EQ(eval("-7 // 2"), Decimal(-3));
  EXPECT_EQ(eval("7 // -2"), Decimal(-3));
  EXPECT_EQ(eval("7.5 // 2"), Decimal(3));
  EXPECT_EQ(eval("7 % 3"), Decimal(1));
  EXPECT_EQ(eval("-7 % 3"), Decimal(-1));
  EXPECT_EQ(eval("7 % -3"), Decimal(1));
  EXPECT_EQ(eval("7.5 % 2"), D("1.5"));
  EXPECT_EQ(eval("x % 7"), Decimal(0));
}

TEST(ExprArithmetic, Unary) {
  EXPECT_EQ(eval("-2"), Decimal(-2));
  EXPECT_EQ(eval("+2"), Decimal(2));
  EXPECT_EQ(eval("- -2"), Decimal(2));
  EXPECT_EQ(eval("--2"), Decimal(2));
  EXPECT_EQ(eval("-+-x"), Decimal(7));
  EXPECT_EQ(eval("-y"), D("2.5"));
  EXPECT_EQ(eval("7 - -2"), Decimal(9));
  EXPECT_EQ(eval("2 * -3"), Decimal(-6));
}

TEST(ExprComparison, Operators) {
  EXPECT_EQ(eval("1 == 1.0"), Decimal(1));
  EXPECT_EQ(eval("1 == 2"), Decimal(0));
  EXPECT_EQ(eval("1 != 2"), Decimal(1));
  EXPECT_EQ(eval("1 != 1"), Decimal(0));
  EXPECT_EQ(eval("1 < 2"), Decimal(1));
  EXPECT_EQ(eval("2 < 2"), Decimal(0));
  EXPECT_EQ(eval("2 <= 2"), Decimal(1));
  EXPECT_EQ(eval("3 <= 2"), Decimal(0));
  EXPECT_EQ(eval("3 > 2"), Decimal(1));
  EXPECT_EQ(eval("2 > 2"), Decimal(0));
  EXPECT_EQ(eval("2 >= 2"), Decimal(1));
  EXPECT_EQ(eval("y >= 0"), Decimal(0));
  EXPECT_EQ(eval("(1 < 2) < 3"), Decimal(1));  // parenthesised, so not a chain
}

TEST(ExprLogic, AndOrReturnAnOperand) {
  EXPECT_EQ(eval("5 and 7"), Decimal(7));
  EXPECT_EQ(eval("0 and 7"), Decimal(0));
  EXPECT_EQ(eval("0 or 3"), Decimal(3));
  EXPECT_EQ(eval("2 or 3"), Decimal(2));
  EXPECT_EQ(eval("0 or 0"), Decimal(0));
  EXPECT_EQ(eval("0.0 or y"), D("-2.5"));
  EXPECT_EQ(eval("0.000 and 1"), Decimal(0));
  EXPECT_EQ(eval("y and x"), Decimal(7));
}

TEST(ExprLogic, Not) {
  EXPECT_EQ(eval("not 0"), Decimal(1));
  EXPECT_EQ(eval("not 5"), Decimal(0));
  EXPECT_EQ(eval("not y"), Decimal(0));
  EXPECT_EQ(eval("not not 5"), Decimal(1));
  EXPECT_EQ(eval("not 0.0"), Decimal(1));
}

TEST(ExprPrecedence, Rules) {
  EXPECT_EQ(eval("2 + 3 * 4"), Decimal(14));
  EXPECT_EQ(eval("(2 + 3) * 4"), Decimal(20));
  EXPECT_EQ(eval("2 * 3 + 4 * 5"), Decimal(26));
  EXPECT_EQ(eval("-2 * 3"), Decimal(-6));
  EXPECT_EQ(eval("-(2 + 3)"), Decimal(-5));
  EXPECT_EQ(eval("10 - 4 - 3"), Decimal(3));      // left-associative
  EXPECT_EQ(eval("100 / 10 / 2"), Decimal(5));    // left-associative
  EXPECT_EQ(eval("2 * 7 % 4"), Decimal(2));       // * and % share a level, left to right
  EXPECT_EQ(eval("2 + 7 // 2"), Decimal(5));
  EXPECT_EQ(eval("10 - 7 % 4"), Decimal(7));
  EXPECT_EQ(eval("1 + 2 < 4"), Decimal(1));        // + binds tighter than <
  EXPECT_EQ(eval("not 1 == 2"), Decimal(1));       // comparison binds tighter than not
  EXPECT_EQ(eval("not 1 + 1"), Decimal(0));
  EXPECT_EQ(eval("not x > 5"), Decimal(0));
  EXPECT_EQ(eval("not 0 and 0"), Decimal(0));      // not binds tighter than and
  EXPECT_EQ(eval("1 or 0 and 0"), Decimal(1));     // and binds tighter than or
  EXPECT_EQ(eval("(1 or 0) and 0"), Decimal(0));
  EXPECT_EQ(eval("0 and 1 or 2"), Decimal(2));
  EXPECT_EQ(eval("1 < 2 and 2 < 1"), Decimal(0));
  EXPECT_EQ(eval("1 or 0 if 0 else 5"), Decimal(5));  // or binds tighter than the conditional
  EXPECT_EQ(eval("1 if 0 else 2 if 1 else 3"), Decimal(2));  // right-associative
  EXPECT_EQ(eval("1 if 0 else 2 if 0 else 3"), Decimal(3));
  EXPECT_EQ(eval("(1 if 1 else 2) + 1"), Decimal(2));
  EXPECT_EQ(eval("1 + 1 if 1 else 2"), Decimal(2));
}

TEST(ExprConditional, ChoosesABranch) {
  EXPECT_EQ(eval("1 if 1 else 2"), Decimal(1));
  EXPECT_EQ(eval("1 if 0 else 2"), Decimal(2));
  EXPECT_EQ(eval("1 if 0.0 else 2"), Decimal(2));
  EXPECT_EQ(eval("x if x > 5 else y"), Decimal(7));
  EXPECT_EQ(eval("max(1 if 0 else 5, 2)"), Decimal(5));
  EXPECT_EQ(eval("a if(1) else 2", SymbolTable({"a"})), Decimal(7));  // `if(` after an operand is the conditional
}

TEST(ExprShortCircuit, OnlyTheChosenOperandRuns) {
  EXPECT_EQ(eval("0 and 1/0"), Decimal(0));
  EXPECT_EQ(eval("1 or 1/0"), Decimal(1));
  EXPECT_EQ(eval("if(1, 5, 1/0)"), Decimal(5));
  EXPECT_EQ(eval("if(0, 1/0, 6)"), Decimal(6));
  EXPECT_EQ(eval("5 if 1 else 1/0"), Decimal(5));
  EXPECT_EQ(eval("1/0 if 0 else 4"), Decimal(4));
  EXPECT_EQ(error_of("1 and 1/0"), "division by zero at 8");
  EXPECT_EQ(error_of("0 or 1/0"), "division by zero at 7");
  EXPECT_EQ(error_of("if(0, 5, 1/0)"), "division by zero at 11");
}

TEST(ExprFunctions, MinMax) {
  EXPECT_EQ(eval("min(3)"), Decimal(3));
  EXPECT_EQ(eval("min(3, 1, 2)"), Decimal(1));
  EXPECT_EQ(eval("min(x, y)"), D("-2.5"));
  EXPECT_EQ(eval("max(3, 1, 2)"), Decimal(3));
  EXPECT_EQ(eval("max(-1, -5)"), Decimal(-1));
  EXPECT_EQ(error_of("min()"), "min() takes at least 1 argument at 1");
  EXPECT_EQ(error_of("1 + max()"), "max() takes at least 1 argument at 5");
}

TEST(ExprFunctions, AbsCeilFloor) {
  EXPECT_EQ(eval("abs(-2.5)"), D("2.5"));
  EXPECT_EQ(eval("abs(3)"), Decimal(3));
  EXPECT_EQ(eval("ceil(1.2)"), Decimal(2));
  EXPECT_EQ(eval("ceil(-1.2)"), Decimal(-1));
  EXPECT_EQ(eval("ceil(4)"), Decimal(4));
  EXPECT_EQ(eval("floor(1.8)"), Decimal(1));
  EXPECT_EQ(eval("floor(-1.2)"), Decimal(-2));
  EXPECT_EQ(error_of("abs()"), "abs() takes exactly 1 argument at 1");
  EXPECT_EQ(error_of("abs(1, 2)"), "abs() takes exactly 1 argument at 1");
  EXPECT_EQ(error_of("ceil(1, 2)"), "ceil() takes exactly 1 argument at 1");
  EXPECT_EQ(error_of("floor()"), "floor() takes exactly 1 argument at 1");
}

TEST(ExprFunctions, Round) {
  EXPECT_EQ(eval("round(2.5)"), Decimal(3));
  EXPECT_EQ(eval("round(-2.5)"), Decimal(-3));
  EXPECT_EQ(eval("round(2.4)"), Decimal(2));
  EXPECT_EQ(eval("round(1.2345, 2)"), D("1.23"));
  EXPECT_EQ(eval("round(1.235, 2)"), D("1.24"));
  EXPECT_EQ(eval("round(-1.235, 2)"), D("-1.24"));
  EXPECT_EQ(eval("round(5, 2.0)"), Decimal(5));
  EXPECT_EQ(eval("round(1 / 3, 18)").to_string(), "0.333333333333333333");
  EXPECT_EQ(eval("round(0.5, 0)"), Decimal(1));
  EXPECT_EQ(error_of("round()"), "round() takes 1 or 2 arguments at 1");
  EXPECT_EQ(error_of("round(1, 2, 3)"), "round() takes 1 or 2 arguments at 1");
  EXPECT_EQ(error_of("round(1, 19)"), "round() digits must be an integer from 0 to 18 at 1");
  EXPECT_EQ(error_of("round(1, -1)"), "round() digits must be an integer from 0 to 18 at 1");
  EXPECT_EQ(error_of("2 * round(1, 1.5)"), "round() digits must be an integer from 0 to 18 at 5");
}

TEST(ExprFunctions, Clamp) {
  EXPECT_EQ(eval("clamp(5, 0, 3)"), Decimal(3));
  EXPECT_EQ(eval("clamp(-1, 0, 3)"), Decimal(0));
  EXPECT_EQ(eval("clamp(2, 0, 3)"), Decimal(2));
  EXPECT_EQ(eval("clamp(y, 1, 1)"), Decimal(1));
  EXPECT_EQ(error_of("clamp(1, 2)"), "clamp() takes exactly 3 arguments at 1");
  EXPECT_EQ(error_of("clamp(1, 3, 2)"), "clamp() lower bound is greater than upper bound at 1");
}

TEST(ExprFunctions, If) {
  EXPECT_EQ(eval("if(1, 2, 3)"), Decimal(2));
  EXPECT_EQ(eval("if(0, 2, 3)"), Decimal(3));
  EXPECT_EQ(eval("if(x > 5, x, y)"), Decimal(7));
  EXPECT_EQ(eval("if (0, 2, 3)"), Decimal(3));
  EXPECT_EQ(error_of("if(1, 2)"), "if() takes exactly 3 arguments at 1");
  EXPECT_EQ(error_of("if(1, 2, 3, 4)"), "if() takes exactly 3 arguments at 1");
}

TEST(ExprFunctions, Tier) {
  const char* tiered = "tier(v, 1000, 0.002, 10000, 0.0015, 0.001)";
  const SymbolTable table({"v"});
  const Program program = Program::compile(tiered, table);
  const auto rate_for = [&](std::int64_t v) { return program.evaluate(std::array<Decimal, 1>{Decimal(v)}); };
  EXPECT_EQ(rate_for(500), D("0.002"));
  EXPECT_EQ(rate_for(999), D("0.002"));
  EXPECT_EQ(rate_for(1000), D("0.0015"));  // v < t is strict
  EXPECT_EQ(rate_for(9999), D("0.0015"));
  EXPECT_EQ(rate_for(10000), D("0.001"));
  EXPECT_EQ(rate_for(20000), D("0.001"));
  EXPECT_EQ(eval("tier(5, 10, 1, 3, 2, 9)"), Decimal(1));  // first match in argument order
  EXPECT_EQ(eval("tier(5, 3, 1, 10, 2, 9)"), Decimal(2));
  EXPECT_EQ(eval("tier(5, 3, 1, 9)"), Decimal(9));
  EXPECT_EQ(error_of("tier(1, 2)"), "tier() takes an even number of arguments, at least 4 at 1");
  EXPECT_EQ(error_of("tier(1, 2, 3)"), "tier() takes an even number of arguments, at least 4 at 1");
  EXPECT_EQ(error_of("tier(1, 2, 3, 4, 5)"), "tier() takes an even number of arguments, at least 4 at 1");
}

TEST(ExprFunctions, Percentile) {
  EXPECT_EQ(eval("percentile(50, 1, 2, 3, 4)"), D("2.5"));
  EXPECT_EQ(eval("percentile(50, 4, 3, 1, 2)"), D("2.5"));  // sorted first
  EXPECT_EQ(eval("percentile(0, 5, 1, 3)"), Decimal(1));
  EXPECT_EQ(eval("percentile(100, 5, 1, 3)"), Decimal(5));
  EXPECT_EQ(eval("percentile(25, 10)"), Decimal(10));
  EXPECT_EQ(eval("percentile(90, 1, 2, 3, 4, 5)"), D("4.6"));
  EXPECT_EQ(eval("percentile(33, 0, 1, 2, 3)"), D("0.99"));
  EXPECT_EQ(eval("percentile(50, 3, 1)"), Decimal(2));
  EXPECT_EQ(eval("percentile(12.5, 0, 10, 20, 30, 40)"), Decimal(5));
  EXPECT_EQ(error_of("percentile(50)"), "percentile() takes at least 2 arguments at 1");
  EXPECT_EQ(error_of("percentile(101, 1)"), "percentile() p must be between 0 and 100 at 1");
  EXPECT_EQ(error_of("1 + percentile(-0.5, 1)"), "percentile() p must be between 0 and 100 at 5");
}

TEST(ExprEvaluationErrors, DivisionByZeroAtTheOperator) {
  EXPECT_EQ(error_of("1 / 0"), "division by zero at 3");
  EXPECT_EQ(error_of("x // zero"), "division by zero at 3");
  EXPECT_EQ(error_of("x % 0.0"), "division by zero at 3");
  EXPECT_EQ(error_of("1 + (2 / zero)"), "division by zero at 8");
}

TEST(ExprEvaluationErrors, Overflow) {
  EXPECT_EQ(error_of("99999999999999999999999999999999999999 * 10"), "numeric overflow at 40");
  EXPECT_EQ(error_of("1 + 1e37 * 1e37"), "numeric overflow at 10");
  EXPECT_EQ(error_of("99999999999999999999999999999999999999 + 1"), "numeric overflow at 40");
  EXPECT_EQ(error_of("-99999999999999999999999999999999999999 - 1"), "numeric overflow at 41");
}

TEST(ExprNames, UnknownNames) {
  EXPECT_EQ(error_of("inputtokens * 2"), "unknown variable \"inputtokens\" at 1");
  EXPECT_EQ(error_of("1 + foo"), "unknown variable \"foo\" at 5");
  EXPECT_EQ(error_of("True"), "unknown variable \"True\" at 1");  // keywords are lowercase only
  EXPECT_EQ(error_of("foo(1)"), "unknown function \"foo\" at 1");
  EXPECT_EQ(error_of("2 * x(1)"), "unknown function \"x\" at 5");
  EXPECT_EQ(error_of("Max(1)"), "unknown function \"Max\" at 1");
}

TEST(ExprNames, FunctionNamesAreNeverVariables) {
  const SymbolTable table({"min", "x"});
  EXPECT_EQ(error_of("min + 1", table), "unknown variable \"min\" at 1");
  // Slot 1 (named x here) is bound to -2.5.
  EXPECT_EQ(Program::compile("min(x, 3)", table).evaluate(values()), D("-2.5"));
}

TEST(ExprSyntax, RejectedConstructs) {
  EXPECT_EQ(error_of("2 ** 3"), "the ** operator is not supported at 3");
  EXPECT_EQ(error_of("\"a\""), "strings are not supported at 1");
  EXPECT_EQ(error_of("1 + 'a'"), "strings are not supported at 5");
  EXPECT_EQ(error_of("x = 1"), "assignment is not supported at 3");
  EXPECT_EQ(error_of("x := 1"), "assignment is not supported at 3");
  EXPECT_EQ(error_of("x += 1"), "assignment is not supported at 4");
  EXPECT_EQ(error_of("x[0]"), "subscripts are not supported at 2");
  EXPECT_EQ(error_of("x.y"), "attributes are not supported at 2");
  EXPECT_EQ(error_of("1 < x < 9"), "comparisons cannot be chained at 7");
  EXPECT_EQ(error_of("1 == 2 == 3"), "comparisons cannot be chained at 8");
  EXPECT_EQ(error_of("1 $ 2"), "unexpected character \"$\" at 3");
  EXPECT_EQ(error_of("x & y"), "unexpected character \"&\" at 3");
  EXPECT_EQ(error_of("x !"), "unexpected character \"!\" at 3");
  EXPECT_EQ(error_of("1 + \xC3\xA9"), "unexpected character \"\xC3\xA9\" at 5");
  EXPECT_EQ(error_of("\x01"), "unexpected character \"\\x01\" at 1");
  EXPECT_EQ(error_of("1 + \xFF"), "unexpected character \"\\xFF\" at 5");
}

TEST(ExprSyntax, Structure) {
  EXPECT_EQ(error_of(""), "empty formula at 1");
  EXPECT_EQ(error_of(" \t\n "), "empty formula at 1");
  EXPECT_EQ(error_of("1 +"), "expected an expression at 4");
  EXPECT_EQ(error_of("()"), "expected an expression at 2");
  EXPECT_EQ(error_of("* 2"), "expected an expression at 1");
  EXPECT_EQ(error_of("and"), "expected an expression at 1");
  EXPECT_EQ(error_of("not"), "expected an expression at 4");
  EXPECT_EQ(error_of("1 == not 2"), "expected an expression at 6");
  EXPECT_EQ(error_of("if 1 else 2"), "expected an expression at 1");
  EXPECT_EQ(error_of("1 if 1 else"), "expected an expression at 12");
  EXPECT_EQ(error_of("max(1,)"), "expected an expression at 7");
  EXPECT_EQ(error_of("(1"), "expected \")\" at 3");
  EXPECT_EQ(error_of("max(1 2)"), "expected \")\" at 7");
  EXPECT_EQ(error_of("1 if 2"), "expected \"else\" at 7");
  EXPECT_EQ(error_of("1 if 2 3"), "expected \"else\" at 8");
  EXPECT_EQ(error_of("1 2"), "unexpected \"2\" at 3");
  EXPECT_EQ(error_of("1 )"), "unexpected \")\" at 3");
  EXPECT_EQ(error_of("1 else 2"), "unexpected \"else\" at 3");
  EXPECT_EQ(error_of("2e"), "unexpected \"e\" at 2");
  EXPECT_EQ(error_of("true(1)"), "unexpected \"(\" at 5");
}

TEST(ExprSyntax, FirstErrorInSourceOrder) {
  EXPECT_EQ(error_of("foo + $"), "unknown variable \"foo\" at 1");
  EXPECT_EQ(error_of("(1 + $"), "unexpected character \"$\" at 6");
}

TEST(ExprLimits, Length) {
  EXPECT_EQ(eval("1" + std::string(4095, ' ')), Decimal(1));
  EXPECT_EQ(error_of("1" + std::string(4096, ' ')), "formula is longer than 4096 characters at 4097");
  // Characters, not bytes: 4096 two-byte characters are not too long (they are rejected as characters).
  EXPECT_EQ(error_of(repeat("\xC3\xA9", 4096)), "unexpected character \"\xC3\xA9\" at 1");
  EXPECT_EQ(error_of(repeat("\xC3\xA9", 4097)), "formula is longer than 4096 characters at 4097");
}

TEST(ExprLimits, NestingDepth) {
  EXPECT_EQ(eval(repeat("(", 64) + "1" + repeat(")", 64)), Decimal(1));
  EXPECT_EQ(error_of(repeat("(", 65) + "1" + repeat(")", 65)), "formula is nested deeper than 64 levels at 65");
  EXPECT_EQ(error_of(repeat("(", 100) + "1" + repeat(")", 100)), "formula is nested deeper than 64 levels at 65");
  EXPECT_EQ(eval(repeat("-", 64) + "1"), Decimal(1));
  EXPECT_EQ(error_of(repeat("-", 65) + "1"), "formula is nested deeper than 64 levels at 65");
  EXPECT_EQ(eval(repeat("not ", 64) + "0"), Decimal(0));
  EXPECT_EQ(error_of(repeat("not ", 65) + "0"), "formula is nested deeper than 64 levels at 257");
  EXPECT_EQ(eval(repeat("abs(", 64) + "y" + repeat(")", 64)), D("2.5"));
  EXPECT_EQ(error_of(repeat("abs(", 65) + "1" + repeat(")", 65)), "formula is nested deeper than 64 levels at 257");
  // Each conditional puts its branches one level deeper: 64 chained ones fit, the 65th `if` is too deep.
  EXPECT_EQ(eval(repeat("1 if 0 else ", 64) + "2"), Decimal(2));
  EXPECT_EQ(error_of(repeat("1 if 0 else ", 65) + "2"), "formula is nested deeper than 64 levels at 771");
  // The first branch is parsed before its `if` is seen and is checked again at its real depth.
  EXPECT_EQ(eval(repeat("(", 63) + "1" + repeat(")", 63) + " if 1 else 0"), Decimal(1));
  EXPECT_EQ(error_of(repeat("(", 64) + "1" + repeat(")", 64) + " if 1 else 0"),
            "formula is nested deeper than 64 levels at 64");
  // Mixed constructs count together.
  EXPECT_EQ(eval(repeat("-(", 32) + "1" + repeat(")", 32)), Decimal(1));
  EXPECT_EQ(error_of(repeat("-(", 32) + "-1" + repeat(")", 32)), "formula is nested deeper than 64 levels at 65");
}

TEST(ExprLimits, NodeCount) {
  // 1000 nodes: a unary minus, 500 variables and 499 additions; parentheses are not nodes.
  const std::string thousand = "-x" + repeat("+x", 499);
  EXPECT_EQ(eval(thousand), Decimal(3486));
  EXPECT_EQ(eval("(" + thousand + ")"), Decimal(3486));
  // 1001 nodes: the last x is the first node past the limit.
  EXPECT_EQ(error_of("- -x" + repeat("+x", 499)), "formula has more than 1000 nodes at 1002");
  EXPECT_EQ(error_of("max(" + repeat("1, ", 1000) + "1)"), "formula has more than 1000 nodes at 3002");
}

TEST(ExprProgram, FormulaWithoutVariables) {
  const Program program = Program::compile("2 * (3 + 4)", SymbolTable());
  EXPECT_EQ(program.evaluate({}), Decimal(14));
  EXPECT_FALSE(program.uses(0));
}

TEST(ExprProgram, UsesAndSource) {
  const char* formula = "input_tokens * 0.001 + output_tokens * 0.003";
  const Program program = Program::compile(formula, symbols());
  EXPECT_EQ(program.source(), formula);
  EXPECT_TRUE(program.uses(3));
  EXPECT_TRUE(program.uses(4));
  EXPECT_FALSE(program.uses(0));
  EXPECT_FALSE(program.uses(5));
  EXPECT_FALSE(program.uses(-1));
  EXPECT_FALSE(program.uses(99));
  EXPECT_EQ(program.evaluate(values()), D("8.5"));
}

TEST(ExprProgram, EvaluatesManyTimesWithDifferentValues) {
  const SymbolTable table({"a", "b"});
  Program program = Program::compile("a * b if a > b else a - b", table);
  EXPECT_EQ(program.evaluate(std::array<Decimal, 2>{Decimal(3), Decimal(2)}), Decimal(6));
  EXPECT_EQ(program.evaluate(std::array<Decimal, 2>{Decimal(2), Decimal(3)}), Decimal(-1));
  Program moved = std::move(program);
  EXPECT_EQ(moved.evaluate(std::array<Decimal, 2>{Decimal(5), Decimal(1)}), Decimal(5));
  EXPECT_EQ(moved.source(), "a * b if a > b else a - b");
}

TEST(ExprProgram, DeepValueStacksBeyondTheInlineOne) {
  std::string arguments = "1";
  for (int i = 2; i <= 300; ++i) arguments += ", " + std::to_string(i);
  EXPECT_EQ(eval("max(" + arguments + ")"), Decimal(300));
  EXPECT_EQ(eval("min(" + arguments + ")"), Decimal(1));
  EXPECT_EQ(eval("percentile(50, " + arguments + ")"), D("150.5"));
  // Right-nested arithmetic keeps every left operand on the stack: exactly 64 values here.
  EXPECT_EQ(eval(repeat("1 + (", 63) + "1" + repeat(")", 63)), Decimal(64));
}

TEST(ExprProgram, TooFewVariablesIsAnError) {
  const Program program = Program::compile("zero + 1", symbols());
  EXPECT_THROW((void)program.evaluate(std::array<Decimal, 1>{Decimal(1)}), Error);
}

TEST(ExprProgram, TheBenchmarkFormulas) {
  EXPECT_EQ(eval("tier(input_tokens, 1000, 0.002, 10000, 0.0015, 0.001) * ceil(output_tokens / 1000)"
                 " + if(cache_read_tokens > 0, 0.5, 0)"),
            D("0.0045"));
}

}  // namespace
