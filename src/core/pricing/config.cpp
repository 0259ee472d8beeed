// src/core/pricing/config.cpp: reading, validating and compiling a pricing config (design.md, Pricing
// config and Money).
//
// The text is read through nlohmann's SAX interface into a small tree that keeps members in document
// order (problems are reported in that order) and every number's exact text (money never passes through
// a double). One walk over the tree both collects every problem and fills the Config, so validate() and
// compile() cannot disagree.
#include "core/no_postgres.h"

#include "core/pricing/config.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <utility>

#include "core/error.h"

namespace ducto::pricing {
namespace {

// Deeper documents are refused: the tree and its serialisation are recursive, and no sane config nests
// anywhere near this.
constexpr std::size_t kMaxJsonDepth = 512;
// nlohmann's id for a number too large for a double (the token is still valid JSON).
constexpr int kNumberOverflowId = 406;

struct JsonMember;

// A parsed JSON value. Objects keep their members in document order, duplicates included.
struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool truth = false;
  std::string text;  // a string's value or a number's JSON text
  std::vector<JsonValue> elements;
  std::vector<JsonMember> members;
};

struct JsonMember {
  std::string key;
  JsonValue value;
};

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? path_key(key) : parent + "." + path_key(key);
}

std::string element_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

// Problems about the document as a whole are reported under this name.
constexpr std::string_view kRootName = "config";

// Builds a JsonValue tree from SAX events; the first error stops the parse.
class TreeBuilder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit TreeBuilder(JsonValue& root) : root_(root) {}
  const std::optional<std::string>& problem() const { return problem_; }

  bool null() override {
    add(JsonValue::Kind::null);
    return true;
  }
  bool boolean(bool value) override {
    add(JsonValue::Kind::boolean).truth = value;
    return true;
  }
  bool number_integer(number_integer_t value) override {
    add(JsonValue::Kind::number).text = std::to_string(value);
    return true;
  }
  bool number_unsigned(number_unsigned_t value) override {
    add(JsonValue::Kind::number).text = std::to_string(value);
    return true;
  }
  bool number_float(number_float_t /*rounded*/, const string_t& raw) override {
    add(JsonValue::Kind::number).text = raw;
    return true;
  }
  bool string(string_t& value) override {
    add(JsonValue::Kind::string).text = std::move(value);
    return true;
  }
  bool binary(binary_t& /*value*/) override { return false; }  // JSON text has no binary values
  bool start_object(std::size_t /*elements*/) override { return open(JsonValue::Kind::object); }
  bool key(string_t& key) override {
    stack_.back()->members.push_back(JsonMember{std::move(key), {}});
    return true;
  }
  bool end_object() override {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t /*elements*/) override { return open(JsonValue::Kind::array); }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& error) override {
    if (error.id == kNumberOverflowId) {
      problem_ = current_path() + ": number out of range";
    } else {
      problem_ = std::string(kRootName) + ": invalid JSON: " + without_id(error.what());
    }
    return false;
  }

 private:
  // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ...".
  static std::string without_id(std::string_view what) {
    if (const auto end = what.find("] "); !what.empty() && what.front() == '[' && end != what.npos)
      what.remove_prefix(end + 2);
    return std::string(what);
  }

  JsonValue& add(JsonValue::Kind kind) {
    JsonValue* slot = &root_;
    if (!stack_.empty()) {
      JsonValue& parent = *stack_.back();
      slot = parent.kind == JsonValue::Kind::array ? &parent.elements.emplace_back() : &parent.members.back().value;
    }
    slot->kind = kind;
    return *slot;
  }

  bool open(JsonValue::Kind kind) {
    if (stack_.size() >= kMaxJsonDepth) {
      problem_ = std::string(kRootName) + ": invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) +
                 " levels";
      return false;
    }
    stack_.push_back(&add(kind));
    return true;
  }

  // The path of the value being read: each open container's last member or element, and at the top
  // the key just read or the next index.
  std::string current_path() const {
    std::string path;
    for (std::size_t level = 0; level < stack_.size(); ++level) {
      const JsonValue& node = *stack_[level];
      const bool innermost = level + 1 == stack_.size();
      if (node.kind == JsonValue::Kind::object) {
        path = child_path(path, node.members.back().key);
      } else {
        path = element_path(path, node.elements.size() - (innermost ? 0 : 1));
      }
    }
    return path.empty() ? std::string(kRootName) : path;
  }

  JsonValue& root_;
  std::vector<JsonValue*> stack_;
  std::optional<std::string> problem_;
};

