// src/core/pricing/engine.cpp: reading usage records and pricing them (design.md, Pricing config and
// Money).
//
// UsageReader checks each metrics key as it arrives; parse_usage() feeds it from JSON text through
// nlohmann's SAX interface (no tree: a metrics object is flat, and anything nested is an error).
// price() evaluates every applicable formula, rounds each component once and adds them up.
#include "core/no_postgres.h"

#include "core/pricing/engine.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

namespace ducto::pricing {
namespace {

constexpr std::string_view kModelKey = "model";
constexpr std::string_view kFixedJobKey = "fixed_job";
constexpr std::string_view kToolCallsKey = kBuiltinMeasures[kToolCallsSlot];

constexpr std::string_view kCountProblem = "must be a non-negative integer";
constexpr std::string_view kToolCallsProblem =
    R"(must be a non-negative integer or a list of {"name": "<tool>"} objects)";

[[noreturn]] void invalid_metrics(std::string_view key, std::string_view problem) {
  throw Error(Errc::invalid_value, "invalid metrics: " + std::string(key) + ": " + std::string(problem));
}

enum class KeyKind { model, fixed_job, tool_calls, measure, unknown };

struct UsageKey {
  KeyKind kind;
  int slot = -1;  // for a measure
};

UsageKey classify(const Config& config, std::string_view key) {
  if (key == kModelKey) return {KeyKind::model};
  if (key == kFixedJobKey) return {KeyKind::fixed_job};
  if (key == kToolCallsKey) return {KeyKind::tool_calls};
  const int slot = config.measure_slot(key);
  return slot >= 0 ? UsageKey{KeyKind::measure, slot} : UsageKey{KeyKind::unknown};
}

// A value of the wrong JSON type for `key`: the problem names what the key takes.
[[noreturn]] void wrong_type(const Config& config, std::string_view key) {
  switch (classify(config, key).kind) {
    case KeyKind::model:
    case KeyKind::fixed_job: invalid_metrics(key, "must be a string");
    case KeyKind::tool_calls: invalid_metrics(key, kToolCallsProblem);
    case KeyKind::measure: invalid_metrics(key, kCountProblem);
    case KeyKind::unknown: break;
  }
  invalid_metrics(key, "unknown key");
}

// A count as an integer-scaled value (1.0 -> 1), so formulas never carry a count's trailing zeros.
Decimal checked_count(std::string_view key, const Decimal& value) {
  if (value.is_negative() || !value.is_integer()) invalid_metrics(key, kCountProblem);
  return value.exponent() < 0 ? value.round(0) : value;
}

}  // namespace

UsageReader::UsageReader(const Config& config) : config_(config) {
  usage_.measures.assign(std::max(config.symbols().size(), kBuiltinMeasures.size()), Decimal{});
}

void UsageReader::number(std::string_view key, const Decimal& value) {
  const UsageKey usage_key = classify(config_, key);
  if (usage_key.kind == KeyKind::measure) {
    usage_.measures[static_cast<std::size_t>(usage_key.slot)] = checked_count(key, value);
  } else if (usage_key.kind == KeyKind::tool_calls) {
    const std::optional<std::int64_t> calls = checked_count(key, value).to_int64();
    if (!calls) invalid_metrics(key, "too many calls");
    // The same key given twice: the last value wins, whichever form each took.
    usage_.unnamed_tool_calls = *calls;
    usage_.named_tools.clear();
    tool_list_ = false;
  } else {
    wrong_type(config_, key);
  }
}

void UsageReader::string(std::string_view key, std::string_view value) {
  switch (classify(config_, key).kind) {
    case KeyKind::model: usage_.model = value; return;
    case KeyKind::fixed_job:
      if (!config_.fixed_job(value)) invalid_metrics(key, "unknown job \"" + std::string(value) + "\"");
      usage_.fixed_job = std::string(value);
      return;
    default: wrong_type(config_, key);
  }
}

void UsageReader::null(std::string_view key) {
  switch (classify(config_, key).kind) {
    case KeyKind::model: usage_.model.clear(); return;
    case KeyKind::fixed_job: usage_.fixed_job.reset(); return;
    default: wrong_type(config_, key);
  }
}

void UsageReader::boolean(std::string_view key) { wrong_type(config_, key); }

void UsageReader::object(std::string_view key) { wrong_type(config_, key); }

void UsageReader::begin_tool_list() {
  usage_.unnamed_tool_calls = 0;
  usage_.named_tools.clear();
  tool_list_ = true;
}

void UsageReader::tool_call(std::string_view name) {
  if (!tool_list_) invalid_metrics(kToolCallsKey, "a tool call outside a list");
  const auto same_name = [&](const ToolCount& tool) { return tool.name == name; };
  if (const auto found = std::find_if(usage_.named_tools.begin(), usage_.named_tools.end(), same_name);
      found != usage_.named_tools.end()) {
    ++found->calls;
  } else {
    usage_.named_tools.push_back(ToolCount{std::string(name), 1});
  }
}

void UsageReader::bad_tool_call() {
  // Every earlier element was a good one and counted one call, so their sum is this element's index.
  std::int64_t index = 0;
  for (const ToolCount& tool : usage_.named_tools) index += tool.calls;
  invalid_metrics(std::string(kToolCallsKey) + "[" + std::to_string(index) + "]",
                  R"(must be an object {"name": "<string>"})");
}

Usage UsageReader::finish() {
  Decimal calls(usage_.unnamed_tool_calls);
  for (const ToolCount& tool : usage_.named_tools) calls += Decimal(tool.calls);
  usage_.measures[kToolCallsSlot] = calls;
  return std::move(usage_);
}

namespace {

// Drives a UsageReader from SAX events. Levels: 0 outside the document, 1 in the metrics object, 2 in
// the tool_calls list, 3 in one of its {"name": ...} elements; anything deeper is an error, so the
// reader never sees nesting.
class UsageEvents final : public nlohmann::json_sax<nlohmann::json> {
 public:
  UsageEvents(const Config& config, UsageReader& reader) : config_(config), reader_(reader) {}

