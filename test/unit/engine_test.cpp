// test/unit/engine_test.cpp: reading usage records and pricing them (design.md, Pricing config and
// Money): usage errors, tool counting, plan overrides, negative components, quantization, clamping.
#include "core/no_postgres.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/pricing/engine.h"

namespace ducto::pricing {
namespace {

constexpr std::string_view kDesignExample = R"({
  "version": 1,
  "models":  { "_default": "input_tokens * 0.001 + output_tokens * 0.003",
               "gpt-4":    "input_tokens * 0.01 + output_tokens * 0.03" },
  "tools":   { "_default": "tool_calls * 0", "web_search": "tool_calls * 0.5" },
  "search":  { "costs": "search_queries * 0.5 + search_results * 0.05" },
  "cache":   { "discount": "0 - cache_read_tokens * 0.0045" },
  "fixed":   { "roadmap_gen": 20 },
  "min_balance": 0,
  "low_balance_thresholds": [100, 20],
  "measures": ["images"],
  "plans": { "pro": { "name": "Pro", "free_allowance": 5000,
                      "rate_overrides": { "gpt-4": "input_tokens * 0.008" },
                      "features": { "priority_queue": true } } }
})";

// "model model_credits tool_credits search_credits cache_credits fixed_credits total".
std::string describe(const Breakdown& b) {
  return b.model + " " + b.model_credits.to_string() + " " + b.tool_credits.to_string() + " " +
         b.search_credits.to_string() + " " + b.cache_credits.to_string() + " " + b.fixed_credits.to_string() + " " +
         b.total.to_string();
}

std::string priced(const Config& config, std::string_view metrics, std::string_view plan = "") {
  return describe(price(config, parse_usage(metrics, config), plan.empty() ? nullptr : config.plan(plan)));
}

// The message of the Error(invalid_value) that `run` throws, or "no error".
template <typename Run>
std::string error_of(Run run) {
  try {
    run();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::invalid_value) << error.what();
    return error.what();
  }
  return "no error";
}

std::string usage_error(const Config& config, std::string_view metrics) {
  return error_of([&] { parse_usage(metrics, config); });
}

std::string price_error(const Config& config, std::string_view metrics, std::string_view plan = "") {
  return error_of([&] { priced(config, metrics, plan); });
}

class UsageTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Config> config_ = Config::compile(kDesignExample);
  const Config& config() const { return *config_; }
  std::string measure(const Usage& usage, std::string_view name) const {
    return usage.measures.at(static_cast<std::size_t>(config().measure_slot(name))).to_string();
  }
};

TEST_F(UsageTest, MeasuresAndModel) {
  const Usage usage = parse_usage(
      R"({"model": "gpt-4", "input_tokens": 1000, "output_tokens": 1.0, "cache_read_tokens": 1e3,
          "cache_write_tokens": 0, "search_queries": 2, "search_results": 12345678901234567890123456789012345678,
          "web_search_calls": 1E+2, "code_exec_calls": 7.000, "images": 3})",
      config());
  EXPECT_EQ(usage.model, "gpt-4");
  EXPECT_EQ(usage.measures.size(), 10u);
  EXPECT_EQ(measure(usage, "input_tokens"), "1000");
  EXPECT_EQ(measure(usage, "output_tokens"), "1");
  EXPECT_EQ(measure(usage, "cache_read_tokens"), "1000");
  EXPECT_EQ(measure(usage, "cache_write_tokens"), "0");
  EXPECT_EQ(measure(usage, "search_queries"), "2");
  EXPECT_EQ(measure(usage, "search_results"), "12345678901234567890123456789012345678");
  EXPECT_EQ(measure(usage, "web_search_calls"), "100");
  EXPECT_EQ(measure(usage, "code_exec_calls"), "7");
  EXPECT_EQ(measure(usage, "images"), "3");
  EXPECT_EQ(measure(usage, "tool_calls"), "0");
  EXPECT_FALSE(usage.fixed_job.has_value());
}

