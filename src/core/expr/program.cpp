// src/core/expr/program.cpp: compiles a parsed formula into flat stack code and evaluates it.
//
// Evaluation never recurses: and/or, `A if C else B` and if() are jumps, values live on an explicit
// stack whose size is known at compile time. For ordinary formulas that stack is a local array, so an
// evaluation does no heap allocation and evaluate() is safely re-entrant (it is const and shares nothing).
#include "core/no_postgres.h"

#include "core/expr/program.h"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include "core/error.h"
#include "core/expr/lexer.h"
#include "core/expr/parser.h"

namespace ducto::expr {

namespace {

enum class Op : std::uint8_t {
  push_constant,  // operand: index into constants
  push_variable,  // operand: slot
  negate,
  logical_not,
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
  jump,           // operand: target
  jump_if_false,  // pops the condition; operand: target
  and_jump,       // falsy top: jump keeping it as the result, else pop it; operand: target
  or_jump,        // truthy top: jump keeping it as the result, else pop it; operand: target
  abs,
  ceil,
  floor,
  round,
  round_to,
  min,  // operand: argument count (also for the ops below)
  max,
  clamp,
  tier,
  percentile,
};

struct Instruction {
  Op op;
  std::uint32_t operand = 0;
};

}  // namespace

struct Code {
  std::string source;
  std::vector<Instruction> instructions;
  std::vector<int> positions;  // positions[i]: where a failure of instructions[i] is reported
  std::vector<Decimal> constants;
  std::vector<bool> reads_slot;
  std::size_t variable_count = 0;  // highest slot read + 1: the shortest span evaluate() accepts
  std::size_t max_stack = 0;
};

namespace {

class Compiler {
 public:
  Compiler(const Ast& ast, Code& code) : ast_(ast), code_(code) {}

  void compile(NodeId id) {
    const Node& node = ast_[id];
    switch (node.kind) {
      case NodeKind::number:
        code_.constants.push_back(node.value);
        emit(Op::push_constant, node.position, +1, code_.constants.size() - 1);
        return;
      case NodeKind::variable: return compile_variable(node);
      case NodeKind::group:
      case NodeKind::identity: return compile(node.children[0]);
      case NodeKind::negate: return compile_unary(Op::negate, node);
      case NodeKind::logical_not: return compile_unary(Op::logical_not, node);
      case NodeKind::binary: return compile_binary(node);
      case NodeKind::conditional:
        return compile_choice(node.children[1], node.children[0], node.children[2], node.position);
      case NodeKind::call: return compile_call(node);
    }
  }

 private:
  std::size_t emit(Op op, int position, int stack_effect, std::size_t operand = 0) {
    code_.instructions.push_back(Instruction{op, static_cast<std::uint32_t>(operand)});
    code_.positions.push_back(position);
    depth_ += stack_effect;
    code_.max_stack = std::max(code_.max_stack, static_cast<std::size_t>(depth_));
    return code_.instructions.size() - 1;
  }

  void jump_here(std::size_t jump) {
    code_.instructions[jump].operand = static_cast<std::uint32_t>(code_.instructions.size());
  }

  void compile_variable(const Node& node) {
    const auto slot = static_cast<std::size_t>(node.slot);
    if (code_.reads_slot.size() <= slot) code_.reads_slot.resize(slot + 1);
    code_.reads_slot[slot] = true;
    code_.variable_count = std::max(code_.variable_count, slot + 1);
    emit(Op::push_variable, node.position, +1, slot);
  }

  void compile_unary(Op op, const Node& node) {
    compile(node.children[0]);
    emit(op, node.position, 0);
  }

  void compile_binary(const Node& node) {
    if (node.op == BinaryOp::logical_and || node.op == BinaryOp::logical_or) {
      compile(node.children[0]);
      const std::size_t jump = emit(node.op == BinaryOp::logical_and ? Op::and_jump : Op::or_jump, node.position, -1);
      compile(node.children[1]);
      jump_here(jump);
      return;
    }
    compile(node.children[0]);
    compile(node.children[1]);
    emit(arithmetic_op(node.op), node.position, -1);
  }

  static Op arithmetic_op(BinaryOp op) {
    switch (op) {
      case BinaryOp::add: return Op::add;
      case BinaryOp::subtract: return Op::subtract;
      case BinaryOp::multiply: return Op::multiply;
      case BinaryOp::divide: return Op::divide;
      case BinaryOp::divide_truncated: return Op::divide_truncated;
      case BinaryOp::remainder: return Op::remainder;
      case BinaryOp::equal: return Op::equal;
      case BinaryOp::not_equal: return Op::not_equal;
      case BinaryOp::less: return Op::less;
      case BinaryOp::less_equal: return Op::less_equal;
      case BinaryOp::greater: return Op::greater;
      case BinaryOp::greater_equal: return Op::greater_equal;
      case BinaryOp::logical_and:
      case BinaryOp::logical_or: break;
    }
    return Op::add;  // unreachable: and/or are compiled as jumps
  }

