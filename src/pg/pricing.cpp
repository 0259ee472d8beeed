// src/pg/pricing.cpp: the SQL pricing functions (issue 2, item 4): eval, validate_pricing, set_pricing,
// activate_pricing, pricing_history, get_pricing and price.
//
// Each entry point is guarded (bridge.h); Postgres work runs in C-zone helpers through pg_call, C++ work
// (compiling, pricing) in between. Errors of the expression language and the pricing engine are raised
// as 22023 with the core's message; NULL required arguments as 22004.
#include "pg/pg_headers.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pg/bounded_cache.h"
#include "pg/bridge.h"
#include "pg/config_cache.h"
#include "pg/convert.h"
#include "pg/pricing.h"
#include "pg/spi_util.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_eval);
PG_FUNCTION_INFO_V1(ducto_validate_pricing);
PG_FUNCTION_INFO_V1(ducto_set_pricing);
PG_FUNCTION_INFO_V1(ducto_activate_pricing);
PG_FUNCTION_INFO_V1(ducto_pricing_history);
PG_FUNCTION_INFO_V1(ducto_get_pricing);
PG_FUNCTION_INFO_V1(ducto_price);
}

namespace ducto::pg {
namespace {

// ---- shared ----------------------------------------------------------------------------------------

// Every failure of a formula or a usage record reaches SQL as 22023, whatever the core's own code
// (a literal too large for the decimal is out_of_range in the core, but an invalid formula in SQL).
template <class Work>
auto as_invalid_value(Work&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const Error& error) {
    if (error.code() == Errc::invalid_value) throw;
    throw Error(Errc::invalid_value, error.what());
  }
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

[[noreturn]] void throw_unknown_version(std::int32_t version) {
  throw Error(Errc::invalid_value, "unknown pricing version " + std::to_string(version));
}

std::int32_t required_int32_arg(FunctionCallInfo fcinfo, int n, std::string_view name) {
  if (PG_ARGISNULL(n)) throw Error(Errc::null_value, std::string(name) + " must not be NULL");
  return PG_GETARG_INT32(n);
}

// ---- eval ------------------------------------------------------------------------------------------

// Compiled formulas keyed by the expression and the variable names (NUL-separated: text and jsonb keys
// cannot contain NUL), so repeated calls never parse.
constexpr std::size_t kCompiledFormulas = 256;
BoundedCache<expr::Program> compiled_formulas(kCompiledFormulas);

// Reused between calls so that a cache hit allocates nothing.
struct EvalScratch {
  std::string key;
  std::vector<Decimal> values;
};
EvalScratch scratch;

Decimal variable_value(const JsonbMember& member) {
  if (member.value.type != jbvNumeric) {
    throw Error(Errc::invalid_value, "variable " + quoted(member.key) + " must be a number");
  }
  try {
    return to_decimal(member.value.val.numeric);
  } catch (const Error& error) {
    throw Error(Errc::invalid_value, "variable " + quoted(member.key) + ": " + error.what());
  }
}

const expr::Program& formula_for(std::string_view expression, std::span<const JsonbMember> variables) {
  scratch.key.assign(expression);
  for (const JsonbMember& member : variables) {
    scratch.key += '\0';
    scratch.key += member.key;
  }
  if (const expr::Program* cached = compiled_formulas.find(scratch.key)) return *cached;
  expr::SymbolTable symbols;
  for (const JsonbMember& member : variables) symbols.add(std::string(member.key));
  return compiled_formulas.insert(scratch.key, expr::Program::compile(expression, symbols));
}

Datum eval(FunctionCallInfo fcinfo) {
  const std::string_view expression = required_text_arg(fcinfo, 0, "expression");
  Jsonb* variables = required_jsonb_arg(fcinfo, 1, "variables");
  if (!is_object(variables)) throw Error(Errc::invalid_value, "variables must be a JSON object");
  const std::span<const JsonbMember> members = object_members(&variables->root);
  return as_invalid_value([&] {
    const expr::Program& program = formula_for(expression, members);
    scratch.values.clear();
    for (const JsonbMember& member : members) scratch.values.push_back(variable_value(member));
    const Decimal result = program.evaluate(scratch.values).round(Decimal::kMoneyScale);
    return NumericGetDatum(to_money_numeric(result));
  });
}

// ---- validate_pricing ------------------------------------------------------------------------------

Datum validate_pricing(FunctionCallInfo fcinfo) {
  Jsonb* config = required_jsonb_arg(fcinfo, 0, "config");
  const std::vector<std::string> problems = pricing::validate(jsonb_text(config));
  pg_call([&]() noexcept {
    // A set of scalars: the row descriptor is the one the executor expects.
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const std::string& problem : problems) {
      Datum value = PointerGetDatum(cstring_to_text_with_len(problem.data(), static_cast<int>(problem.size())));
      bool is_null = false;
      tuplestore_putvalues(result->setResult, result->setDesc, &value, &is_null);
    }
  });
  return Datum(0);
}

// ---- set_pricing / activate_pricing ----------------------------------------------------------------
// Publishing is serialized by an EXCLUSIVE lock on the table (readers are not blocked): the next version
// is max + 1 under that lock, so two publishers cannot pick the same number. The relcache invalidation
// tells every backend to drop its active config when this transaction commits.

SavedPlan lock_configs("LOCK TABLE ducto.pricing_configs IN EXCLUSIVE MODE", {});
SavedPlan deactivate_all("UPDATE ducto.pricing_configs AS c SET active = false WHERE c.active", {});

// C zone, after the writes. The invalidation reaches the other backends when this transaction commits
// (this one processes it at once); the command counter increment makes the new state visible to the rest
// of this statement (a price in the same SELECT).
void announce_change(Oid relation) noexcept {
  CacheInvalidateRelcacheByRelid(relation);
  CommandCounterIncrement();
}

// C zone.
std::int32_t publish(Jsonb* config, Datum label, bool label_is_null) noexcept {
  static SavedPlan insert(
      "INSERT INTO ducto.pricing_configs (version, label, config, active) "
      "SELECT COALESCE(pg_catalog.max(c.version), 0) OPERATOR(pg_catalog.+) 1, $1, $2, true "
      "FROM ducto.pricing_configs AS c RETURNING version",
      {TEXTOID, JSONBOID});
  const Oid relation = ducto_relation("pricing_configs");
  const SecurityState saved = become_extension_owner();
  spi_connect();
  spi_run(lock_configs, nullptr, nullptr, false, 0);
  spi_run(deactivate_all, nullptr, nullptr, false, 0);
  Datum values[] = {label, JsonbPGetDatum(config)};
  const char nulls[] = {label_is_null ? 'n' : ' ', ' ', '\0'};
  spi_run(insert, values, nulls, false, 0);
  bool is_null = false;
  const std::int32_t version = DatumGetInt32(spi_value(0, 1, &is_null));
  spi_finish();
  restore_security(saved);
  announce_change(relation);
  return version;
}

Datum set_pricing(FunctionCallInfo fcinfo) {
  Jsonb* config = required_jsonb_arg(fcinfo, 0, "config");
  const bool label_is_null = PG_ARGISNULL(1);
  const Datum label = label_is_null ? Datum(0) : PG_GETARG_DATUM(1);
  // Validates (22023 listing every problem) before anything is written.
  std::shared_ptr<const pricing::Config> compiled = pricing::Config::compile(jsonb_text(config));
  const std::int32_t version = pg_call([&]() noexcept { return publish(config, label, label_is_null); });
  remember_compiled_config(config, std::move(compiled));
  forget_active_config();
  return Int32GetDatum(version);
}

// C zone. False when the version does not exist (nothing changed).
bool activate(std::int32_t version) noexcept {
  static SavedPlan exists("SELECT 1 FROM ducto.pricing_configs AS c WHERE c.version OPERATOR(pg_catalog.=) $1",
                          {INT4OID});
  static SavedPlan deactivate_others(
      "UPDATE ducto.pricing_configs AS c SET active = false "
      "WHERE c.active AND c.version OPERATOR(pg_catalog.<>) $1",
      {INT4OID});
  static SavedPlan activate_one(
      "UPDATE ducto.pricing_configs AS c SET active = true "
      "WHERE c.version OPERATOR(pg_catalog.=) $1 AND NOT c.active",
      {INT4OID});
  const Oid relation = ducto_relation("pricing_configs");
  const SecurityState saved = become_extension_owner();
  spi_connect();
  spi_run(lock_configs, nullptr, nullptr, false, 0);
  Datum values[] = {Int32GetDatum(version)};
  const bool found = spi_run(exists, values, nullptr, false, 1) == 1;
  if (found) {
    // In this order: the partial unique index allows one active row at any moment.
    spi_run(deactivate_others, values, nullptr, false, 0);
    spi_run(activate_one, values, nullptr, false, 0);
  }
  spi_finish();
  restore_security(saved);
  if (found) announce_change(relation);
  return found;
}

Datum activate_pricing(FunctionCallInfo fcinfo) {
  const std::int32_t version = required_int32_arg(fcinfo, 0, "version");
  if (!pg_call([&]() noexcept { return activate(version); })) throw_unknown_version(version);
  forget_active_config();
  return Int32GetDatum(version);
}

// ---- pricing_history / get_pricing -----------------------------------------------------------------

Datum pricing_history(FunctionCallInfo fcinfo) {
  static SavedPlan history(
      "SELECT c.version, c.label, c.active, c.created_at FROM ducto.pricing_configs AS c "
      "ORDER BY c.version DESC",
      {});
  pg_call([&]() noexcept {
    InitMaterializedSRF(fcinfo, 0);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const SecurityState saved = become_extension_owner();
    spi_connect();
    const std::uint64_t rows = spi_run(history, nullptr, nullptr, true, 0);
    for (std::uint64_t row = 0; row < rows; ++row) {
      Datum values[4];
      bool nulls[4];
      for (int column = 0; column < 4; ++column) values[column] = spi_value(row, column + 1, &nulls[column]);
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    }
    spi_finish();
    restore_security(saved);
  });
  return Datum(0);
}

// C zone. The stored document of `*version` (nullptr: the active one), copied into the caller's memory
// context; nullptr when there is none.
Jsonb* stored_config(const std::int32_t* version) noexcept {
  static SavedPlan active("SELECT c.config FROM ducto.pricing_configs AS c WHERE c.active", {});
  static SavedPlan by_version(
      "SELECT c.config FROM ducto.pricing_configs AS c WHERE c.version OPERATOR(pg_catalog.=) $1", {INT4OID});
  MemoryContext caller_context = CurrentMemoryContext;
  const SecurityState saved = become_extension_owner();
  spi_connect();
  std::uint64_t rows = 0;
  if (version == nullptr) {
    rows = spi_run(active, nullptr, nullptr, true, 1);
  } else {
    Datum values[] = {Int32GetDatum(*version)};
    rows = spi_run(by_version, values, nullptr, true, 1);
  }
  Jsonb* config = nullptr;
  if (rows == 1) {
    bool is_null = false;
    const Datum value = spi_value(0, 1, &is_null);
    MemoryContext spi_context = MemoryContextSwitchTo(caller_context);
    config = DatumGetJsonbPCopy(value);
    MemoryContextSwitchTo(spi_context);
  }
  spi_finish();
  restore_security(saved);
  return config;
}

Datum get_pricing(FunctionCallInfo fcinfo) {
  const std::optional<std::int32_t> version =
      PG_ARGISNULL(0) ? std::nullopt : std::optional<std::int32_t>(PG_GETARG_INT32(0));
  Jsonb* config = pg_call([&]() noexcept { return stored_config(version ? &*version : nullptr); });
  if (config != nullptr) return JsonbPGetDatum(config);
  if (version) throw_unknown_version(*version);
  fcinfo->isnull = true;  // no active config
  return Datum(0);
}

// ---- price -----------------------------------------------------------------------------------------

// Feeds a tool_calls list to the reader: each element must be {"name": "<string>"}.
void read_tool_list(pricing::UsageReader& reader, JsonbContainer* list) {
  reader.begin_tool_list();
  for (const JsonbValue& element : array_elements(list)) {
    if (!is_object_container(element)) {
      reader.bad_tool_call();
      continue;
    }
    const std::span<const JsonbMember> members = object_members(element.val.binary.data);
    if (members.size() == 1 && members[0].key == "name" && members[0].value.type == jbvString) {
      reader.tool_call(string_of(members[0].value));
    } else {
      reader.bad_tool_call();
    }
  }
}

// A metric's number, with the core's messages for numbers it cannot hold (as parse_usage reports them).
Decimal metric_number(const JsonbMember& member) {
  try {
    return to_decimal(member.value.val.numeric);
  } catch (const Error& error) {
    const std::string problem = error.code() == Errc::out_of_range ? "number out of range" : error.what();
    throw Error(Errc::invalid_value, "invalid metrics: " + std::string(member.key) + ": " + problem);
  }
}

}  // namespace