// The exact value of a JSON number token: ±digits * 10^exponent, digits without leading or trailing
// zeros (empty for zero). Reading the token ourselves keeps huge and tiny exponents exact.
struct ExactNumber {
  bool negative = false;
  std::string digits;
  std::int64_t exponent = 0;

  bool is_zero() const { return digits.empty(); }
  // The power of ten of the leading digit.
  std::int64_t magnitude() const { return exponent + static_cast<std::int64_t>(digits.size()) - 1; }
};

// `token` follows the JSON number grammar (nlohmann checked it).
ExactNumber exact_number(std::string_view token) {
  // An exponent this large already puts any value far outside every range we accept.
  constexpr std::int64_t kExponentCap = 1'000'000'000'000;
  ExactNumber number;
  std::size_t i = 0;
  if (i < token.size() && token[i] == '-') {
    number.negative = true;
    ++i;
  }
  std::int64_t fraction_digits = 0;
  bool in_fraction = false;
  for (; i < token.size() && token[i] != 'e' && token[i] != 'E'; ++i) {
    if (token[i] == '.') {
      in_fraction = true;
      continue;
    }
    if (in_fraction) ++fraction_digits;
    if (token[i] != '0' || !number.digits.empty()) number.digits.push_back(token[i]);
  }
  std::int64_t written_exponent = 0;
  if (i < token.size()) {
    ++i;  // 'e' or 'E'
    bool exponent_negative = false;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) exponent_negative = token[i++] == '-';
    for (; i < token.size(); ++i)
      written_exponent = std::min(kExponentCap, written_exponent * 10 + (token[i] - '0'));
    if (exponent_negative) written_exponent = -written_exponent;
  }
  const auto significant_end = number.digits.find_last_not_of('0');
  const std::size_t trailing_zeros =
      significant_end == std::string::npos ? 0 : number.digits.size() - significant_end - 1;
  number.digits.resize(number.digits.size() - trailing_zeros);
  number.exponent = written_exponent - fraction_digits + static_cast<std::int64_t>(trailing_zeros);
  if (number.is_zero()) number = ExactNumber{};
  return number;
}

bool is_identifier(std::string_view name) {
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return !name.empty() && letter(name.front()) &&
         std::all_of(name.begin() + 1, name.end(), [&](char c) { return letter(c) || digit(c); });
}

// Names a declared measure may not take: the language's keywords and functions, and the usage keys
// that are not measures.
bool is_reserved_name(std::string_view name) {
  static constexpr std::array<std::string_view, 18> kReserved = {
      "and",   "or",    "not",   "if",   "else",       "true",  "false",    "min", "max",
      "abs",   "ceil",  "floor", "round", "clamp",     "tier",  "percentile", "model", "fixed_job"};
  return std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end();
}

enum class Sign { any, non_negative };

}  // namespace