  // `then if condition else otherwise` and if(condition, then, otherwise): only one branch runs.
  void compile_choice(NodeId condition, NodeId then, NodeId otherwise, int position) {
    compile(condition);
    const std::size_t to_otherwise = emit(Op::jump_if_false, position, -1);
    compile(then);
    const std::size_t to_end = emit(Op::jump, position, 0);
    jump_here(to_otherwise);
    depth_ -= 1;  // the other branch starts from the depth before `then` pushed its value
    compile(otherwise);
    jump_here(to_end);
  }

  void compile_call(const Node& node) {
    const auto& arguments = node.children;
    if (node.function == Function::if_) return compile_choice(arguments[0], arguments[1], arguments[2], node.position);
    for (const NodeId argument : arguments) compile(argument);
    const int count = static_cast<int>(arguments.size());
    emit(function_op(node.function, count), node.position, 1 - count, arguments.size());
  }

  static Op function_op(Function function, int count) {
    switch (function) {
      case Function::min: return Op::min;
      case Function::max: return Op::max;
      case Function::abs: return Op::abs;
      case Function::ceil: return Op::ceil;
      case Function::floor: return Op::floor;
      case Function::round: return count == 1 ? Op::round : Op::round_to;
      case Function::clamp: return Op::clamp;
      case Function::tier: return Op::tier;
      case Function::percentile: return Op::percentile;
      case Function::if_: break;
    }
    return Op::min;  // unreachable: if() is compiled as jumps
  }

  const Ast& ast_;
  Code& code_;
  int depth_ = 0;
};

// Room for the values of an evaluation, left uninitialized: zeroing it would cost more than a
// typical formula's whole evaluation.
template <std::size_t N>
class InlineStack {
 public:
  InlineStack() {}  // NOLINT: deliberately leaves values_ uninitialized
  Decimal* data() { return values_; }

