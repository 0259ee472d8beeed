// test/unit/config_test.cpp: pricing config validation and the compiled Config (design.md, Pricing
// config and Money): every key and type rule with its path, amounts, measures, plans, formula lookup.
#include "core/no_postgres.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/pricing/config.h"

namespace ducto::pricing {
namespace {

using Problems = std::vector<std::string>;

// The example of design.md.
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

// The message Config::compile throws, or "" when it compiles.
std::string compile_error(std::string_view text) {
  try {
    Config::compile(text);
    return "";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::invalid_value);
    return error.what();
  }
}

std::vector<std::string> as_strings(const std::vector<Decimal>& values) {
  std::vector<std::string> out;
  for (const Decimal& value : values) out.push_back(value.to_string());
  return out;
}

TEST(ConfigValidate, DesignExampleIsValid) {
  EXPECT_EQ(validate(kDesignExample), Problems{});
  const auto config = Config::compile(kDesignExample);
  EXPECT_EQ(config->min_balance().to_string(), "0.000000");
  EXPECT_EQ(as_strings(config->low_balance_thresholds()), (Problems{"20.000000", "100.000000"}));
  EXPECT_EQ(config->fixed_job("roadmap_gen")->to_string(), "20.000000");
  EXPECT_FALSE(config->fixed_job("other").has_value());
  EXPECT_EQ(config->measure_slot("images"), 9);
  EXPECT_EQ(config->measure_slot("tool_calls"), kToolCallsSlot);
  EXPECT_EQ(config->measure_slot("nope"), -1);
  EXPECT_EQ(config->symbols().size(), 10u);
  ASSERT_NE(config->search_formula(), nullptr);
  EXPECT_EQ(config->search_formula()->source(), "search_queries * 0.5 + search_results * 0.05");
  ASSERT_NE(config->cache_formula(), nullptr);
  EXPECT_EQ(config->tool_formulas().size(), 2u);
  const Plan* pro = config->plan("pro");
  ASSERT_NE(pro, nullptr);
  EXPECT_EQ(pro->id, "pro");
  EXPECT_EQ(pro->name, "Pro");
  EXPECT_EQ(pro->free_allowance.to_string(), "5000.000000");
  EXPECT_EQ(pro->rate_overrides.size(), 1u);
  EXPECT_EQ(pro->features.at("priority_queue"), "true");
  EXPECT_EQ(config->plan("free"), nullptr);
  EXPECT_EQ(config->plans().size(), 1u);
}

TEST(ConfigValidate, EmptyObjectIsValidWithDefaults) {
  const auto config = Config::compile("{}");
  EXPECT_EQ(config->min_balance().to_string(), "0.000000");
  EXPECT_TRUE(config->low_balance_thresholds().empty());
  EXPECT_EQ(config->search_formula(), nullptr);
  EXPECT_EQ(config->cache_formula(), nullptr);
  EXPECT_TRUE(config->tool_formulas().empty());
  EXPECT_TRUE(config->plans().empty());
  EXPECT_EQ(config->symbols().size(), kBuiltinMeasures.size());
  EXPECT_FALSE(config->model_formula("gpt-4", nullptr).has_value());
}

TEST(ConfigValidate, Version) {
  EXPECT_EQ(validate(R"({"version": 1})"), Problems{});
  EXPECT_EQ(validate(R"({"version": 1.0})"), Problems{});
  EXPECT_EQ(validate(R"({"version": 2})"), Problems{"version: must be 1"});
  EXPECT_EQ(validate(R"({"version": 0})"), Problems{"version: must be 1"});
  EXPECT_EQ(validate(R"({"version": -1})"), Problems{"version: must be 1"});
  EXPECT_EQ(validate(R"({"version": 1.5})"), Problems{"version: must be 1"});
  EXPECT_EQ(validate(R"({"version": "1"})"), Problems{"version: must be 1"});
  EXPECT_EQ(validate(R"({"version": true})"), Problems{"version: must be 1"});
  EXPECT_EQ(validate(R"({"version": null})"), Problems{"version: must be 1"});
}

TEST(ConfigValidate, RootMustBeAnObject) {
  for (const char* text : {"[]", "5", "\"x\"", "null", "true", "[{}]"})
    EXPECT_EQ(validate(text), Problems{"config: must be a JSON object"}) << text;
}

TEST(ConfigValidate, InvalidJson) {
  const Problems empty = validate("");
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0],
            "config: invalid JSON: parse error at line 1, column 1: syntax error while parsing value - unexpected "
            "end of input; expected '[', '{', or a literal");
  const Problems truncated = validate(R"({"models": {)");
  ASSERT_EQ(truncated.size(), 1u);
  EXPECT_EQ(truncated[0].rfind("config: invalid JSON: parse error at line 1, column 13: ", 0), 0u) << truncated[0];
  const Problems trailing = validate("{} x");
  ASSERT_EQ(trailing.size(), 1u);
  EXPECT_EQ(trailing[0].rfind("config: invalid JSON: parse error", 0), 0u) << trailing[0];
  EXPECT_EQ(validate("{\"a\": NaN}").size(), 1u);
  EXPECT_EQ(validate("{\"a\": 1} // comment").size(), 1u);
}