  bool null() override { return scalar([&] { reader_.null(key_); }); }
  bool boolean(bool /*value*/) override { return scalar([&] { reader_.boolean(key_); }); }
  bool number_integer(number_integer_t value) override {
    return scalar([&] { reader_.number(key_, Decimal(value)); });
  }
  bool number_unsigned(number_unsigned_t value) override {
    return scalar([&] { reader_.number(key_, Decimal::from_parts(static_cast<Decimal::Coefficient>(value), 0)); });
  }
  bool number_float(number_float_t rounded, const string_t& raw) override {
    return scalar([&] { reader_.number(key_, exact(rounded, raw)); });
  }
  bool string(string_t& value) override {
    if (level_ == kInElement) {
      element_name_ = std::move(value);
      return true;
    }
    return scalar([&] { reader_.string(key_, value); });
  }
  bool binary(binary_t& /*value*/) override { return false; }  // JSON text has no binary values

  bool start_object(std::size_t /*elements*/) override {
    switch (level_) {
      case kOutside: level_ = kInMetrics; break;
      case kInMetrics: reader_.object(key_); break;
      case kInToolList:
        element_name_.reset();
        level_ = kInElement;
        break;
      default: reader_.bad_tool_call();
    }
    return true;
  }
  bool key(string_t& key) override {
    if (level_ == kInMetrics) {
      key_ = std::move(key);
    } else if (level_ == kInElement && key != "name") {
      reader_.bad_tool_call();
    }
    return true;
  }
  bool end_object() override {
    if (level_ == kInElement) {
      if (!element_name_) {
        reader_.bad_tool_call();
        return false;
      }
      reader_.tool_call(*element_name_);
      level_ = kInToolList;
    } else {
      level_ = kOutside;
    }
    return true;
  }
  bool start_array(std::size_t /*elements*/) override {
    switch (level_) {
      case kOutside: not_an_object();
      case kInMetrics:
        if (key_ != kToolCallsKey) {
          reader_.object(key_);
          return false;
        }
        reader_.begin_tool_list();
        level_ = kInToolList;
        break;
      default: reader_.bad_tool_call();
    }
    return true;
  }
  bool end_array() override {
    level_ = kInMetrics;
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& last_token,
                   const nlohmann::detail::exception& error) override {
    constexpr int kNumberOverflowId = 406;  // a valid token too large for a double
    if (error.id == kNumberOverflowId) scalar([&] { unrepresentable(is_negative_token(last_token)); });
    std::string_view what = error.what();
    if (const auto end = what.find("] "); what.starts_with('[') && end != what.npos) what.remove_prefix(end + 2);
    throw Error(Errc::invalid_value, "invalid metrics: invalid JSON: " + std::string(what));
  }