TEST_F(UsageTest, AbsentMeasuresAreZeroAndNullsAreAbsent) {
  const Usage empty = parse_usage("{}", config());
  EXPECT_EQ(empty.model, "");
  for (const Decimal& value : empty.measures) EXPECT_TRUE(value.is_zero());
  const Usage nulls = parse_usage(R"({"model": "gpt-4", "model": null, "fixed_job": "roadmap_gen", "fixed_job": null})",
                                  config());
  EXPECT_EQ(nulls.model, "");
  EXPECT_FALSE(nulls.fixed_job.has_value());
  EXPECT_EQ(parse_usage(R"({"fixed_job": "roadmap_gen"})", config()).fixed_job, "roadmap_gen");
}

TEST_F(UsageTest, ToolCallsAsAList) {
  const Usage usage = parse_usage(
      R"({"tool_calls": [{"name": "b"}, {"name": "a"}, {"name": "b"}, {"name": ""}, {"name": "b"}]})", config());
  ASSERT_EQ(usage.named_tools.size(), 3u);
  EXPECT_EQ(usage.named_tools[0].name, "b");
  EXPECT_EQ(usage.named_tools[0].calls, 3);
  EXPECT_EQ(usage.named_tools[1].name, "a");
  EXPECT_EQ(usage.named_tools[1].calls, 1);
  EXPECT_EQ(usage.named_tools[2].name, "");
  EXPECT_EQ(usage.unnamed_tool_calls, 0);
  EXPECT_EQ(measure(usage, "tool_calls"), "5");
  EXPECT_EQ(measure(parse_usage(R"({"tool_calls": []})", config()), "tool_calls"), "0");
}

TEST_F(UsageTest, ToolCallsAsACount) {
  const Usage usage = parse_usage(R"({"tool_calls": 4.0})", config());
  EXPECT_TRUE(usage.named_tools.empty());
  EXPECT_EQ(usage.unnamed_tool_calls, 4);
  EXPECT_EQ(measure(usage, "tool_calls"), "4");
  // The same key twice: the last one wins, whatever form each has.
  const Usage list_last = parse_usage(R"({"tool_calls": 4, "tool_calls": [{"name": "x"}]})", config());
  EXPECT_EQ(list_last.unnamed_tool_calls, 0);
  EXPECT_EQ(list_last.named_tools.size(), 1u);
  EXPECT_EQ(measure(list_last, "tool_calls"), "1");
  const Usage count_last = parse_usage(R"({"tool_calls": [{"name": "x"}], "tool_calls": 2})", config());
  EXPECT_EQ(count_last.unnamed_tool_calls, 2);
  EXPECT_TRUE(count_last.named_tools.empty());
  EXPECT_EQ(measure(count_last, "tool_calls"), "2");
}

TEST_F(UsageTest, BadCounts) {
  const std::string problem = "invalid metrics: input_tokens: must be a non-negative integer";
  for (const char* value : {"1.5", "-1", "0.0000001", "1e-400", "\"5\"", "true", "false", "null", "{}", "[]", "[1]"})
    EXPECT_EQ(usage_error(config(), std::string(R"({"input_tokens": )") + value + "}"), problem) << value;
  EXPECT_EQ(usage_error(config(), R"({"images": -2})"), "invalid metrics: images: must be a non-negative integer");
  EXPECT_EQ(usage_error(config(), R"({"input_tokens": 1e38})"), "invalid metrics: input_tokens: number out of range");
  EXPECT_EQ(usage_error(config(), R"({"input_tokens": 1e400})"), "invalid metrics: input_tokens: number out of range");
  EXPECT_EQ(usage_error(config(), R"({"input_tokens": -1e400})"), problem);
  EXPECT_EQ(usage_error(config(), R"({"input_tokens": -1e38})"), problem);
  EXPECT_EQ(usage_error(config(), R"({"input_tokens": 1.000000000000000000000000000000000000001})"), problem);
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": 1e400})"), "invalid metrics: tool_calls: number out of range");
  EXPECT_EQ(measure(parse_usage(R"({"input_tokens": 1.0000000000000000000000000000000000000000000})", config()),
                    "input_tokens"),
            "1");
  EXPECT_EQ(measure(parse_usage(R"({"input_tokens": -0})", config()), "input_tokens"), "0");
  EXPECT_EQ(measure(parse_usage(R"({"input_tokens": 1e37})", config()), "input_tokens"),
            "10000000000000000000000000000000000000");
}