 private:
  union {
    Decimal values_[N];
  };
};

constexpr std::size_t kInlineStackSize = 64;

Decimal truth(bool value) { return Decimal(value ? 1 : 0); }

Decimal lowest(const Decimal* first, std::size_t count) {
  Decimal best = first[0];
  for (std::size_t i = 1; i < count; ++i)
    if (first[i] < best) best = first[i];
  return best;
}

Decimal highest(const Decimal* first, std::size_t count) {
  Decimal best = first[0];
  for (std::size_t i = 1; i < count; ++i)
    if (first[i] > best) best = first[i];
  return best;
}

// tier(v, t1, r1, ..., tn, rn, default): the rate of the first threshold above v.
Decimal tier(const Decimal* arguments, std::size_t count) {
  const Decimal& value = arguments[0];
  for (std::size_t i = 1; i + 1 < count - 1; i += 2)
    if (value < arguments[i]) return arguments[i + 1];
  return arguments[count - 1];
}

Decimal round_to(const Decimal& value, const Decimal& digits, int position) {
  const std::optional<std::int64_t> places = digits.is_integer() ? digits.to_int64() : std::nullopt;
  if (!places || *places < 0 || *places > Decimal::kDivisionScale)
    fail_at("round() digits must be an integer from 0 to 18", position);
  return value.round(static_cast<int>(*places));
}

Decimal clamp(const Decimal& value, const Decimal& low, const Decimal& high, int position) {
  if (low > high) fail_at("clamp() lower bound is greater than upper bound", position);
  if (value < low) return low;
  if (value > high) return high;
  return value;
}

// percentile(p, v1, ..., vn): linear interpolation between the sorted values at rank p/100*(n-1),
// exact (the rank is scaled by multiplying by 0.01, never divided). Sorts the values in place.
Decimal percentile(Decimal* arguments, std::size_t count, int position) {
  const Decimal& p = arguments[0];
  if (p < Decimal(0) || p > Decimal(100)) fail_at("percentile() p must be between 0 and 100", position);
  Decimal* const values = arguments + 1;
  const std::size_t n = count - 1;
  std::sort(values, values + n);
  const Decimal rank = p * Decimal(static_cast<std::int64_t>(n - 1)) * Decimal::from_parts(1, -2);
  const Decimal below = rank.floor();
  const auto index = static_cast<std::size_t>(*below.to_int64());
  if (index + 1 >= n) return values[n - 1];
  return values[index] + (values[index + 1] - values[index]) * (rank - below);
}

// The interpreter. `stack` has room for code.max_stack values.
Decimal run(const Code& code, std::span<const Decimal> variables, Decimal* stack) {
  const Instruction* const instructions = code.instructions.data();
  const std::size_t size = code.instructions.size();
  const Decimal* const constants = code.constants.data();
  Decimal* top = stack;  // one past the topmost value
  std::size_t pc = 0;
  const auto position = [&] { return code.positions[pc - 1]; };
  const auto push = [&](const Decimal& value) { std::construct_at(top++, value); };
  // Replaces the two topmost values by operation(below, top).
  const auto combine = [&](auto operation) {
    top[-2] = operation(top[-2], top[-1]);
    --top;
  };
  // Replaces the `count` topmost values by operation(first, count).
  const auto reduce = [&](std::size_t count, auto operation) {
    top -= count;
    *top = operation(top, count);
    ++top;
  };
  const auto nonzero = [&](const Decimal& divisor) -> const Decimal& {
    if (divisor.is_zero()) fail_at("division by zero", position());
    return divisor;
  };
  try {
    while (pc < size) {
      const Instruction instruction = instructions[pc++];
      const std::size_t operand = instruction.operand;
      switch (instruction.op) {
        case Op::push_constant: push(constants[operand]); break;
        case Op::push_variable: push(variables[operand]); break;
        case Op::negate: top[-1] = -top[-1]; break;
        case Op::logical_not: top[-1] = truth(top[-1].is_zero()); break;
        case Op::add: combine([](const Decimal& a, const Decimal& b) { return a + b; }); break;
        case Op::subtract: combine([](const Decimal& a, const Decimal& b) { return a - b; }); break;
        case Op::multiply: combine([](const Decimal& a, const Decimal& b) { return a * b; }); break;
        case Op::divide: combine([&](const Decimal& a, const Decimal& b) { return a.divide(nonzero(b)); }); break;
        case Op::divide_truncated:
          combine([&](const Decimal& a, const Decimal& b) { return a.divide_truncated(nonzero(b)); });
          break;
        case Op::remainder:
          combine([&](const Decimal& a, const Decimal& b) { return a.remainder(nonzero(b)); });
          break;
        case Op::equal: combine([](const Decimal& a, const Decimal& b) { return truth(a == b); }); break;
        case Op::not_equal: combine([](const Decimal& a, const Decimal& b) { return truth(a != b); }); break;
        case Op::less: combine([](const Decimal& a, const Decimal& b) { return truth(a < b); }); break;
        case Op::less_equal: combine([](const Decimal& a, const Decimal& b) { return truth(a <= b); }); break;
        case Op::greater: combine([](const Decimal& a, const Decimal& b) { return truth(a > b); }); break;
        case Op::greater_equal: combine([](const Decimal& a, const Decimal& b) { return truth(a >= b); }); break;
        case Op::jump: pc = operand; break;
        case Op::jump_if_false:
          --top;
          if (top->is_zero()) pc = operand;
          break;
        case Op::and_jump:
          if (top[-1].is_zero()) pc = operand;
          else --top;
          break;
        case Op::or_jump:
          if (!top[-1].is_zero()) pc = operand;
          else --top;
          break;
        case Op::abs: top[-1] = top[-1].abs(); break;
        case Op::ceil: top[-1] = top[-1].ceil(); break;
        case Op::floor: top[-1] = top[-1].floor(); break;
        case Op::round: top[-1] = top[-1].round(0); break;
        case Op::round_to:
          combine([&](const Decimal& value, const Decimal& digits) { return round_to(value, digits, position()); });
          break;
        case Op::min: reduce(operand, lowest); break;
        case Op::max: reduce(operand, highest); break;
        case Op::clamp:
          top -= 2;
          top[-1] = clamp(top[-1], top[0], top[1], position());
          break;
        case Op::tier: reduce(operand, tier); break;
        case Op::percentile:
          reduce(operand, [&](Decimal* arguments, std::size_t count) { return percentile(arguments, count, position()); });
          break;
      }
    }
  } catch (const Error& error) {
    // Our own failures already say where; the decimal type's overflow does not know.
    if (error.code() != Errc::out_of_range) throw;
    fail_at("numeric overflow", position());
  }
  return top[-1];
}

}  // namespace

Program Program::compile(std::string_view source, const SymbolTable& symbols) {
  const Ast ast = parse(source, symbols);
  auto code = std::make_unique<Code>();
  code->source = std::string(source);
  Compiler(ast, *code).compile(ast.root);
  return Program(std::move(code));
}

Decimal Program::evaluate(std::span<const Decimal> variables) const {
  if (variables.size() < code_->variable_count)
    throw Error(Errc::invalid_value, "formula reads " + std::to_string(code_->variable_count) +
                                         " variables but " + std::to_string(variables.size()) + " were given");
  if (code_->max_stack <= kInlineStackSize) {
    InlineStack<kInlineStackSize> stack;
    return run(*code_, variables, stack.data());
  }
  std::vector<Decimal> stack(code_->max_stack);
  return run(*code_, variables, stack.data());
}

bool Program::uses(int slot) const {
  return slot >= 0 && static_cast<std::size_t>(slot) < code_->reads_slot.size() &&
         code_->reads_slot[static_cast<std::size_t>(slot)];
}

const std::string& Program::source() const { return code_->source; }

Program::Program(std::unique_ptr<Code> code) : code_(std::move(code)) {}
Program::Program(Program&&) noexcept = default;
Program& Program::operator=(Program&&) noexcept = default;
Program::~Program() = default;

}  // namespace ducto::expr