TEST(ConfigValidate, DeepNestingIsRefused) {
  const std::string deep = R"({"plans": {"p": {"features": {"f": )" + std::string(600, '[') + std::string(600, ']') + "}}}}";
  EXPECT_EQ(validate(deep), Problems{"config: invalid JSON: nested deeper than 512 levels"});
  const std::string fine = R"({"plans": {"p": {"features": {"f": )" + std::string(100, '[') + std::string(100, ']') + "}}}}";
  EXPECT_EQ(validate(fine), Problems{});
}

TEST(ConfigValidate, UnknownKeysAtEveryLevel) {
  EXPECT_EQ(validate(R"({"modles": {}})"), Problems{"modles: unknown key"});
  EXPECT_EQ(validate(R"({"search": {"cost": "1"}})"), Problems{"search.cost: unknown key"});
  EXPECT_EQ(validate(R"({"search": {"costs": "1", "discount": "1"}})"), Problems{"search.discount: unknown key"});
  EXPECT_EQ(validate(R"({"cache": {"costs": "1"}})"), Problems{"cache.costs: unknown key"});
  EXPECT_EQ(validate(R"({"plans": {"pro": {"nam": "Pro"}}})"), Problems{"plans.pro.nam: unknown key"});
  EXPECT_EQ(validate(R"({"plans": {"a.b": {"x\"y": 1}}})"), Problems{R"(plans."a.b"."x\"y": unknown key)"});
  EXPECT_EQ(validate(R"({"": 1})"), Problems{R"("": unknown key)"});
}