 private:
  enum Level { kOutside, kInMetrics, kInToolList, kInElement };

  [[noreturn]] static void not_an_object() {
    throw Error(Errc::invalid_value, "invalid metrics: must be a JSON object");
  }

  // A non-container value: a metric at level 1, a bad tool list element (or element member) below.
  template <typename Read>
  bool scalar(Read read) {
    if (level_ == kOutside) not_an_object();
    if (level_ == kInMetrics) {
      read();
    } else {
      reader_.bad_tool_call();
    }
    return true;
  }

  static bool is_negative_token(const std::string& token) { return token.starts_with('-'); }

  // The exact value of a number token; the double only tells why a token beyond Decimal is so.
  Decimal exact(double rounded, const std::string& raw) const {
    try {
      return Decimal::parse(raw);
    } catch (const Error& error) {
      if (error.code() != Errc::out_of_range) throw;
    }
    constexpr double kDecimalLimit = 1e38;
    // Below the limit it failed for digits far past the point: not an integer either.
    unrepresentable(rounded < 0 || std::fabs(rounded) < kDecimalLimit);
    return Decimal{};
  }

  // A number Decimal cannot hold: only a count can say "out of range" about a huge non-negative
  // integer; any other key reports its own problem, which the reader gives for -1 (no key accepts it).
  void unrepresentable(bool negative_or_fraction) const {
    const KeyKind kind = classify(config_, key_).kind;
    if (!negative_or_fraction && (kind == KeyKind::measure || kind == KeyKind::tool_calls))
      invalid_metrics(key_, "number out of range");
    reader_.number(key_, Decimal(-1));
  }

