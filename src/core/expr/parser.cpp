// src/core/expr/parser.cpp: recursive descent over the precedence levels of design.md, with the limits
// on untrusted formulas enforced while parsing (so the C stack stays bounded by the nesting limit).
#include "core/no_postgres.h"

#include "core/expr/parser.h"

#include <array>
#include <optional>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/expr/lexer.h"

namespace ducto::expr {

namespace {

// "text" in double quotes, for messages. Built by appending: GCC 12 warns falsely (-Wrestrict) on
// `"literal" + std::string(...)` at -O3.
std::string quote(std::string_view text) {
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.append(1, '"').append(text).append(1, '"');
  return quoted;
}

constexpr int kUnbounded = -1;

struct FunctionInfo {
  std::string_view name;
  Function function;
  int min_arguments;
  int max_arguments;  // kUnbounded for variadic functions
  bool even_count;
  std::string_view arity_rule;  // completes "name() takes ..."
};

constexpr std::array<FunctionInfo, 10> kFunctions = {{
    {"min", Function::min, 1, kUnbounded, false, "at least 1 argument"},
    {"max", Function::max, 1, kUnbounded, false, "at least 1 argument"},
    {"abs", Function::abs, 1, 1, false, "exactly 1 argument"},
    {"ceil", Function::ceil, 1, 1, false, "exactly 1 argument"},
    {"floor", Function::floor, 1, 1, false, "exactly 1 argument"},
    {"round", Function::round, 1, 2, false, "1 or 2 arguments"},
    {"clamp", Function::clamp, 3, 3, false, "exactly 3 arguments"},
    {"if", Function::if_, 3, 3, false, "exactly 3 arguments"},
    {"tier", Function::tier, 4, kUnbounded, true, "an even number of arguments, at least 4"},
    {"percentile", Function::percentile, 2, kUnbounded, false, "at least 2 arguments"},
}};

const FunctionInfo* find_function(std::string_view name) {
  for (const auto& info : kFunctions)
    if (info.name == name) return &info;
  return nullptr;
}

bool arity_fits(const FunctionInfo& info, int count) {
  if (count < info.min_arguments) return false;
  if (info.max_arguments != kUnbounded && count > info.max_arguments) return false;
  return !info.even_count || count % 2 == 0;
}

std::optional<BinaryOp> comparison_op(TokenKind kind) {
  switch (kind) {
    case TokenKind::equal_equal: return BinaryOp::equal;
    case TokenKind::not_equal: return BinaryOp::not_equal;
    case TokenKind::less: return BinaryOp::less;
    case TokenKind::less_equal: return BinaryOp::less_equal;
    case TokenKind::greater: return BinaryOp::greater;
    case TokenKind::greater_equal: return BinaryOp::greater_equal;
    default: return std::nullopt;
  }
}

std::optional<BinaryOp> additive_op(TokenKind kind) {
  switch (kind) {
    case TokenKind::plus: return BinaryOp::add;
    case TokenKind::minus: return BinaryOp::subtract;
    default: return std::nullopt;
  }
}

std::optional<BinaryOp> multiplicative_op(TokenKind kind) {
  switch (kind) {
    case TokenKind::star: return BinaryOp::multiply;
    case TokenKind::slash: return BinaryOp::divide;
    case TokenKind::slash_slash: return BinaryOp::divide_truncated;
    case TokenKind::percent: return BinaryOp::remainder;
    default: return std::nullopt;
  }
}

// The constructs that open a nesting level (design.md limit "nesting depth 64").
bool opens_level(NodeKind kind) {
  switch (kind) {
    case NodeKind::group:
    case NodeKind::negate:
    case NodeKind::identity:
    case NodeKind::logical_not:
    case NodeKind::conditional:
    case NodeKind::call: return true;
    default: return false;
  }
}

[[noreturn]] void fail_too_deep(int position) {
  fail_at("formula is nested deeper than " + std::to_string(kMaxNestingDepth) + " levels", position);
}

class Parser {
 public:
  Parser(std::string_view source, const SymbolTable& symbols) : lexer_(source), symbols_(symbols) {
    advance();
  }

  Ast parse_formula() && {
    if (current_.kind == TokenKind::end) fail_at("empty formula", 1);
    ast_.root = parse_conditional();
    if (current_.kind != TokenKind::end)
      fail_at("unexpected " + quote(current_.text), current_.position);
    return std::move(ast_);
  }