TEST_F(UsageTest, BadModelAndFixedJob) {
  for (const char* value : {"5", "true", "{}", "[]", "1e400", "-1e400", "1e-400"}) {
    EXPECT_EQ(usage_error(config(), std::string(R"({"model": )") + value + "}"), "invalid metrics: model: must be a string");
    EXPECT_EQ(usage_error(config(), std::string(R"({"fixed_job": )") + value + "}"),
              "invalid metrics: fixed_job: must be a string");
  }
  EXPECT_EQ(usage_error(config(), R"({"fixed_job": "x"})"), R"(invalid metrics: fixed_job: unknown job "x")");
  EXPECT_EQ(usage_error(config(), R"({"fixed_job": ""})"), R"(invalid metrics: fixed_job: unknown job "")");
}

TEST_F(UsageTest, BadToolCalls) {
  const std::string kind = R"(invalid metrics: tool_calls: must be a non-negative integer or a list of {"name": "<tool>"} objects)";
  for (const char* value : {"\"3\"", "true", "null", "{}", R"({"name": "x"})"})
    EXPECT_EQ(usage_error(config(), std::string(R"({"tool_calls": )") + value + "}"), kind) << value;
  const std::string count = "invalid metrics: tool_calls: must be a non-negative integer";
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": 1.5})"), count);
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": -1})"), count);
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": 1e19})"), "invalid metrics: tool_calls: too many calls");

  const auto element = [](int index) {
    return "invalid metrics: tool_calls[" + std::to_string(index) + R"(]: must be an object {"name": "<string>"})";
  };
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [1]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": ["web"]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [null]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [[]]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{}]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{"name": 5}]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{"name": null}]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{"name": {"a": 1}}]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{"name": ["a"]}]})"), element(0));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{"name": "a"}, {"name": "a", "id": 1}]})"), element(1));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{"name": "a"}, {"name": "b"}, {"Name": "c"}]})"), element(2));
  EXPECT_EQ(usage_error(config(), R"({"tool_calls": [{"name": "a"}, {"name": 1e400}]})"), element(1));
}

TEST_F(UsageTest, UnknownKeysWhateverTheValue) {
  for (const char* value : {"1", "\"x\"", "null", "true", "{}", "[]", "1e400", "-1"})
    EXPECT_EQ(usage_error(config(), std::string(R"({"foo": )") + value + "}"), "invalid metrics: foo: unknown key")
        << value;
  EXPECT_EQ(usage_error(config(), R"({"Input_tokens": 1})"), "invalid metrics: Input_tokens: unknown key");
  EXPECT_EQ(usage_error(config(), R"({"": 1})"), "invalid metrics: : unknown key");
}

TEST_F(UsageTest, NotAnObject) {
  for (const char* text : {"[]", "5", "null", "\"x\"", "true", "1e400", R"([{"model": "x"}])"})
    EXPECT_EQ(usage_error(config(), text), "invalid metrics: must be a JSON object") << text;
  EXPECT_EQ(usage_error(config(), ""),
            "invalid metrics: invalid JSON: parse error at line 1, column 1: syntax error while parsing value - "
            "unexpected end of input; expected '[', '{', or a literal");
  EXPECT_EQ(usage_error(config(), R"({"input_tokens": 1,})").rfind("invalid metrics: invalid JSON: parse error", 0), 0u);
}