TEST(ConfigValidate, PathQuoting) {
  EXPECT_EQ(path_key("gpt-4"), "gpt-4");
  EXPECT_EQ(path_key("gpt-4.1"), R"("gpt-4.1")");
  EXPECT_EQ(path_key(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(path_key(""), R"("")");
  EXPECT_EQ(path_key("a b/c\\d"), "a b/c\\d");
  EXPECT_EQ(validate(R"({"models": {"gpt-4.1": "bad_name"}})"),
            Problems{R"(models."gpt-4.1": unknown variable "bad_name" at 1)"});
  EXPECT_EQ(validate(R"({"models": {"": 1}})"), Problems{R"(models."": must be a formula string)"});
  EXPECT_EQ(validate(R"({"tools": {"a\"b": 1}})"), Problems{R"(tools."a\"b": must be a formula string)"});
  EXPECT_EQ(validate(R"({"plans": {"p.1": {"rate_overrides": {"m.x": "1 +"}}}})").size(), 1u);
  EXPECT_EQ(validate(R"({"plans": {"p.1": {"rate_overrides": {"m.x": "nope"}}}})"),
            Problems{R"(plans."p.1".rate_overrides."m.x": unknown variable "nope" at 1)"});
}

TEST(ConfigValidate, FormulaProblemsCarryThePathAndTheExpressionError) {
  EXPECT_EQ(validate(R"({"models": {"gpt-4": "inputtokens * 2"}})"),
            Problems{R"(models.gpt-4: unknown variable "inputtokens" at 1)"});
  EXPECT_EQ(validate(R"({"tools": {"web": "tool_calls ** 2"}})"),
            Problems{"tools.web: the ** operator is not supported at 12"});
  EXPECT_EQ(validate(R"j({"search": {"costs": "foo(1)"}})j"), Problems{R"(search.costs: unknown function "foo" at 1)"});
  EXPECT_EQ(validate(R"j({"cache": {"discount": "max()"}})j"),
            Problems{"cache.discount: max() takes at least 1 argument at 1"});
  EXPECT_EQ(validate(R"({"plans": {"pro": {"rate_overrides": {"_default": "1 < x"}}}})"),
            Problems{R"(plans.pro.rate_overrides._default: unknown variable "x" at 5)"});
  EXPECT_EQ(validate(R"({"models": {"m": ""}})").size(), 1u);
  const Problems long_formula = validate(R"({"models": {"m": ")" + std::string(5000, '1') + R"("}})");
  ASSERT_EQ(long_formula.size(), 1u);
  EXPECT_EQ(long_formula[0].rfind("models.m: formula is longer than 4096 characters", 0), 0u) << long_formula[0];
}

TEST(ConfigValidate, WrongTypes) {
  EXPECT_EQ(validate(R"({"models": []})"), Problems{"models: must be an object"});
  EXPECT_EQ(validate(R"({"tools": "x"})"), Problems{"tools: must be an object"});
  EXPECT_EQ(validate(R"({"models": {"a": 1, "b": null, "c": ["1"], "d": {}}})"),
            (Problems{"models.a: must be a formula string", "models.b: must be a formula string",
                      "models.c: must be a formula string", "models.d: must be a formula string"}));
  EXPECT_EQ(validate(R"({"search": "1"})"), Problems{"search: must be an object"});
  EXPECT_EQ(validate(R"({"cache": {"discount": 5}})"), Problems{"cache.discount: must be a formula string"});
  EXPECT_EQ(validate(R"({"fixed": [1]})"), Problems{"fixed: must be an object"});
  EXPECT_EQ(validate(R"({"fixed": {"job": "20"}})"), Problems{"fixed.job: must be a number"});
  EXPECT_EQ(validate(R"({"min_balance": null})"), Problems{"min_balance: must be a number"});
  EXPECT_EQ(validate(R"({"low_balance_thresholds": 5})"), Problems{"low_balance_thresholds: must be an array"});
  EXPECT_EQ(validate(R"({"low_balance_thresholds": [1, "2", true]})"),
            (Problems{"low_balance_thresholds[1]: must be a number", "low_balance_thresholds[2]: must be a number"}));
  EXPECT_EQ(validate(R"({"measures": "images"})"), Problems{"measures: must be an array of identifiers"});
  EXPECT_EQ(validate(R"({"plans": []})"), Problems{"plans: must be an object"});
  EXPECT_EQ(validate(R"({"plans": {"pro": "Pro"}})"), Problems{"plans.pro: must be an object"});
  EXPECT_EQ(validate(R"({"plans": {"pro": {"name": 1}}})"), Problems{"plans.pro.name: must be a string"});
  EXPECT_EQ(validate(R"({"plans": {"pro": {"free_allowance": "5"}}})"),
            Problems{"plans.pro.free_allowance: must be a number"});
  EXPECT_EQ(validate(R"({"plans": {"pro": {"rate_overrides": ["1"]}}})"),
            Problems{"plans.pro.rate_overrides: must be an object"});
  EXPECT_EQ(validate(R"({"plans": {"pro": {"features": [true]}}})"), Problems{"plans.pro.features: must be an object"});
}

TEST(ConfigValidate, EveryProblemInDocumentOrder) {
  const std::string text = R"({
    "version": 2,
    "models": {"gpt-4": "inputtokens", "ok": "1", "gpt-4.1": 3},
    "bogus": {},
    "fixed": {"a": -1, "b": 1e-7},
    "plans": {"pro": {"free_allowance": -5, "x": 1, "rate_overrides": {"m": "1 +"}}},
    "low_balance_thresholds": [1, -2]
  })";
  const Problems problems = validate(text);
  ASSERT_EQ(problems.size(), 10u);
  EXPECT_EQ(problems[0], "version: must be 1");
  EXPECT_EQ(problems[1], R"(models.gpt-4: unknown variable "inputtokens" at 1)");
  EXPECT_EQ(problems[2], R"(models."gpt-4.1": must be a formula string)");
  EXPECT_EQ(problems[3], "bogus: unknown key");
  EXPECT_EQ(problems[4], "fixed.a: must not be negative");
  EXPECT_EQ(problems[5], "fixed.b: must be an amount with at most 6 decimal places");
  EXPECT_EQ(problems[6], "plans.pro.free_allowance: must not be negative");
  EXPECT_EQ(problems[7], "plans.pro.x: unknown key");
  EXPECT_EQ(problems[8].rfind("plans.pro.rate_overrides.m: ", 0), 0u) << problems[8];
  EXPECT_EQ(problems[9], "low_balance_thresholds[1]: must not be negative");

  std::string expected = "invalid pricing config: ";
  for (std::size_t i = 0; i < problems.size(); ++i) expected += (i == 0 ? "" : "; ") + problems[i];
  EXPECT_EQ(compile_error(text), expected);
  EXPECT_EQ(compile_error("[]"), "invalid pricing config: config: must be a JSON object");
  EXPECT_EQ(compile_error(kDesignExample), "");
}