 private:
  void advance() { current_ = lexer_.next(); }

  void expect(TokenKind kind, std::string_view message) {
    if (current_.kind != kind) fail_at(message, current_.position);
    advance();
  }

  // Every literal, variable, operator and call is one node; counted as its token is read, so the
  // error points at the first node past the limit.
  void count_node(int position) {
    if (++node_count_ > kMaxNodes)
      fail_at("formula has more than " + std::to_string(kMaxNodes) + " nodes", position);
  }

  NodeId add(Node node) {
    ast_.nodes.push_back(std::move(node));
    return static_cast<NodeId>(ast_.nodes.size() - 1);
  }

  NodeId add_binary(BinaryOp op, int position, NodeId left, NodeId right) {
    return add(Node{.kind = NodeKind::binary, .position = position, .op = op, .children = {left, right}});
  }

  // Parses one nested level opened at `position`; the check comes before the recursion, which is
  // what keeps the parser's own stack bounded.
  template <typename ParseInside>
  auto nested(int position, ParseInside parse_inside) {
    if (level_ + 1 > kMaxNestingDepth) fail_too_deep(position);
    ++level_;
    auto inside = parse_inside();
    --level_;
    return inside;
  }

  // `then` was parsed before its `if` was seen, one level shallower than it turns out to be: walk it
  // again at its real depth.
  void check_branch_depth(NodeId then, int branch_level) const {
    std::vector<std::pair<NodeId, int>> pending{{then, branch_level}};
    while (!pending.empty()) {
      const auto [id, enclosing] = pending.back();
      pending.pop_back();
      const Node& node = ast_[id];
      const int level = opens_level(node.kind) ? enclosing + 1 : enclosing;
      if (level > kMaxNestingDepth) fail_too_deep(node.position);
      for (auto child = node.children.rbegin(); child != node.children.rend(); ++child)
        pending.emplace_back(*child, level);
    }
  }

  // conditional := or [ "if" or "else" conditional ]
  NodeId parse_conditional() {
    const NodeId then = parse_or();
    if (current_.kind != TokenKind::keyword_if) return then;
    const int position = current_.position;
    count_node(position);
    advance();
    if (level_ + 1 > kMaxNestingDepth) fail_too_deep(position);
    check_branch_depth(then, level_ + 1);
    const NodeId condition = nested(position, [this] { return parse_or(); });
    expect(TokenKind::keyword_else, "expected \"else\"");
    const NodeId otherwise = nested(position, [this] { return parse_conditional(); });
    return add(Node{.kind = NodeKind::conditional, .position = position, .children = {then, condition, otherwise}});
  }

  NodeId parse_or() {
    NodeId left = parse_and();
    while (current_.kind == TokenKind::keyword_or) {
      const int position = current_.position;
      count_node(position);
      advance();
      left = add_binary(BinaryOp::logical_or, position, left, parse_and());
    }
    return left;
  }

  NodeId parse_and() {
    NodeId left = parse_not();
    while (current_.kind == TokenKind::keyword_and) {
      const int position = current_.position;
      count_node(position);
      advance();
      left = add_binary(BinaryOp::logical_and, position, left, parse_not());
    }
    return left;
  }

  NodeId parse_not() {
    if (current_.kind != TokenKind::keyword_not) return parse_comparison();
    const int position = current_.position;
    count_node(position);
    advance();
    const NodeId operand = nested(position, [this] { return parse_not(); });
    return add(Node{.kind = NodeKind::logical_not, .position = position, .children = {operand}});
  }

  // At most one comparison: `1 < x < 9` would read as a range check but means something else in
  // every language that allows it, so it is refused.
  NodeId parse_comparison() {
    const NodeId left = parse_additive();
    const auto op = comparison_op(current_.kind);
    if (!op) return left;
    const int position = current_.position;
    count_node(position);
    advance();
    const NodeId comparison = add_binary(*op, position, left, parse_additive());
    if (comparison_op(current_.kind)) fail_at("comparisons cannot be chained", current_.position);
    return comparison;
  }

  NodeId parse_additive() {
    NodeId left = parse_multiplicative();
    while (const auto op = additive_op(current_.kind)) {
      const int position = current_.position;
      count_node(position);
      advance();
      left = add_binary(*op, position, left, parse_multiplicative());
    }
    return left;
  }