TEST_F(UsageTest, ReaderDirectly) {
  UsageReader reader(config());
  reader.string("model", "gpt-4");
  reader.number("input_tokens", Decimal::parse("5.00"));
  reader.begin_tool_list();
  reader.tool_call("web_search");
  reader.tool_call("code");
  reader.tool_call("web_search");
  reader.string("fixed_job", "roadmap_gen");
  const Usage usage = reader.finish();
  EXPECT_EQ(usage.model, "gpt-4");
  EXPECT_EQ(measure(usage, "input_tokens"), "5");
  EXPECT_EQ(measure(usage, "tool_calls"), "3");
  ASSERT_EQ(usage.named_tools.size(), 2u);
  EXPECT_EQ(usage.named_tools[0].calls, 2);
  EXPECT_EQ(usage.fixed_job, "roadmap_gen");

  UsageReader other(config());
  EXPECT_EQ(error_of([&] { other.boolean("input_tokens"); }),
            "invalid metrics: input_tokens: must be a non-negative integer");
  EXPECT_EQ(error_of([&] { other.object("model"); }), "invalid metrics: model: must be a string");
  EXPECT_EQ(error_of([&] { other.null("input_tokens"); }), "invalid metrics: input_tokens: must be a non-negative integer");
  EXPECT_EQ(error_of([&] { other.null("bar"); }), "invalid metrics: bar: unknown key");
  EXPECT_EQ(error_of([&] { other.string("images", "3"); }), "invalid metrics: images: must be a non-negative integer");
  EXPECT_EQ(error_of([&] { other.number("model", Decimal(1)); }), "invalid metrics: model: must be a string");
  EXPECT_EQ(error_of([&] { other.tool_call("x"); }), "invalid metrics: tool_calls: a tool call outside a list");
  other.begin_tool_list();
  other.tool_call("x");
  EXPECT_EQ(error_of([&] { other.bad_tool_call(); }), R"(invalid metrics: tool_calls[1]: must be an object {"name": "<string>"})");
}

TEST(Price, DesignExample) {
  const auto config = Config::compile(kDesignExample);
  const std::string_view metrics = R"({"model": "gpt-4", "input_tokens": 1000, "output_tokens": 2000,
      "tool_calls": [{"name": "web_search"}, {"name": "web_search"}, {"name": "code"}],
      "search_queries": 2, "search_results": 10, "cache_read_tokens": 100, "fixed_job": "roadmap_gen"})";
  EXPECT_EQ(priced(*config, metrics), "gpt-4 70.000000 1.000000 1.500000 -0.450000 20.000000 92.050000");
  EXPECT_EQ(priced(*config, metrics, "pro"), "gpt-4 8.000000 1.000000 1.500000 -0.450000 20.000000 30.050000");
  EXPECT_EQ(priced(*config, R"({"model": "claude", "input_tokens": 1000})"),
            "_default 1.000000 0.000000 0.000000 0.000000 0.000000 1.000000");
  EXPECT_EQ(priced(*config, R"({"input_tokens": 1000})", "pro"),
            "_default 1.000000 0.000000 0.000000 0.000000 0.000000 1.000000");
}

TEST(Price, ModelResolutionWithPlans) {
  const auto config = Config::compile(R"({
    "models": {"_default": "1", "gpt-4": "2"},
    "plans": {"pro": {"rate_overrides": {"gpt-4": "20", "_default": "10"}}, "basic": {}}})");
  EXPECT_EQ(priced(*config, R"({"model": "gpt-4"})", "pro").substr(0, 15), "gpt-4 20.000000");
  EXPECT_EQ(priced(*config, R"({"model": "gpt-4"})", "basic").substr(0, 14), "gpt-4 2.000000");
  EXPECT_EQ(priced(*config, R"({"model": "o1"})", "pro").substr(0, 18), "_default 10.000000");
  EXPECT_EQ(priced(*config, R"({"model": "o1"})").substr(0, 17), "_default 1.000000");
  EXPECT_EQ(priced(*config, R"({})", "pro").substr(0, 18), "_default 10.000000");
}

TEST(Price, UnknownModel) {
  const auto config = Config::compile(R"({"models": {"gpt-4": "1"}, "plans": {"pro": {"rate_overrides": {"o1": "1"}}}})");
  const Usage usage = parse_usage(R"({"model": "claude"})", *config);
  try {
    price(*config, usage, config->plan("pro"));
    FAIL() << "no error";
  } catch (const UnknownModel& error) {
    EXPECT_EQ(error.code(), Errc::invalid_value);
    EXPECT_STREQ(error.what(), R"(no pricing formula for model "claude")");
  }
  EXPECT_EQ(price_error(*config, "{}"), R"(no pricing formula for model "")");
  EXPECT_EQ(price_error(*config, R"({"model": "o1"})"), R"(no pricing formula for model "o1")");
  EXPECT_EQ(priced(*config, R"({"model": "o1"})", "pro").substr(0, 11), "o1 1.000000");
}