TEST(ConfigValidate, DuplicateKeysAreProblems) {
  EXPECT_EQ(validate(R"({"models": {"a": "1", "a": "2"}})"), Problems{"models.a: duplicate key"});
  EXPECT_EQ(validate(R"({"min_balance": 1, "min_balance": 2})"), Problems{"min_balance: duplicate key"});
}

TEST(ConfigAmounts, ValidAmounts) {
  const auto amount = [](const std::string& number) {
    return Config::compile(R"({"min_balance": )" + number + "}")->min_balance().to_string();
  };
  EXPECT_EQ(amount("0"), "0.000000");
  EXPECT_EQ(amount("-0"), "0.000000");
  EXPECT_EQ(amount("0.000001"), "0.000001");
  EXPECT_EQ(amount("1.5000000"), "1.500000");
  EXPECT_EQ(amount("1.100000000000000000000000000000000000000000000000"), "1.100000");
  EXPECT_EQ(amount("999999999999.999999"), "999999999999.999999");
  EXPECT_EQ(amount("-999999999999.999999"), "-999999999999.999999");
  EXPECT_EQ(amount("-50.25"), "-50.250000");
  EXPECT_EQ(amount("1E+3"), "1000.000000");
  EXPECT_EQ(amount("12345e-6"), "0.012345");
  EXPECT_EQ(amount("0.00000000000000000000000000000000000001e38"), "1.000000");
  EXPECT_EQ(amount("0e-999999999999999999999"), "0.000000");
  EXPECT_EQ(amount("0e999999999999999999999"), "0.000000");
  // A double would turn this into 0.30000000000000004 or similar; the text is read exactly.
  EXPECT_EQ(amount("0.3"), "0.300000");
  EXPECT_EQ(amount("123456789012.345678"), "123456789012.345678");
}

TEST(ConfigAmounts, InvalidAmounts) {
  const auto problem = [](const std::string& number) {
    const Problems problems = validate(R"({"fixed": {"job": )" + number + "}}");
    return problems.size() == 1 ? problems[0] : "problems: " + std::to_string(problems.size());
  };
  const std::string places = "fixed.job: must be an amount with at most 6 decimal places";
  const std::string big = "fixed.job: must be below 10^12";
  EXPECT_EQ(problem("1e-7"), places);
  EXPECT_EQ(problem("1.0000001"), places);
  EXPECT_EQ(problem("0.0000005"), places);
  EXPECT_EQ(problem("1e-400"), places);
  EXPECT_EQ(problem("1e-999999999999999999999"), places);
  EXPECT_EQ(problem("1e12"), big);
  EXPECT_EQ(problem("1000000000000"), big);
  EXPECT_EQ(problem("999999999999.9999995"), places);
  EXPECT_EQ(problem("123456789012345678901234567890"), big);
  EXPECT_EQ(problem("1e300"), big);
  EXPECT_EQ(problem("-1e12"), big);
  EXPECT_EQ(problem("-1"), "fixed.job: must not be negative");
  EXPECT_EQ(problem("-0.000001"), "fixed.job: must not be negative");
  // Beyond a double the JSON reader itself stops; the problem still names the path.
  EXPECT_EQ(problem("1e400"), "fixed.job: number out of range");
  EXPECT_EQ(validate(R"({"low_balance_thresholds": [[1], 1e400]})"),
            Problems{"low_balance_thresholds[1]: number out of range"});
  EXPECT_EQ(validate("1e400"), Problems{"config: number out of range"});
  EXPECT_EQ(validate(R"({"min_balance": -1e12})"), Problems{"min_balance: must be below 10^12"});
  EXPECT_EQ(validate(R"({"min_balance": -0.0000001})"),
            Problems{"min_balance: must be an amount with at most 6 decimal places"});
  EXPECT_EQ(validate(R"({"low_balance_thresholds": [5, -1, 1e-9]})"),
            (Problems{"low_balance_thresholds[1]: must not be negative",
                      "low_balance_thresholds[2]: must be an amount with at most 6 decimal places"}));
}

TEST(ConfigAmounts, ThresholdsAscendingWithoutDuplicates) {
  const auto config = Config::compile(R"({"low_balance_thresholds": [100, 20, 20.0, 0, 100.000000, 0.5]})");
  EXPECT_EQ(as_strings(config->low_balance_thresholds()), (Problems{"0.000000", "0.500000", "20.000000", "100.000000"}));
}

