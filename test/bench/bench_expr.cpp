// test/bench/bench_expr.cpp: Google Benchmark of the expression language: compiled evaluation of the
// linear pricing formula and of a tiered one (design.md asks for >= 10 million evaluations/s of the
// linear formula on one core), and the cost of compiling a typical formula.
#include "core/no_postgres.h"

#include <array>

#include <benchmark/benchmark.h>

#include "core/decimal.h"
#include "core/expr/program.h"

namespace {

using ducto::Decimal;
using ducto::expr::Program;
using ducto::expr::SymbolTable;

constexpr const char* kLinearFormula = "input_tokens * 0.001 + output_tokens * 0.003";
constexpr const char* kTieredFormula =
    "tier(input_tokens, 1000, 0.002, 10000, 0.0015, 0.001) * ceil(output_tokens / 1000)"
    " + if(cache_read_tokens > 0, 0.5, 0)";

const SymbolTable& symbols() {
  static const SymbolTable table({"input_tokens", "output_tokens", "cache_read_tokens"});
  return table;
}

const std::array<Decimal, 3> kUsage = {Decimal(1234), Decimal(5678), Decimal(100)};

void evaluate(benchmark::State& state, const char* formula) {
  const Program program = Program::compile(formula, symbols());
  for (auto _ : state) {
    benchmark::DoNotOptimize(program.evaluate(kUsage));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_EvaluateLinear(benchmark::State& state) { evaluate(state, kLinearFormula); }
void BM_EvaluateTiered(benchmark::State& state) { evaluate(state, kTieredFormula); }

void BM_CompileTiered(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(Program::compile(kTieredFormula, symbols()));
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_EvaluateLinear);
BENCHMARK(BM_EvaluateTiered);
BENCHMARK(BM_CompileTiered);

}  // namespace

BENCHMARK_MAIN();
