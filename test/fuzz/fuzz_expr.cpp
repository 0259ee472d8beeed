// test/fuzz/fuzz_expr.cpp: libFuzzer target for the expression language. Any input is compiled as a
// formula over a few variables and evaluated; a ducto::Error is the expected way to refuse input, and
// it must be invalid_value with a message ending in " at N" (N a plausible position). Anything else
// escaping, a crash, a hang or a sanitizer report is a bug.
#include "core/no_postgres.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/decimal.h"
#include "core/error.h"
#include "core/expr/program.h"

namespace {

using ducto::Decimal;
using ducto::expr::Program;
using ducto::expr::SymbolTable;

const SymbolTable& symbols() {
  static const SymbolTable table({"x", "y", "input_tokens", "output_tokens"});
  return table;
}

// The formula error contract: SQLSTATE 22023 and " at N" with 1 <= N <= the formula's end (or 4097
// for the length limit).
void check_error(const ducto::Error& error, std::string_view formula) {
  if (error.code() != ducto::Errc::invalid_value) std::abort();
  const std::string_view message = error.what();
  const std::size_t at = message.rfind(" at ");
  if (at == std::string_view::npos) std::abort();
  const std::string_view digits = message.substr(at + 4);
  int position = 0;
  const auto [end, failure] = std::from_chars(digits.data(), digits.data() + digits.size(), position);
  if (failure != std::errc() || end != digits.data() + digits.size()) std::abort();
  const auto limit = static_cast<int>(std::max<std::size_t>(formula.size() + 1, ducto::expr::kMaxFormulaLength + 1));
  if (position < 1 || position > limit) std::abort();
}

void evaluate(const Program& program, const std::array<Decimal, 4>& values, std::string_view formula) {
  try {
    const Decimal first = program.evaluate(values);
    if (!(program.evaluate(values) == first)) std::abort();  // evaluation is deterministic
  } catch (const ducto::Error& error) {
    check_error(error, formula);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view formula(reinterpret_cast<const char*>(data), size);
  static const std::array<Decimal, 4> typical = {Decimal(7), Decimal::parse("-2.5"), Decimal(1000), Decimal(2500)};
  static const std::array<Decimal, 4> edgy = {Decimal(0), Decimal::parse("1e-18"),
                                              Decimal::parse("99999999999999999999999999999999999999"),
                                              Decimal::parse("-0.000001")};
  try {
    const Program program = Program::compile(formula, symbols());
    if (program.source() != formula) std::abort();
    evaluate(program, typical, formula);
    evaluate(program, edgy, formula);
  } catch (const ducto::Error& error) {
    check_error(error, formula);
  }
  return 0;
}