TEST(ConfigAmounts, FixedJobs) {
  const auto config = Config::compile(R"({"fixed": {"a": 0, "b": 2.5, "c.d": 1e3}})");
  EXPECT_EQ(config->fixed_job("a")->to_string(), "0.000000");
  EXPECT_EQ(config->fixed_job("b")->to_string(), "2.500000");
  EXPECT_EQ(config->fixed_job("c.d")->to_string(), "1000.000000");
  EXPECT_FALSE(config->fixed_job("").has_value());
}

TEST(ConfigMeasures, DeclaredMeasuresGetSlotsAfterTheBuiltins) {
  const auto config = Config::compile(R"({"models": {"_default": "images * 2 + videos"}, "measures": ["images", "videos"]})");
  EXPECT_EQ(config->measure_slot("images"), 9);
  EXPECT_EQ(config->measure_slot("videos"), 10);
  for (std::size_t i = 0; i < kBuiltinMeasures.size(); ++i)
    EXPECT_EQ(config->measure_slot(kBuiltinMeasures[i]), static_cast<int>(i));
  // Declared measures are usable anywhere, including a formula written before the declaration.
  EXPECT_EQ(validate(R"({"search": {"costs": "pages"}, "measures": ["pages"]})"), Problems{});
  EXPECT_EQ(validate(R"({"search": {"costs": "pages"}})"), Problems{R"(search.costs: unknown variable "pages" at 1)"});
  EXPECT_EQ(validate(R"({"measures": []})"), Problems{});
  EXPECT_EQ(validate(R"({"measures": ["_x1", "A_b"]})"), Problems{});
}

TEST(ConfigMeasures, BadNames) {
  EXPECT_EQ(validate(R"({"measures": ["input_tokens", "tool_calls"]})"),
            (Problems{R"(measures[0]: "input_tokens" is a builtin measure)", R"(measures[1]: "tool_calls" is a builtin measure)"}));
  EXPECT_EQ(validate(R"({"measures": ["a", "a"]})"), Problems{R"(measures[1]: duplicate measure "a")"});
  EXPECT_EQ(validate(R"({"measures": ["2a", "a-b", "", "a.b", 5, null, ["a"]]})"),
            (Problems{"measures[0]: must be an identifier", "measures[1]: must be an identifier",
                      "measures[2]: must be an identifier", "measures[3]: must be an identifier",
                      "measures[4]: must be an identifier", "measures[5]: must be an identifier",
                      "measures[6]: must be an identifier"}));
  for (const char* reserved : {"and", "or", "not", "if", "else", "true", "false", "min", "max", "abs", "ceil", "floor",
                               "round", "clamp", "tier", "percentile", "model", "fixed_job"}) {
    EXPECT_EQ(validate(std::string(R"({"measures": [")") + reserved + "\"]}"),
              Problems{std::string("measures[0]: \"") + reserved + "\" is a reserved name"});
  }
  // A rejected name does not become a variable.
  EXPECT_EQ(validate(R"({"measures": ["model"], "models": {"m": "model"}})"),
            (Problems{R"(measures[0]: "model" is a reserved name)", R"(models.m: unknown variable "model" at 1)"}));
}

TEST(ConfigPlans, AllKeysOptional) {
  const auto config = Config::compile(R"({"plans": {"free": {}}})");
  const Plan* free = config->plan("free");
  ASSERT_NE(free, nullptr);
  EXPECT_EQ(free->id, "free");
  EXPECT_EQ(free->name, "");
  EXPECT_EQ(free->free_allowance.to_string(), "0.000000");
  EXPECT_TRUE(free->rate_overrides.empty());
  EXPECT_TRUE(free->features.empty());
}