TEST(Price, ToolCounting) {
  const auto config = Config::compile(R"({
    "models": {"_default": "tool_calls"},
    "tools": {"web": "tool_calls * 0.5 + 0.25", "_default": "tool_calls * 0.1 + 1"}})");
  // web: 2 calls -> 1.25; a, a, b and the tool literally named _default go to _default: 4 calls -> 1.4.
  EXPECT_EQ(priced(*config, R"({"tool_calls": [{"name": "web"}, {"name": "a"}, {"name": "web"}, {"name": "b"},
                                                {"name": "a"}, {"name": "_default"}]})"),
            "_default 6.000000 2.650000 0.000000 0.000000 0.000000 8.650000");
  // An unnamed count is priced by _default; the model formula sees the total.
  EXPECT_EQ(priced(*config, R"({"tool_calls": 4})"), "_default 4.000000 1.400000 0.000000 0.000000 0.000000 5.400000");
  EXPECT_EQ(priced(*config, R"({"tool_calls": [{"name": "web"}]})"),
            "_default 1.000000 0.750000 0.000000 0.000000 0.000000 1.750000");
  // No calls: no tool formula runs, so constant terms do not apply.
  EXPECT_EQ(priced(*config, "{}"), "_default 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000");
  EXPECT_EQ(priced(*config, R"({"tool_calls": 0})"), "_default 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000");
  EXPECT_EQ(priced(*config, R"({"tool_calls": []})"), "_default 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000");
}

TEST(Price, ToolsWithoutDefaultAreFree) {
  const auto config = Config::compile(R"({"models": {"_default": "0"}, "tools": {"web": "tool_calls * 0.5"}})");
  EXPECT_EQ(priced(*config, R"({"tool_calls": [{"name": "web"}, {"name": "other"}, {"name": "web"}]})"),
            "_default 0.000000 1.000000 0.000000 0.000000 0.000000 1.000000");
  EXPECT_EQ(priced(*config, R"({"tool_calls": 7})"), "_default 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000");
  const auto none = Config::compile(R"({"models": {"_default": "tool_calls"}})");
  EXPECT_EQ(priced(*none, R"({"tool_calls": 7})"), "_default 7.000000 0.000000 0.000000 0.000000 0.000000 7.000000");
}

TEST(Price, ToolFormulasSeeTheOtherMeasures) {
  const auto config = Config::compile(R"({"models": {"_default": "0"},
      "tools": {"code": "tool_calls * code_exec_calls", "_default": "tool_calls + input_tokens"}})");
  EXPECT_EQ(priced(*config, R"({"input_tokens": 10, "code_exec_calls": 3,
                                "tool_calls": [{"name": "code"}, {"name": "code"}, {"name": "x"}]})"),
            "_default 0.000000 17.000000 0.000000 0.000000 0.000000 17.000000");
}

TEST(Price, SearchCacheFixedAndDeclaredMeasures) {
  const auto config = Config::compile(R"({"models": {"_default": "images * 0.02"}, "measures": ["images"],
      "search": {"costs": "search_queries * 0.5 + web_search_calls"}, "cache": {"discount": "0 - cache_read_tokens * 0.001"},
      "fixed": {"report": 12.5, "free": 0}})");
  EXPECT_EQ(priced(*config, R"({"images": 3, "search_queries": 3, "web_search_calls": 1, "cache_read_tokens": 500,
                                "fixed_job": "report"})"),
            "_default 0.060000 0.000000 2.500000 -0.500000 12.500000 14.560000");
  EXPECT_EQ(priced(*config, R"({"fixed_job": "free"})"), "_default 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000");
  // A formula with a constant term is evaluated even when its measures are absent.
  const auto constant = Config::compile(R"({"models": {"_default": "0"}, "search": {"costs": "1"}, "cache": {"discount": "0.5"}})");
  EXPECT_EQ(priced(*constant, "{}"), "_default 0.000000 0.000000 1.000000 0.500000 0.000000 1.500000");
}

