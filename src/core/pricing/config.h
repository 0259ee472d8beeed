// src/core/pricing/config.h: a pricing config, validated and compiled (design.md, Pricing config).
//
// A Config is immutable once compiled: every formula is a compiled expr::Program, so pricing a usage
// record never parses. Configs are shared (std::shared_ptr<const Config>) between the per-backend caches.
#pragma once
#include "core/no_postgres.h"

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decimal.h"
#include "core/expr/program.h"

namespace ducto::pricing {

// The usage measures every config knows, in slot order; declared `measures` follow them.
inline constexpr std::array<std::string_view, 9> kBuiltinMeasures = {
    "input_tokens",   "output_tokens",  "cache_read_tokens", "cache_write_tokens", "tool_calls",
    "search_queries", "search_results", "web_search_calls",  "code_exec_calls"};
inline constexpr int kToolCallsSlot = 4;

// The key of the fallback formula in `models`, `tools` and a plan's `rate_overrides`.
inline constexpr std::string_view kDefaultKey = "_default";

struct Plan {
  std::string id;
  std::string name;
  Decimal free_allowance;                              // credits per calendar month (UTC); 0 if absent
  std::map<std::string, expr::Program, std::less<>> rate_overrides;
  std::map<std::string, std::string, std::less<>> features;  // feature -> its value as JSON text
};

class Config {
 public:
  // Validates and compiles. Throws Error(invalid_value) whose message is
  //   "invalid pricing config: <problem>; <problem>; ..."
  // listing every problem validate() reports.
  static std::shared_ptr<const Config> compile(std::string_view json_text);

  const expr::SymbolTable& symbols() const { return symbols_; }
  // Slot of a usage measure (builtin or declared), or -1.
  int measure_slot(std::string_view name) const { return symbols_.find(name); }

  const Decimal& min_balance() const { return min_balance_; }
  // Ascending, without duplicates.
  const std::vector<Decimal>& low_balance_thresholds() const { return low_balance_thresholds_; }
  const Plan* plan(std::string_view id) const;
  const std::map<std::string, Plan, std::less<>>& plans() const { return plans_; }
  // The credits of a fixed job, or nullopt when the config has no such job.
  std::optional<Decimal> fixed_job(std::string_view name) const;

  // The formula for `model` (empty: no model given) for a user on `plan` (nullptr: none), following
  // plan.rate_overrides[model], models[model], plan.rate_overrides._default, models._default.
  // Returns the program and the key it was found under, or nullopt when there is none.
  struct ModelFormula {
    const expr::Program* program;
    std::string_view key;
  };
  std::optional<ModelFormula> model_formula(std::string_view model, const Plan* plan) const;

  // Tool formulas by tool name (`_default` included when present).
  const std::map<std::string, expr::Program, std::less<>>& tool_formulas() const { return tools_; }
  const expr::Program* search_formula() const { return search_ ? &*search_ : nullptr; }
  const expr::Program* cache_formula() const { return cache_ ? &*cache_ : nullptr; }

 private:
  friend class ConfigBuilder;  // config.cpp
  expr::SymbolTable symbols_;
  std::map<std::string, expr::Program, std::less<>> models_;
  std::map<std::string, expr::Program, std::less<>> tools_;
  std::optional<expr::Program> search_;
  std::optional<expr::Program> cache_;
  std::map<std::string, Decimal, std::less<>> fixed_;
  Decimal min_balance_;
  std::vector<Decimal> low_balance_thresholds_;
  std::map<std::string, Plan, std::less<>> plans_;
};

// Every problem of a config, each "<path>: <message>", in document order; empty when it is valid.
// Paths are dotted; a key containing a dot or a quote is quoted: models."gpt-4.1".
// Formula problems carry the expression error: `models.gpt-4: unknown variable "inputtokens" at 1`.
std::vector<std::string> validate(std::string_view json_text);

// One segment of such a path: the key itself, or the key quoted ("..." with \" escaped) when it is
// empty or contains a dot or a quote. The engine names failing formulas with it.
std::string path_key(std::string_view key);

}  // namespace ducto::pricing
