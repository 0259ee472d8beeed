// src/core/expr/parser.h: the syntax tree of a formula and the parser that builds and validates it.
//
// parse() checks everything that does not need values: length, syntax, variable and function names,
// arities, nesting depth and node count. The tree lives in one vector (children are indices), so it
// is freed without recursion and compiled by program.cpp.
#pragma once
#include "core/no_postgres.h"

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/decimal.h"
#include "core/expr/program.h"

namespace ducto::expr {

using NodeId = std::int32_t;

enum class NodeKind : std::uint8_t {
  number,       // value
  variable,     // slot
  group,        // ( child ): no code of its own, kept for the nesting-depth rule
  negate,       // unary minus
  identity,     // unary plus
  logical_not,  // not
  binary,       // op: arithmetic, comparison, and, or
  conditional,  // children: then, condition, otherwise (source order of `A if C else B`)
  call,         // function, children: the arguments
};

enum class BinaryOp : std::uint8_t {
  add,
  subtract,
  multiply,
  divide,
  divide_truncated,
  remainder,
  equal,
  not_equal,
  less,
  less_equal,
  greater,
  greater_equal,
  logical_and,
  logical_or,
};

enum class Function : std::uint8_t { min, max, abs, ceil, floor, round, clamp, if_, tier, percentile };

struct Node {
  NodeKind kind = NodeKind::number;
  int position = 1;  // the token that failures are reported at: literal, name, operator, `if`, `(`
  BinaryOp op = BinaryOp::add;
  Function function = Function::min;
  int slot = -1;
  Decimal value{};
  std::vector<NodeId> children{};
};

struct Ast {
  std::vector<Node> nodes;
  NodeId root = 0;

  const Node& operator[](NodeId id) const { return nodes[static_cast<std::size_t>(id)]; }
};

// Throws Error(invalid_value, "... at N") on the first problem in source order.
Ast parse(std::string_view source, const SymbolTable& symbols);

}  // namespace ducto::expr