TEST(Price, FormulaErrorsNameThePath) {
  const auto config = Config::compile(R"j({
    "models": {"gpt-4": "input_tokens / output_tokens", "gpt-4.1": "1 / output_tokens", "_default": "1"},
    "tools": {"web": "1 / (tool_calls - 1)", "_default": "1 // input_tokens"},
    "plans": {"pro": {"rate_overrides": {"gpt-4": "2 % output_tokens"}}, "p.x": {"rate_overrides": {"_default": "1/0"}}}})j");
  EXPECT_EQ(price_error(*config, R"({"model": "gpt-4", "input_tokens": 3})"), "models.gpt-4: division by zero at 14");
  EXPECT_EQ(price_error(*config, R"({"model": "gpt-4.1"})"), R"(models."gpt-4.1": division by zero at 3)");
  EXPECT_EQ(price_error(*config, R"({"model": "gpt-4"})", "pro"), "plans.pro.rate_overrides.gpt-4: division by zero at 3");
  EXPECT_EQ(price_error(*config, R"({"model": "o1"})", "p.x"), R"(plans."p.x".rate_overrides._default: division by zero at 2)");
  // Through the plan's _default, the model named "gpt-4" in models still wins over the plan's _default.
  EXPECT_EQ(price_error(*config, R"({"model": "gpt-4", "output_tokens": 0})", "p.x"), "models.gpt-4: division by zero at 14");
  EXPECT_EQ(price_error(*config, R"({"tool_calls": [{"name": "web"}]})"), "tools.web: division by zero at 3");
  EXPECT_EQ(price_error(*config, R"({"tool_calls": 2})"), "tools._default: division by zero at 3");

  const auto search = Config::compile(R"({"models": {"_default": "0"}, "search": {"costs": "1 / search_queries"}})");
  EXPECT_EQ(price_error(*search, "{}"), "search.costs: division by zero at 3");
  const auto cache = Config::compile(R"({"models": {"_default": "0"}, "cache": {"discount": "cache_read_tokens % 0"}})");
  EXPECT_EQ(price_error(*cache, "{}"), "cache.discount: division by zero at 19");
}

TEST(Price, NegativeComponentsAreErrors) {
  const auto model = Config::compile(R"({"models": {"_default": "0 - input_tokens * 1.5"}})");
  EXPECT_EQ(price_error(*model, R"({"input_tokens": 1})"), "models._default: negative price -1.5");
  EXPECT_EQ(priced(*model, "{}"), "_default 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000");
  // Negative before quantization is negative, even when it would round to zero.
  const auto tiny = Config::compile(R"({"models": {"_default": "0 - 0.0000001"}})");
  EXPECT_EQ(price_error(*tiny, "{}"), "models._default: negative price -0.0000001");

  const auto tools = Config::compile(R"({"models": {"_default": "0"},
      "tools": {"refund": "0 - tool_calls", "web": "tool_calls * 10", "_default": "0 - tool_calls * 2"}})");
  // Any single tool formula below zero fails, even if the tools' sum is positive.
  EXPECT_EQ(price_error(*tools, R"({"tool_calls": [{"name": "web"}, {"name": "refund"}]})"),
            "tools.refund: negative price -1");
  EXPECT_EQ(price_error(*tools, R"({"tool_calls": 1})"), "tools._default: negative price -2");

  const auto search = Config::compile(R"({"models": {"_default": "0"}, "search": {"costs": "search_queries - 0.5"}})");
  EXPECT_EQ(price_error(*search, "{}"), "search.costs: negative price -0.5");
  EXPECT_EQ(priced(*search, R"({"search_queries": 1})"), "_default 0.000000 0.000000 0.500000 0.000000 0.000000 0.500000");
}