  const Config& config_;
  UsageReader& reader_;
  Level level_ = kOutside;
  std::string key_;
  std::optional<std::string> element_name_;
};

// Quantized to exactly 6 places. round() leaves a value with fewer places as it is, and adding a zero
// with 6 places gives it the scale (sums keep the finer scale), so every component prints alike.
Decimal money(const Decimal& value) {
  return value.round(Decimal::kMoneyScale) + Decimal::from_micros(0);
}

// Evaluates one formula of the config; `path` (called only on failure) names it in the error.
template <typename Path>
Decimal evaluate(const expr::Program& program, std::span<const Decimal> variables, Path path) {
  try {
    return program.evaluate(variables);
  } catch (const Error& error) {
    throw Error(Errc::invalid_value, path() + ": " + error.what());
  }
}

// As evaluate(), for a component that must not be negative.
template <typename Path>
Decimal evaluate_price(const expr::Program& program, std::span<const Decimal> variables, Path path) {
  Decimal value = evaluate(program, variables, path);
  if (value.is_negative()) throw Error(Errc::invalid_value, path() + ": negative price " + value.to_string());
  return value;
}

std::string model_path(const Config::ModelFormula& formula, const Plan* plan) {
  if (plan != nullptr) {
    const auto found = plan->rate_overrides.find(formula.key);
    if (found != plan->rate_overrides.end() && &found->second == formula.program)
      return "plans." + path_key(plan->id) + ".rate_overrides." + path_key(formula.key);
  }
  return "models." + path_key(formula.key);
}

const expr::Program* find_tool(const Config& config, std::string_view name) {
  const auto& tools = config.tool_formulas();
  const auto found = tools.find(name);
  return found == tools.end() ? nullptr : &found->second;
}

// Each named tool with its own formula is priced with tool_calls = its calls; every other call (named
// tools without a formula, and an unnamed count) goes to _default together, or is free without one.
Decimal tool_credits(const Config& config, const Usage& usage) {
  if (config.tool_formulas().empty()) return Decimal{};
  std::vector<Decimal> variables;  // the usage's measures with tool_calls rebound; built on first use
  const auto with_tool_calls = [&](const Decimal& calls) -> std::span<const Decimal> {
    if (variables.empty()) variables = usage.measures;
    variables[kToolCallsSlot] = calls;
    return variables;
  };
  Decimal credits;
  Decimal remaining(usage.unnamed_tool_calls);
  for (const ToolCount& tool : usage.named_tools) {
    if (tool.calls <= 0) continue;
    const expr::Program* own = tool.name == kDefaultKey ? nullptr : find_tool(config, tool.name);
    if (own == nullptr) {
      remaining += Decimal(tool.calls);
      continue;
    }
    credits += evaluate_price(*own, with_tool_calls(Decimal(tool.calls)), [&] { return "tools." + path_key(tool.name); });
  }
  if (remaining.sign() > 0) {
    if (const expr::Program* fallback = find_tool(config, kDefaultKey)) {
      credits += evaluate_price(*fallback, with_tool_calls(remaining), [] { return "tools." + std::string(kDefaultKey); });
    }
  }
  return credits;
}

}  // namespace

Usage parse_usage(std::string_view json_text, const Config& config) {
  UsageReader reader(config);
  UsageEvents events(config, reader);
  // Every way the events stop the parse throws first; this only guards against a partial record.
  if (!nlohmann::json::sax_parse(json_text.data(), json_text.data() + json_text.size(), &events))
    throw Error(Errc::invalid_value, "invalid metrics: invalid JSON");
  return reader.finish();
}

Breakdown price(const Config& config, const Usage& usage, const Plan* plan) {
  // A Usage read against another config could be short; evaluating it would read past its end.
  if (usage.measures.size() < config.symbols().size() || usage.measures.size() <= kToolCallsSlot)
    throw Error(Errc::invalid_value, "usage does not match the pricing config");
  const std::span<const Decimal> measures = usage.measures;

  const std::optional<Config::ModelFormula> model = config.model_formula(usage.model, plan);
  if (!model) throw UnknownModel(usage.model);

  Breakdown breakdown;
  breakdown.model = model->key;
  breakdown.model_credits = money(evaluate_price(*model->program, measures, [&] { return model_path(*model, plan); }));
  breakdown.tool_credits = money(tool_credits(config, usage));
  breakdown.search_credits = money(config.search_formula() == nullptr
                                       ? Decimal{}
                                       : evaluate_price(*config.search_formula(), measures, [] { return std::string("search.costs"); }));
  breakdown.cache_credits = money(config.cache_formula() == nullptr
                                      ? Decimal{}
                                      : evaluate(*config.cache_formula(), measures, [] { return std::string("cache.discount"); }));
  std::optional<Decimal> fixed;
  if (usage.fixed_job) {
    fixed = config.fixed_job(*usage.fixed_job);
    if (!fixed) invalid_metrics(kFixedJobKey, "unknown job \"" + *usage.fixed_job + "\"");
  }
  breakdown.fixed_credits = money(fixed.value_or(Decimal{}));

  const Decimal sum = breakdown.model_credits + breakdown.tool_credits + breakdown.search_credits +
                      breakdown.cache_credits + breakdown.fixed_credits;
  breakdown.total = sum.is_negative() ? Decimal::from_micros(0) : sum;
  return breakdown;
}

}  // namespace ducto::pricing