// Declared in pricing.h: charge (src/pg/debits.cpp) prices with the same reader.
// Walks the metrics jsonb straight into the core's reader: no JSON text, no JSON tree.
pricing::Usage read_usage(Jsonb* metrics, const pricing::Config& config) {
  if (!is_object(metrics)) throw Error(Errc::invalid_value, "invalid metrics: must be a JSON object");
  pricing::UsageReader reader(config);
  for (const JsonbMember& member : object_members(&metrics->root)) {
    const JsonbValue& value = member.value;
    switch (value.type) {
      case jbvNumeric: {
        reader.number(member.key, metric_number(member));
        break;
      }
      case jbvString: reader.string(member.key, string_of(value)); break;
      case jbvNull: reader.null(member.key); break;
      case jbvBool: reader.boolean(member.key); break;
      case jbvBinary:
        if (member.key == "tool_calls" && !is_object_container(value)) {
          read_tool_list(reader, value.val.binary.data);
        } else {
          reader.object(member.key);
        }
        break;
      default: reader.object(member.key); break;
    }
  }
  return reader.finish();
}

Jsonb* breakdown_jsonb(const pricing::Breakdown& breakdown) {
  // Listed in jsonb's key order (length, then bytes), so make_jsonb_object finds them sorted.
  const JsonbField fields[] = {
      {"model", jsonb_string(breakdown.model)},
      {"total", jsonb_money(breakdown.total)},
      {"tool_credits", jsonb_money(breakdown.tool_credits)},
      {"cache_credits", jsonb_money(breakdown.cache_credits)},
      {"fixed_credits", jsonb_money(breakdown.fixed_credits)},
      {"model_credits", jsonb_money(breakdown.model_credits)},
      {"search_credits", jsonb_money(breakdown.search_credits)},
  };
  return make_jsonb_object(fields);
}