TEST(Price, QuantizationHalfAwayFromZero) {
  const auto config = Config::compile(R"({"models": {"_default": "input_tokens * 0.0000001"},
      "search": {"costs": "search_queries * 0.0000001"}, "cache": {"discount": "0 - cache_read_tokens * 0.0000001"}})");
  EXPECT_EQ(priced(*config, R"({"input_tokens": 5})"), "_default 0.000001 0.000000 0.000000 0.000000 0.000000 0.000001");
  EXPECT_EQ(priced(*config, R"({"input_tokens": 4})"), "_default 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000");
  EXPECT_EQ(priced(*config, R"({"input_tokens": 15})"), "_default 0.000002 0.000000 0.000000 0.000000 0.000000 0.000002");
  EXPECT_EQ(priced(*config, R"({"input_tokens": 25, "cache_read_tokens": 5})"),
            "_default 0.000003 0.000000 0.000000 -0.000001 0.000000 0.000002");
  EXPECT_EQ(priced(*config, R"({"input_tokens": 10, "cache_read_tokens": 4})"),
            "_default 0.000001 0.000000 0.000000 0.000000 0.000000 0.000001");
  // Each component is rounded once and the total adds up the rounded components: 0.000001 + 0.000001,
  // where the unrounded sum 0.000001 would give 0.000001.
  EXPECT_EQ(priced(*config, R"({"input_tokens": 5, "search_queries": 5})"),
            "_default 0.000001 0.000000 0.000001 0.000000 0.000000 0.000002");
}

TEST(Price, ToolCreditsAreRoundedOnceAsASum) {
  const auto config = Config::compile(R"({"models": {"_default": "0"},
      "tools": {"a": "tool_calls * 0.0000003", "b": "tool_calls * 0.0000003"}})");
  // 0.0000003 + 0.0000003 = 0.0000006 -> 0.000001 (rounding each tool first would give 0).
  EXPECT_EQ(priced(*config, R"({"tool_calls": [{"name": "a"}, {"name": "b"}]})"),
            "_default 0.000000 0.000001 0.000000 0.000000 0.000000 0.000001");
}

TEST(Price, ComponentsAlwaysCarrySixPlaces) {
  const auto config = Config::compile(R"({"models": {"_default": "5"}, "search": {"costs": "2.5"},
      "cache": {"discount": "0 - 1"}, "fixed": {"j": 3}, "tools": {"_default": "tool_calls * 100"}})");
  const Breakdown breakdown = price(*config, parse_usage(R"({"fixed_job": "j", "tool_calls": 1})", *config), nullptr);
  for (const Decimal* component : {&breakdown.model_credits, &breakdown.tool_credits, &breakdown.search_credits,
                                   &breakdown.cache_credits, &breakdown.fixed_credits, &breakdown.total})
    EXPECT_EQ(component->exponent(), -6);
  EXPECT_EQ(describe(breakdown), "_default 5.000000 100.000000 2.500000 -1.000000 3.000000 109.500000");
  const auto huge = Config::compile(R"({"models": {"_default": "input_tokens * 0.001"}})");
  EXPECT_EQ(priced(*huge, R"({"input_tokens": 1e30})"),
            "_default 1000000000000000000000000000.000000 0.000000 0.000000 0.000000 0.000000 "
            "1000000000000000000000000000.000000");
}

TEST(Price, TotalIsClampedAtZero) {
  const auto config = Config::compile(R"({"models": {"_default": "1"}, "cache": {"discount": "0 - cache_read_tokens"}})");
  EXPECT_EQ(priced(*config, R"({"cache_read_tokens": 5})"),
            "_default 1.000000 0.000000 0.000000 -5.000000 0.000000 0.000000");
  EXPECT_EQ(priced(*config, R"({"cache_read_tokens": 1})"),
            "_default 1.000000 0.000000 0.000000 -1.000000 0.000000 0.000000");
  const Breakdown clamped = price(*config, parse_usage(R"({"cache_read_tokens": 9})", *config), nullptr);
  EXPECT_EQ(clamped.total.exponent(), -6);
}

TEST(Price, UsageFromAnotherConfig) {
  const auto config = Config::compile(R"({"models": {"_default": "1"}, "measures": ["a", "b"]})");
  EXPECT_EQ(error_of([&] { price(*config, Usage{}, nullptr); }), "usage does not match the pricing config");
  const auto other = Config::compile(R"({"models": {"_default": "1"}, "fixed": {"x": 1}})");
  const Usage usage = parse_usage(R"({"fixed_job": "x"})", *other);
  const auto without_job = Config::compile(R"({"models": {"_default": "1"}})");
  EXPECT_EQ(error_of([&] { price(*without_job, usage, nullptr); }), R"(invalid metrics: fixed_job: unknown job "x")");
}

}  // namespace
}  // namespace ducto::pricing