std::string path_key(std::string_view key) {
  if (!key.empty() && key.find_first_of(".\"") == std::string_view::npos) return std::string(key);
  std::string quoted = "\"";
  for (const char c : key) {
    if (c == '"') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

// Walks a parsed document once, recording every problem and filling a Config with what is valid.
class ConfigBuilder {
 public:
  explicit ConfigBuilder(std::string_view json_text) : config_(std::make_shared<Config>()) {
    config_->min_balance_ = Decimal::from_micros(0);
    JsonValue root;
    TreeBuilder tree(root);
    const bool parsed = nlohmann::json::sax_parse(json_text.data(), json_text.data() + json_text.size(), &tree);
    if (!parsed || tree.problem()) {
      problems_.push_back(tree.problem().value_or(std::string(kRootName) + ": invalid JSON"));
      return;
    }
    read_root(root);
  }

  const std::vector<std::string>& problems() const { return problems_; }
  std::vector<std::string> take_problems() { return std::move(problems_); }
  std::shared_ptr<const Config> config() const { return config_; }

 private:
  using FormulaMap = std::map<std::string, expr::Program, std::less<>>;

  void problem(const std::string& path, std::string_view message) {
    problems_.push_back(path + ": " + std::string(message));
  }

  bool expect(const JsonValue& value, JsonValue::Kind kind, const std::string& path, std::string_view what) {
    if (value.kind == kind) return true;
    problem(path, std::string("must be ") + std::string(what));
    return false;
  }

  // Calls visit(key, value, path) for each member of an object in document order; a key given twice is
  // a problem (its later values are skipped): JSON leaves duplicates undefined.
  template <typename Visit>
  void members(const JsonValue& object, const std::string& path, Visit visit) {
    std::unordered_set<std::string_view> seen;
    for (const JsonMember& member : object.members) {
      std::string member_path = child_path(path, member.key);
      if (!seen.insert(member.key).second) {
        problem(member_path, "duplicate key");
        continue;
      }
      visit(member.key, member.value, member_path);
    }
  }

  void read_root(const JsonValue& root) {
    if (root.kind != JsonValue::Kind::object) {
      problem(std::string(kRootName), "must be a JSON object");
      return;
    }
    // Formulas anywhere may name the declared measures, so they are declared before the walk.
    const auto measures = std::find_if(root.members.begin(), root.members.end(),
                                       [](const JsonMember& m) { return m.key == "measures"; });
    std::vector<std::string> measure_problems;
    declare_measures(measures == root.members.end() ? nullptr : &measures->value, measure_problems);

    members(root, "", [&](std::string_view key, const JsonValue& value, const std::string& path) {
      if (key == "version") {
        read_version(value, path);
      } else if (key == "models") {
        read_formulas(value, path, config_->models_);
      } else if (key == "tools") {
        read_formulas(value, path, config_->tools_);
      } else if (key == "search") {
        read_formula_section(value, path, "costs", config_->search_);
      } else if (key == "cache") {
        read_formula_section(value, path, "discount", config_->cache_);
      } else if (key == "fixed") {
        read_fixed(value, path);
      } else if (key == "min_balance") {
        if (auto amount = read_amount(value, path, Sign::any)) config_->min_balance_ = *amount;
      } else if (key == "low_balance_thresholds") {
        read_thresholds(value, path);
      } else if (key == "measures") {
        problems_.insert(problems_.end(), measure_problems.begin(), measure_problems.end());
      } else if (key == "plans") {
        read_plans(value, path);
      } else {
        problem(path, "unknown key");
      }
    });
  }

  void read_version(const JsonValue& value, const std::string& path) {
    if (value.kind == JsonValue::Kind::number) {
      const ExactNumber number = exact_number(value.text);
      if (!number.negative && number.digits == "1" && number.exponent == 0) return;
    }
    problem(path, "must be 1");
  }

  // Declares the valid names after the builtins; the problems go to `out` so that they are reported
  // where `measures` stands in the document.
  void declare_measures(const JsonValue* measures, std::vector<std::string>& out) {
    expr::SymbolTable& symbols = config_->symbols_;
    for (const std::string_view builtin : kBuiltinMeasures) symbols.add(std::string(builtin));
    if (measures == nullptr) return;
    const std::string path = "measures";
    if (measures->kind != JsonValue::Kind::array) {
      out.push_back(path + ": must be an array of identifiers");
      return;
    }
    for (std::size_t i = 0; i < measures->elements.size(); ++i) {
      const JsonValue& element = measures->elements[i];
      const std::string element_at = element_path(path, i);
      const std::string quoted = "\"" + element.text + "\"";
      const int slot = symbols.find(element.text);
      if (element.kind != JsonValue::Kind::string || !is_identifier(element.text)) {
        out.push_back(element_at + ": must be an identifier");
      } else if (slot >= 0 && slot < static_cast<int>(kBuiltinMeasures.size())) {
        out.push_back(element_at + ": " + quoted + " is a builtin measure");
      } else if (slot >= 0) {
        out.push_back(element_at + ": duplicate measure " + quoted);
      } else if (is_reserved_name(element.text)) {
        out.push_back(element_at + ": " + quoted + " is a reserved name");
      } else {
        symbols.add(element.text);
      }
    }
  }

  std::optional<expr::Program> read_formula(const JsonValue& value, const std::string& path) {
    if (!expect(value, JsonValue::Kind::string, path, "a formula string")) return std::nullopt;
    try {
      return expr::Program::compile(value.text, config_->symbols_);
    } catch (const Error& error) {
      problem(path, error.what());
      return std::nullopt;
    }
  }

  void read_formulas(const JsonValue& value, const std::string& path, FormulaMap& into) {
    if (!expect(value, JsonValue::Kind::object, path, "an object")) return;
    members(value, path, [&](std::string_view key, const JsonValue& formula, const std::string& formula_path) {
      if (auto program = read_formula(formula, formula_path)) into.insert_or_assign(std::string(key), std::move(*program));
    });
  }

  // `search` and `cache`: an object whose only key holds a formula.
  void read_formula_section(const JsonValue& value, const std::string& path, std::string_view formula_key,
                            std::optional<expr::Program>& into) {
    if (!expect(value, JsonValue::Kind::object, path, "an object")) return;
    members(value, path, [&](std::string_view key, const JsonValue& formula, const std::string& formula_path) {
      if (key != formula_key) {
        problem(formula_path, "unknown key");
      } else if (auto program = read_formula(formula, formula_path)) {
        into = std::move(*program);
      }
    });
  }

  // An amount: finite, |x| < 10^12, nothing past the 6th decimal place; scaled to exactly 6 places.
  std::optional<Decimal> read_amount(const JsonValue& value, const std::string& path, Sign sign) {
    constexpr std::int64_t kMaxMagnitude = 11;  // |x| < 10^12
    if (!expect(value, JsonValue::Kind::number, path, "a number")) return std::nullopt;
    const ExactNumber number = exact_number(value.text);
    if (number.is_zero()) return Decimal::from_micros(0);
    if (number.magnitude() > kMaxMagnitude) {
      problem(path, "must be below 10^12");
    } else if (number.exponent < -Decimal::kMoneyScale) {
      problem(path, "must be an amount with at most 6 decimal places");
    } else if (number.negative && sign == Sign::non_negative) {
      problem(path, "must not be negative");
    } else {
      // At most 18 digits by the checks above, so the micro-credits fit an int64.
      std::int64_t micros = 0;
      for (const char digit : number.digits) micros = micros * 10 + (digit - '0');
      for (std::int64_t i = number.exponent; i > -Decimal::kMoneyScale; --i) micros *= 10;
      return Decimal::from_micros(number.negative ? -micros : micros);
    }
    return std::nullopt;
  }

  void read_fixed(const JsonValue& value, const std::string& path) {
    if (!expect(value, JsonValue::Kind::object, path, "an object")) return;
    members(value, path, [&](std::string_view key, const JsonValue& credits, const std::string& job_path) {
      if (auto amount = read_amount(credits, job_path, Sign::non_negative))
        config_->fixed_.insert_or_assign(std::string(key), *amount);
    });
  }

  void read_thresholds(const JsonValue& value, const std::string& path) {
    if (!expect(value, JsonValue::Kind::array, path, "an array")) return;
    std::vector<Decimal>& thresholds = config_->low_balance_thresholds_;
    for (std::size_t i = 0; i < value.elements.size(); ++i) {
      if (auto amount = read_amount(value.elements[i], element_path(path, i), Sign::non_negative))
        thresholds.push_back(*amount);
    }
    std::sort(thresholds.begin(), thresholds.end());
    thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  }

  void read_plans(const JsonValue& value, const std::string& path) {
    if (!expect(value, JsonValue::Kind::object, path, "an object")) return;
    members(value, path, [&](std::string_view id, const JsonValue& fields, const std::string& plan_path) {
      if (!expect(fields, JsonValue::Kind::object, plan_path, "an object")) return;
      Plan plan;
      plan.id = id;
      plan.free_allowance = Decimal::from_micros(0);
      members(fields, plan_path, [&](std::string_view key, const JsonValue& field, const std::string& field_path) {
        if (key == "name") {
          if (expect(field, JsonValue::Kind::string, field_path, "a string")) plan.name = field.text;
        } else if (key == "free_allowance") {
          if (auto amount = read_amount(field, field_path, Sign::non_negative)) plan.free_allowance = *amount;
        } else if (key == "rate_overrides") {
          read_formulas(field, field_path, plan.rate_overrides);
        } else if (key == "features") {
          read_features(field, field_path, plan.features);
        } else {
          problem(field_path, "unknown key");
        }
      });
      config_->plans_.insert_or_assign(std::string(id), std::move(plan));
    });
  }

  void read_features(const JsonValue& value, const std::string& path,
                     std::map<std::string, std::string, std::less<>>& into) {
    if (!expect(value, JsonValue::Kind::object, path, "an object")) return;
    members(value, path, [&](std::string_view key, const JsonValue& feature, const std::string& /*path*/) {
      into.insert_or_assign(std::string(key), compact_json(feature));
    });
  }

  static std::string quoted_json_string(const std::string& text) {
    return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  static std::string compact_json(const JsonValue& value) {
    switch (value.kind) {
      case JsonValue::Kind::null: return "null";
      case JsonValue::Kind::boolean: return value.truth ? "true" : "false";
      case JsonValue::Kind::number: return value.text;
      case JsonValue::Kind::string: return quoted_json_string(value.text);
      case JsonValue::Kind::array: {
        std::string out = "[";
        for (const JsonValue& element : value.elements) {
          if (out.size() > 1) out += ',';
          out += compact_json(element);
        }
        return out + "]";
      }
      case JsonValue::Kind::object: {
        std::string out = "{";
        for (const JsonMember& member : value.members) {
          if (out.size() > 1) out += ',';
          out += quoted_json_string(member.key) + ":" + compact_json(member.value);
        }
        return out + "}";
      }
    }
    return "null";
  }

  std::shared_ptr<Config> config_;
  std::vector<std::string> problems_;
};

std::vector<std::string> validate(std::string_view json_text) { return ConfigBuilder(json_text).take_problems(); }

std::shared_ptr<const Config> Config::compile(std::string_view json_text) {
  ConfigBuilder builder(json_text);
  const std::vector<std::string>& problems = builder.problems();
  if (!problems.empty()) {
    std::string message = "invalid pricing config: ";
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i == 0 ? "" : "; ") + problems[i];
    throw Error(Errc::invalid_value, message);
  }
  return builder.config();
}

const Plan* Config::plan(std::string_view id) const {
  const auto found = plans_.find(id);
  return found == plans_.end() ? nullptr : &found->second;
}

std::optional<Decimal> Config::fixed_job(std::string_view name) const {
  const auto found = fixed_.find(name);
  if (found == fixed_.end()) return std::nullopt;
  return found->second;
}

std::optional<Config::ModelFormula> Config::model_formula(std::string_view model, const Plan* plan) const {
  using Formulas = std::map<std::string, expr::Program, std::less<>>;
  const auto lookup = [](const Formulas& formulas, std::string_view key) -> std::optional<ModelFormula> {
    const auto found = formulas.find(key);
    if (found == formulas.end()) return std::nullopt;
    return ModelFormula{&found->second, found->first};
  };
  std::optional<ModelFormula> found;
  if (!model.empty()) {
    if (plan != nullptr) found = lookup(plan->rate_overrides, model);
    if (!found) found = lookup(models_, model);
  }
  if (!found && plan != nullptr) found = lookup(plan->rate_overrides, kDefaultKey);
  if (!found) found = lookup(models_, kDefaultKey);
  return found;
}

}  // namespace ducto::pricing
