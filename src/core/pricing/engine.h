// src/core/pricing/engine.h: usage records and the engine that prices them (design.md, Pricing config).
//
// The glue feeds a usage record key by key through a UsageReader (so the hot path walks jsonb without
// building a JSON tree); tests and the fuzzer go through parse_usage(), which drives the same reader.
#pragma once
#include "core/no_postgres.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decimal.h"
#include "core/error.h"
#include "core/pricing/config.h"

namespace ducto::pricing {

struct ToolCount {
  std::string name;
  std::int64_t calls = 0;
};

// One model call's usage, checked against a config.
struct Usage {
  std::string model;                    // empty: no model given (priced by _default)
  std::vector<Decimal> measures;        // by the config's slots; absent measures are 0
  std::vector<ToolCount> named_tools;   // from a tool_calls list, in first-seen order
  std::int64_t unnamed_tool_calls = 0;  // from a tool_calls count
  std::optional<std::string> fixed_job;
};

// Builds a Usage from the keys of a metrics object. Each call validates its key and value and throws
// Error(invalid_value) with a message "invalid metrics: <key>: <problem>" on an unknown key, a count
// that is not a non-negative integer (1.0 and 1e3 are integers, 1.5 is not), a model that is not a
// string, an unknown fixed_job, or a bad tool_calls element.
class UsageReader {
 public:
  explicit UsageReader(const Config& config);
  void number(std::string_view key, const Decimal& value);
  void string(std::string_view key, std::string_view value);
  void null(std::string_view key);          // model/fixed_job: absent; anything else: error
  void boolean(std::string_view key);       // always an error
  void object(std::string_view key);        // always an error (tool_calls elements go through tool_call)
  void begin_tool_list();                   // tool_calls given as a list
  void tool_call(std::string_view name);    // one {"name": ...} element of the list
  void bad_tool_call();                     // an element that is not {"name": "<string>"}
  Usage finish();

 private:
  const Config& config_;
  Usage usage_;
  bool tool_list_ = false;
};

// Parses a metrics JSON object (text) with a UsageReader; a non-object is an error.
Usage parse_usage(std::string_view json_text, const Config& config);

struct Breakdown {
  std::string model;  // the formula key used: the model's name or "_default"
  Decimal model_credits, tool_credits, search_credits, cache_credits, fixed_credits, total;
};

// No formula for the model: price() and eval raise it as 22023, charge reports error = 'unknown_model'.
class UnknownModel : public Error {
 public:
  explicit UnknownModel(const std::string& model)
      : Error(Errc::invalid_value, "no pricing formula for model \"" + model + "\"") {}
};

// Prices one usage record for a user on `plan` (nullptr: none). Each component is quantized to 6
// places (half away from zero); total = max(0, sum of the quantized components). Throws UnknownModel,
// or Error(invalid_value) when a formula fails ("models.gpt-4: division by zero at 9") or a model,
// tool, search or fixed component is negative.
Breakdown price(const Config& config, const Usage& usage, const Plan* plan);

}  // namespace ducto::pricing