  NodeId parse_multiplicative() {
    NodeId left = parse_unary();
    while (const auto op = multiplicative_op(current_.kind)) {
      const int position = current_.position;
      count_node(position);
      advance();
      left = add_binary(*op, position, left, parse_unary());
    }
    return left;
  }

  NodeId parse_unary() {
    if (current_.kind != TokenKind::plus && current_.kind != TokenKind::minus) return parse_primary();
    const NodeKind kind = current_.kind == TokenKind::minus ? NodeKind::negate : NodeKind::identity;
    const int position = current_.position;
    count_node(position);
    advance();
    const NodeId operand = nested(position, [this] { return parse_unary(); });
    return add(Node{.kind = kind, .position = position, .children = {operand}});
  }

  NodeId parse_primary() {
    const Token token = current_;
    switch (token.kind) {
      case TokenKind::number: return parse_number(token);
      case TokenKind::keyword_true:
      case TokenKind::keyword_false:
        count_node(token.position);
        advance();
        return add(Node{.kind = NodeKind::number,
                        .position = token.position,
                        .value = Decimal(token.kind == TokenKind::keyword_true ? 1 : 0)});
      case TokenKind::identifier: return parse_name(token);
      case TokenKind::keyword_if:
        // In operand position `if` can only be the function; the conditional never starts here.
        advance();
        if (current_.kind != TokenKind::left_paren) fail_at("expected an expression", token.position);
        return parse_call(token, *find_function("if"));
      case TokenKind::left_paren: {
        advance();
        const NodeId inside = nested(token.position, [this] { return parse_conditional(); });
        expect(TokenKind::right_paren, "expected \")\"");
        return add(Node{.kind = NodeKind::group, .position = token.position, .children = {inside}});
      }
      default: fail_at("expected an expression", token.position);
    }
  }

  NodeId parse_number(const Token& token) {
    count_node(token.position);
    advance();
    std::optional<Decimal> value;
    try {
      value = Decimal::parse(token.text);
    } catch (const Error&) {
      // The lexer only lets well-formed numbers through, so a failure here means the value does
      // not fit the decimal type.
      fail_at("number out of range", token.position);
    }
    return add(Node{.kind = NodeKind::number, .position = token.position, .value = *value});
  }

  // A name followed by "(" is a call; otherwise a variable. Function names are never variables, so
  // a formula cannot change meaning when a measure of the same name is added to the symbol table.
  NodeId parse_name(const Token& token) {
    advance();
    const std::string quoted = quote(token.text);
    if (current_.kind == TokenKind::left_paren) {
      const FunctionInfo* info = find_function(token.text);
      if (info == nullptr) fail_at("unknown function " + quoted, token.position);
      return parse_call(token, *info);
    }
    const int slot = find_function(token.text) ? -1 : symbols_.find(token.text);
    if (slot < 0) fail_at("unknown variable " + quoted, token.position);
    count_node(token.position);
    return add(Node{.kind = NodeKind::variable, .position = token.position, .slot = slot});
  }

  // Called with the current token on "(".
  NodeId parse_call(const Token& name, const FunctionInfo& info) {
    count_node(name.position);
    advance();
    std::vector<NodeId> arguments = nested(name.position, [this] { return parse_arguments(); });
    if (!arity_fits(info, static_cast<int>(arguments.size())))
      fail_at(std::string(info.name) + "() takes " + std::string(info.arity_rule), name.position);
    return add(Node{.kind = NodeKind::call,
                    .position = name.position,
                    .function = info.function,
                    .children = std::move(arguments)});
  }

  std::vector<NodeId> parse_arguments() {
    std::vector<NodeId> arguments;
    if (current_.kind != TokenKind::right_paren) {
      arguments.push_back(parse_conditional());
      while (current_.kind == TokenKind::comma) {
        advance();
        arguments.push_back(parse_conditional());
      }
    }
    expect(TokenKind::right_paren, "expected \")\"");
    return arguments;
  }

  Lexer lexer_;
  const SymbolTable& symbols_;
  Token current_;
  Ast ast_;
  int level_ = 0;
  int node_count_ = 0;
};

}  // namespace

Ast parse(std::string_view source, const SymbolTable& symbols) {
  if (count_characters(source) > kMaxFormulaLength)
    fail_at("formula is longer than " + std::to_string(kMaxFormulaLength) + " characters",
            static_cast<int>(kMaxFormulaLength) + 1);
  return Parser(source, symbols).parse_formula();
}

}  // namespace ducto::expr
