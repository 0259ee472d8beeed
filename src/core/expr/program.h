// src/core/expr/program.h: the public face of the expression language (design.md, Expression language).
//
// A formula is compiled once into a Program (lexer -> parser -> flat code) and evaluated many times
// against a vector of variable values. Compilation validates everything that can be known without
// values: syntax, names, arities, limits. Evaluation is total: it either returns a Decimal or throws
// Error(Errc::invalid_value) with a message that ends in " at N" (N the 1-based character position of
// the operator or call that failed). Compilation errors end the same way.
#pragma once
#include "core/no_postgres.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/decimal.h"

namespace ducto::expr {

// Limits on untrusted formulas.
inline constexpr std::size_t kMaxFormulaLength = 4096;  // characters
inline constexpr int kMaxNestingDepth = 64;
inline constexpr int kMaxNodes = 1000;

// The variables a formula may name, each bound to a slot (its index in this list).
class SymbolTable {
 public:
  SymbolTable() = default;
  explicit SymbolTable(std::vector<std::string> names) : names_(std::move(names)) {}
  // Slot of `name`, or -1 when unknown.
  int find(std::string_view name) const {
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return static_cast<int>(i);
    return -1;
  }
  int add(std::string name) {
    names_.push_back(std::move(name));
    return static_cast<int>(names_.size()) - 1;
  }
  std::size_t size() const { return names_.size(); }
  const std::string& name(std::size_t slot) const { return names_[slot]; }

 private:
  std::vector<std::string> names_;
};

struct Code;  // the compiled instructions (program.cpp)

class Program {
 public:
  // Throws Error(invalid_value) with messages such as
  //   unknown variable "inputtokens" at 1
  //   unknown function "foo" at 3
  //   max() takes at least 1 argument at 1
  //   comparisons cannot be chained at 7
  //   the ** operator is not supported at 3
  //   formula is longer than 4096 characters
  static Program compile(std::string_view source, const SymbolTable& symbols);

  // variables[i] is the value of slot i of the SymbolTable the program was compiled with; the span
  // must be at least that long. Throws Error(invalid_value) on evaluation errors (division by zero,
  // overflow, a bad argument to round/percentile/clamp), message ending in " at N".
  Decimal evaluate(std::span<const Decimal> variables) const;

  // True when the formula names the slot (lets callers skip unused measures).
  bool uses(int slot) const;
  // The formula as written.
  const std::string& source() const;

  Program(Program&&) noexcept;
  Program& operator=(Program&&) noexcept;
  ~Program();

 private:
  explicit Program(std::unique_ptr<Code> code);
  std::unique_ptr<Code> code_;
};

}  // namespace ducto::expr