TEST(ConfigPlans, FeaturesAreStoredAsCompactJson) {
  const auto config = Config::compile(R"({"plans": {"p": {"features": {
      "flag": true, "off": false, "none": null, "limit": 1.50, "big": 1E300, "name": "Pro \"x\"\n",
      "list": [1, "a", [], {}], "nested": {"a": {"b": [null]}}, "unicode": "\u00e9"}}}})");
  const auto& features = config->plan("p")->features;
  EXPECT_EQ(features.size(), 9u);
  EXPECT_EQ(features.at("flag"), "true");
  EXPECT_EQ(features.at("off"), "false");
  EXPECT_EQ(features.at("none"), "null");
  EXPECT_EQ(features.at("limit"), "1.50");
  EXPECT_EQ(features.at("big"), "1E300");
  EXPECT_EQ(features.at("name"), R"("Pro \"x\"\n")");
  EXPECT_EQ(features.at("list"), R"([1,"a",[],{}])");
  EXPECT_EQ(features.at("nested"), R"({"a":{"b":[null]}})");
  EXPECT_EQ(features.at("unicode"), "\"\xc3\xa9\"");
  // A number beyond a double stops the JSON reader (a limit of nlohmann::json); it is still a clean problem.
  EXPECT_EQ(validate(R"({"plans": {"p": {"features": {"big": 1e400}}}})"),
            Problems{"plans.p.features.big: number out of range"});
  EXPECT_EQ(validate(R"({"plans": {"p": {"features": {"l": [1, 2, -1e999]}}}})"),
            Problems{"plans.p.features.l[2]: number out of range"});
}

TEST(ConfigPlans, FreeAllowanceAndOverrides) {
  const auto config = Config::compile(R"({"plans": {
      "pro": {"name": "Pro", "free_allowance": 0.000001, "rate_overrides": {"_default": "1", "gpt-4": "2"}},
      "team": {"free_allowance": 999999999999.999999}}})");
  EXPECT_EQ(config->plan("pro")->free_allowance.to_string(), "0.000001");
  EXPECT_EQ(config->plan("pro")->rate_overrides.size(), 2u);
  EXPECT_EQ(config->plan("team")->free_allowance.to_string(), "999999999999.999999");
  EXPECT_EQ(validate(R"({"plans": {"p": {"free_allowance": 1e12}}})"),
            Problems{"plans.p.free_allowance: must be below 10^12"});
  EXPECT_EQ(validate(R"({"plans": {"p": {"free_allowance": 0.1234567}}})"),
            Problems{"plans.p.free_allowance: must be an amount with at most 6 decimal places"});
}

// Which formula a model resolves to, as "<key>=<source>", or "none".
std::string resolved(const Config& config, std::string_view model, const Plan* plan) {
  const auto formula = config.model_formula(model, plan);
  if (!formula) return "none";
  return std::string(formula->key) + "=" + formula->program->source();
}

TEST(ConfigModelFormula, ResolutionOrder) {
  const auto config = Config::compile(R"({
    "models": {"_default": "1", "gpt-4": "2", "claude": "3"},
    "plans": {"pro": {"rate_overrides": {"gpt-4": "20", "_default": "10"}},
              "lite": {"rate_overrides": {"claude": "30"}},
              "none": {}}})");
  const Plan* pro = config->plan("pro");
  const Plan* lite = config->plan("lite");
  const Plan* none = config->plan("none");
  // plan.rate_overrides[model] first.
  EXPECT_EQ(resolved(*config, "gpt-4", pro), "gpt-4=20");
  EXPECT_EQ(resolved(*config, "claude", lite), "claude=30");
  // Then models[model], before the plan's _default.
  EXPECT_EQ(resolved(*config, "claude", pro), "claude=3");
  // Then plan.rate_overrides._default, before models._default.
  EXPECT_EQ(resolved(*config, "mistral", pro), "_default=10");
  // Then models._default.
  EXPECT_EQ(resolved(*config, "mistral", lite), "_default=1");
  EXPECT_EQ(resolved(*config, "mistral", none), "_default=1");
  EXPECT_EQ(resolved(*config, "mistral", nullptr), "_default=1");
  EXPECT_EQ(resolved(*config, "gpt-4", nullptr), "gpt-4=2");
  // No model given: only the _default entries.
  EXPECT_EQ(resolved(*config, "", pro), "_default=10");
  EXPECT_EQ(resolved(*config, "", nullptr), "_default=1");
}

TEST(ConfigModelFormula, NoneFound) {
  const auto config = Config::compile(R"({"models": {"gpt-4": "2"}, "plans": {"pro": {"rate_overrides": {"o1": "5"}}}})");
  const Plan* pro = config->plan("pro");
  EXPECT_EQ(resolved(*config, "claude", pro), "none");
  EXPECT_EQ(resolved(*config, "", pro), "none");
  EXPECT_EQ(resolved(*config, "o1", nullptr), "none");
  EXPECT_EQ(resolved(*config, "o1", pro), "o1=5");
  EXPECT_EQ(resolved(*config, "gpt-4", pro), "gpt-4=2");
}

}  // namespace
}  // namespace ducto::pricing
