// test/fuzz/fuzz_config.cpp: libFuzzer target for pricing configs and usage records.
//
// The input is taken as a config (validated, compiled, then used to price a small fixed usage record
// with no plan and with each of its plans) and as a metrics object priced by a fixed config. A
// ducto::Error is an expected outcome; any other exception escaping, a crash, or a broken invariant
// (validate and compile disagreeing, a breakdown that does not add up) is a bug.
#include "core/no_postgres.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "core/error.h"
#include "core/pricing/config.h"
#include "core/pricing/engine.h"

namespace {

using ducto::Decimal;
using namespace ducto::pricing;

constexpr std::string_view kFixedUsage = R"({"model": "gpt-4", "input_tokens": 1200, "output_tokens": 345,
  "cache_read_tokens": 50, "tool_calls": [{"name": "web_search"}, {"name": "code"}, {"name": "web_search"}],
  "search_queries": 2, "search_results": 7})";

constexpr std::string_view kFixedConfig = R"json({
  "models": {"_default": "input_tokens * 0.001 + output_tokens * 0.003",
             "gpt-4": "tier(input_tokens, 1000, 0.01, 0.008) * input_tokens + ceil(output_tokens / 7)"},
  "tools": {"_default": "tool_calls * 0.1", "web_search": "tool_calls * 0.5"},
  "search": {"costs": "search_queries * 0.5 + search_results * 0.05"},
  "cache": {"discount": "0 - cache_read_tokens * 0.0045"},
  "fixed": {"report": 20},
  "measures": ["images"],
  "plans": {"pro": {"rate_overrides": {"_default": "images * 0.02"}}}})json";

constexpr std::size_t kMaxPlansPriced = 4;

void check(bool invariant) {
  if (!invariant) std::abort();
}

// The breakdown adds up: total = max(0, sum of the components), each already at 6 places.
void check_breakdown(const Breakdown& b) {
  for (const Decimal* component :
       {&b.model_credits, &b.tool_credits, &b.search_credits, &b.cache_credits, &b.fixed_credits, &b.total}) {
    check(component->round(Decimal::kMoneyScale) == *component);
  }
  check(!b.model_credits.is_negative() && !b.tool_credits.is_negative() && !b.search_credits.is_negative() &&
        !b.fixed_credits.is_negative());
  const Decimal sum = b.model_credits + b.tool_credits + b.search_credits + b.cache_credits + b.fixed_credits;
  check(b.total == (sum.is_negative() ? Decimal{} : sum));
}

void price_quietly(const Config& config, const Usage& usage, const Plan* plan) {
  try {
    check_breakdown(price(config, usage, plan));
  } catch (const ducto::Error&) {
  }
}

void fuzz_config(std::string_view text) {
  const bool valid = validate(text).empty();
  std::shared_ptr<const Config> config;
  try {
    config = Config::compile(text);
  } catch (const ducto::Error& error) {
    check(error.code() == ducto::Errc::invalid_value);
  }
  check(valid == (config != nullptr));
  if (!config) return;
  const Usage usage = parse_usage(kFixedUsage, *config);
  price_quietly(*config, usage, nullptr);
  std::size_t plans = 0;
  for (const auto& [id, plan] : config->plans()) {
    if (++plans > kMaxPlansPriced) break;
    price_quietly(*config, usage, &plan);
  }
}

void fuzz_usage(std::string_view text) {
  static const std::shared_ptr<const Config> config = Config::compile(kFixedConfig);
  try {
    const Usage usage = parse_usage(text, *config);
    price_quietly(*config, usage, nullptr);
    price_quietly(*config, usage, config->plan("pro"));
  } catch (const ducto::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz_config(text);
  fuzz_usage(text);
  return 0;
}