namespace {

std::shared_ptr<const pricing::Config> config_to_price_with(Jsonb* inline_config) {
  if (inline_config != nullptr) return compiled_config(inline_config);
  ActiveConfig active = active_config();
  if (!active.config) throw Error(Errc::not_ready, "no active pricing config");
  return std::move(active.config);
}

Datum price(FunctionCallInfo fcinfo) {
  Jsonb* metrics = required_jsonb_arg(fcinfo, 0, "metrics");
  Jsonb* inline_config = jsonb_arg(fcinfo, 1);
  const std::optional<std::string_view> plan_id = text_arg(fcinfo, 2);
  const std::shared_ptr<const pricing::Config> config = config_to_price_with(inline_config);
  return as_invalid_value([&] {
    const pricing::Plan* plan = nullptr;
    if (plan_id) {
      plan = config->plan(*plan_id);
      if (plan == nullptr) throw Error(Errc::invalid_value, "unknown plan " + quoted(*plan_id));
    }
    const pricing::Usage usage = read_usage(metrics, *config);
    return JsonbPGetDatum(breakdown_jsonb(pricing::price(*config, usage, plan)));
  });
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_eval(PG_FUNCTION_ARGS) { return ducto::pg::guarded([&] { return ducto::pg::eval(fcinfo); }); }
Datum ducto_validate_pricing(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::validate_pricing(fcinfo); });
}
Datum ducto_set_pricing(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::set_pricing(fcinfo); });
}
Datum ducto_activate_pricing(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::activate_pricing(fcinfo); });
}
Datum ducto_pricing_history(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::pricing_history(fcinfo); });
}
Datum ducto_get_pricing(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::get_pricing(fcinfo); });
}
Datum ducto_price(PG_FUNCTION_ARGS) { return ducto::pg::guarded([&] { return ducto::pg::price(fcinfo); }); }
}
