// src/pg/policies.cpp: the policies of issue 5: ducto.set_user_plan, get_user_plan, check_feature,
// set_spend_cap, remove_spend_cap, spend_caps, set_low_balance_thresholds, and the per-account policy
// state the debit paths apply under the account lock (policies.h). Storage: sql/ducto--1.0.sql,
// "policies". The pure rules live in src/core/policy.
//
// Writers of policy rows (the SQL functions here and the debits) hold the account's row lock, so the
// rows of one account change one transaction at a time, like its balance.
#include "pg/policies.h"

extern "C" {
#include "datatype/timestamp.h"
#include "utils/array.h"
}

#include <string>
#include <string_view>
#include <vector>

#include "core/ledger/validate.h"
#include "pg/bridge.h"
#include "pg/config_cache.h"
#include "pg/convert.h"
#include "pg/ledger_store.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_set_user_plan);
PG_FUNCTION_INFO_V1(ducto_get_user_plan);
PG_FUNCTION_INFO_V1(ducto_check_feature);
PG_FUNCTION_INFO_V1(ducto_set_spend_cap);
PG_FUNCTION_INFO_V1(ducto_remove_spend_cap);
PG_FUNCTION_INFO_V1(ducto_spend_caps);
PG_FUNCTION_INFO_V1(ducto_set_low_balance_thresholds);
}

namespace ducto::pg {

constexpr std::int64_t kUnixToPostgresMicros =
    static_cast<std::int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

policy::UnixMicros unix_of(TimestampTz at) { return at + kUnixToPostgresMicros; }
TimestampTz timestamp_of(policy::UnixMicros at) { return at - kUnixToPostgresMicros; }

namespace {

// C zone. Text of column `column` in row `row`, or nullptr for NULL.
const text* text_column(std::uint64_t row, int column) noexcept {
  bool is_null = false;
  const Datum value = spi_value(row, column, &is_null);
  return is_null ? nullptr : DatumGetTextPP(value);
}

std::optional<std::string> copy_text(const text* value) {
  if (value == nullptr) return std::nullopt;
  return std::string(view_of(value));
}

// C zone. The elements of a bigint[] (no NULL elements: we write these arrays).
void read_int8_array(Datum array, std::vector<Micros>* out) noexcept {
  ArrayType* values = DatumGetArrayTypeP(array);
  Datum* elements = nullptr;
  bool* nulls = nullptr;
  int count = 0;
  deconstruct_array(values, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elements, &nulls, &count);
  out->resize(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) (*out)[static_cast<std::size_t>(i)] = DatumGetInt64(elements[i]);
}

// C zone.
Datum int8_array_datum(const std::vector<Micros>& values) noexcept {
  if (values.empty()) return PointerGetDatum(construct_empty_array(INT8OID));
  auto* elements = static_cast<Datum*>(palloc(values.size() * sizeof(Datum)));
  for (std::size_t i = 0; i < values.size(); ++i) elements[i] = Int64GetDatum(values[i]);
  return PointerGetDatum(
      construct_array(elements, static_cast<int>(values.size()), INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum optional_text_datum(const std::optional<std::string>& value) {
  if (!value) return Datum(0);
  return pg_call([&]() noexcept { return text_datum(*value); });
}

char null_flag(bool present) { return present ? ' ' : 'n'; }

// ---- the policy rows ---------------------------------------------------------------------------------

struct PolicyRow {
  std::optional<std::string> plan;
  std::optional<TimestampTz> allowance_month;
  Micros allowance_used = 0;
  std::optional<std::vector<Micros>> thresholds;
};

std::optional<PolicyRow> read_policy_row(std::int64_t account_id, bool read_only) {
  static SavedPlan read(
      "SELECT p.plan, p.allowance_month, p.allowance_used, p.low_balance_thresholds FROM ducto.account_policies AS p "
      "WHERE p.account_id OPERATOR(pg_catalog.=) $1",
      {INT8OID});
  struct Raw {
    const text* plan;
    bool has_month;
    TimestampTz month;
    Micros used;
    bool has_thresholds;
    Datum thresholds;
  } raw{};
  const bool found = pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id)};
    if (spi_run(read, values, nullptr, read_only, 1) != 1) return false;
    bool is_null = false;
    raw.plan = text_column(0, 1);
    raw.month = DatumGetTimestampTz(spi_value(0, 2, &is_null));
    raw.has_month = !is_null;
    raw.used = DatumGetInt64(spi_value(0, 3, &is_null));
    raw.thresholds = spi_value(0, 4, &is_null);
    raw.has_thresholds = !is_null;
    return true;
  });
  if (!found) return std::nullopt;
  PolicyRow row;
  row.plan = copy_text(raw.plan);
  if (raw.has_month) row.allowance_month = raw.month;
  row.allowance_used = raw.used;
  if (raw.has_thresholds) {
    std::vector<Micros> thresholds;
    pg_call([&]() noexcept { read_int8_array(raw.thresholds, &thresholds); });
    row.thresholds = std::move(thresholds);
  }
  return row;
}

// The allowance used in the month of `now` according to a policy row.
Micros used_this_month(const PolicyRow& row, TimestampTz now) {
  const policy::Window month = policy::month_window(unix_of(now));
  return row.allowance_month && unix_of(*row.allowance_month) == month.start ? row.allowance_used : 0;
}

// Keeps accounts.policies true exactly while the account has a plan, own thresholds or a cap.
void refresh_policy_flag(std::int64_t account_id) {
  static SavedPlan refresh(
      "UPDATE ducto.accounts AS a SET policies = (EXISTS (SELECT 1 FROM ducto.account_policies AS p "
      "WHERE p.account_id OPERATOR(pg_catalog.=) $1 AND (p.plan IS NOT NULL OR p.low_balance_thresholds IS NOT NULL)) "
      "OR EXISTS (SELECT 1 FROM ducto.caps AS c WHERE c.account_id OPERATOR(pg_catalog.=) $1)) "
      "WHERE a.id OPERATOR(pg_catalog.=) $1",
      {INT8OID});
  pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id)};
    spi_run(refresh, values, nullptr, false, 0);
  });
}

struct CapRow {
  std::int64_t id = 0;
  policy::Cap cap;
  TimestampTz window_start = 0;
  policy::CapState stored;
};

std::vector<CapRow> read_caps(std::int64_t account_id, bool read_only) {
  static SavedPlan read(
      "SELECT c.id, c.period, c.model, c.cap, c.action, c.warn_ppm, c.window_start, c.spent, c.warned, c.exceeded "
      "FROM ducto.caps AS c WHERE c.account_id OPERATOR(pg_catalog.=) $1 ORDER BY c.period, c.model NULLS FIRST",
      {INT8OID});
  const std::uint64_t rows = pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id)};
    return spi_run(read, values, nullptr, read_only, 0);
  });
  std::vector<CapRow> caps(rows);
  for (std::uint64_t row = 0; row < rows; ++row) {
    CapRow& cap = caps[row];
    const text* period = nullptr;
    const text* model = nullptr;
    const text* action = nullptr;
    pg_call([&]() noexcept {
      bool is_null = false;
      cap.id = DatumGetInt64(spi_value(row, 1, &is_null));
      period = text_column(row, 2);
      model = text_column(row, 3);
      cap.cap.cap = DatumGetInt64(spi_value(row, 4, &is_null));
      action = text_column(row, 5);
      cap.cap.warn_ppm = DatumGetInt32(spi_value(row, 6, &is_null));
      cap.window_start = DatumGetTimestampTz(spi_value(row, 7, &is_null));
      cap.stored.spent = DatumGetInt64(spi_value(row, 8, &is_null));
      cap.stored.warned = DatumGetBool(spi_value(row, 9, &is_null));
      cap.stored.exceeded = DatumGetBool(spi_value(row, 10, &is_null));
    });
    cap.cap.period = policy::period_named(view_of(period));
    cap.cap.model = copy_text(model);
    cap.cap.action = policy::cap_action_named(view_of(action));
  }
  return caps;
}

void write_cap_state(std::int64_t id, TimestampTz window_start, const policy::CapState& state) {
  static SavedPlan write(
      "UPDATE ducto.caps AS c SET window_start = $2, spent = $3, warned = $4, exceeded = $5 "
      "WHERE c.id OPERATOR(pg_catalog.=) $1",
      {INT8OID, TIMESTAMPTZOID, INT8OID, BOOLOID, BOOLOID});
  pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(id), TimestampTzGetDatum(window_start), Int64GetDatum(state.spent),
                      BoolGetDatum(state.warned), BoolGetDatum(state.exceeded)};
    spi_run(write, values, nullptr, false, 0);
  });
}

policy::Window current_window(policy::Period period, TimestampTz now) {
  return policy::window_of(period, unix_of(now));
}

// The config's low-balance thresholds in micro-credits.
std::vector<Micros> config_thresholds(const pricing::Config* config) {
  if (config == nullptr || config->low_balance_thresholds().empty()) return {};
  return policy::thresholds_micros(config->low_balance_thresholds());
}

void emit_low_balance(Operation& op, std::span<const Micros> thresholds, Micros balance_before) {
  const Micros balance = op.account().balance;
  if (const std::optional<Micros> threshold = policy::low_balance_crossed(thresholds, balance_before, balance)) {
    op.emit("credits.low_balance", std::nullopt, balance,
            EventData().money("balance", balance).money("threshold", *threshold).build());
  }
}

EventData cap_data(const policy::Cap& cap, Micros spent) {
  EventData data;
  data.text("period", policy::name_of(cap.period))
      .text("model", cap.model ? std::optional<std::string_view>(*cap.model) : std::nullopt)
      .money("cap", cap.cap)
      .money("spent", spent)
      .text("action", policy::name_of(cap.action));
  return data;
}

}  // namespace

// ---- the charge path's API ---------------------------------------------------------------------------

AccountPolicies::AccountPolicies(std::int64_t account_id, bool flagged, const pricing::Config* config, TimestampTz now)
    : account_id_(account_id), now_(now), config_(config) {
  if (!flagged) return;
  if (const std::optional<PolicyRow> row = read_policy_row(account_id, false)) {
    if (row->plan && config != nullptr) plan_ = config->plan(*row->plan);
    allowance_used_ = used_this_month(*row, now);
    own_thresholds_ = row->thresholds;
  }
  for (const CapRow& row : read_caps(account_id, false)) {
    caps_.push_back({row.id, row.cap,
                     policy::state_in_window(row.stored, unix_of(row.window_start), current_window(row.cap.period, now))});
  }
}

Micros AccountPolicies::allowance_left() const {
  return policy::allowance_remaining(policy::allowance_of(plan_), allowance_used_);
}

std::optional<CapRefusal> AccountPolicies::refusal(std::optional<std::string_view> model, Micros amount) const {
  for (const StoredCap& stored : caps_) {
    if (!policy::cap_applies(stored.cap, model)) continue;
    if (policy::decide(stored.cap, stored.state, amount).denied) {
      return CapRefusal{stored.cap.period, stored.cap.model, stored.cap.cap, stored.state.spent, amount};
    }
  }
  return std::nullopt;
}

void AccountPolicies::after_debit(Operation& op, std::optional<std::string_view> model, Micros debited, Micros covered,
                                  Micros balance_before) {
  static SavedPlan use_allowance(
      "UPDATE ducto.account_policies AS p SET allowance_month = $2, allowance_used = $3 "
      "WHERE p.account_id OPERATOR(pg_catalog.=) $1",
      {INT8OID, TIMESTAMPTZOID, INT8OID});
  if (covered > 0) {
    allowance_used_ = ledger::checked_add(allowance_used_, covered);
    const TimestampTz month = timestamp_of(policy::month_window(unix_of(now_)).start);
    pg_call([&]() noexcept {
      Datum values[] = {Int64GetDatum(account_id_), TimestampTzGetDatum(month), Int64GetDatum(allowance_used_)};
      spi_run(use_allowance, values, nullptr, false, 0);
    });
  }
  for (StoredCap& stored : caps_) {
    if (debited <= 0 || !policy::cap_applies(stored.cap, model)) continue;
    const policy::CapDecision decision = policy::decide(stored.cap, stored.state, debited);
    stored.state = decision.after;
    write_cap_state(stored.id, timestamp_of(current_window(stored.cap.period, now_).start), stored.state);
    if (decision.threshold_crossed) {
      op.emit("credits.cap_warning", std::nullopt, op.account().balance,
              cap_data(stored.cap, stored.state.spent)
                  .text("reason", "threshold")
                  .money("threshold", policy::warn_threshold(stored.cap))
                  .money("warn_at", stored.cap.warn_ppm)
                  .build());
    }
    if (decision.cap_exceeded) {
      op.emit("credits.cap_warning", std::nullopt, op.account().balance,
              cap_data(stored.cap, stored.state.spent)
                  .text("reason", "cap_exceeded")
                  .money("threshold", stored.cap.cap)
                  .build());
    }
  }
  if (own_thresholds_) {
    emit_low_balance(op, *own_thresholds_, balance_before);
  } else {
    emit_low_balance(op, config_thresholds(config_), balance_before);
  }
}

Micros allowance_remaining_of(std::int64_t account_id, const pricing::Config* config, TimestampTz now) {
  const std::optional<PolicyRow> row = read_policy_row(account_id, true);
  if (!row || !row->plan || config == nullptr) return 0;
  return policy::allowance_remaining(policy::allowance_of(config->plan(*row->plan)), used_this_month(*row, now));
}

void refuse_team_account(bool team, std::string_view user_id) {
  if (team) throw Error(Errc::invalid_value, policy::json_string(user_id) + " is a team account: use charge_team");
}

void emit_cap_reached(Operation& op, const CapRefusal& refusal) {
  op.emit("credits.cap_reached", -refusal.attempted, op.account().balance,
          EventData()
              .text("period", policy::name_of(refusal.period))
              .text("model", refusal.model ? std::optional<std::string_view>(*refusal.model) : std::nullopt)
              .money("cap", refusal.cap)
              .money("spent", refusal.spent)
              .money("attempted", refusal.attempted)
              .text("error", "cap_reached")
              .build());
}

void check_low_balance(Operation& op, const pricing::Config* config, Micros balance_before) {
  if (config == nullptr || config->low_balance_thresholds().empty()) return;
  emit_low_balance(op, config_thresholds(config), balance_before);
}

void after_refund(Operation& op, bool flagged, const Uuid& original_id, Micros amount) {
  static SavedPlan original(
      "SELECT l.model, l.member_user_id FROM ducto.ledger AS l WHERE l.id OPERATOR(pg_catalog.=) $1",
      {UUIDOID});
  const text* model = nullptr;
  const text* member = nullptr;
  const bool found = pg_call([&]() noexcept {
    Datum values[] = {uuid_datum(original_id)};
    if (spi_run(original, values, nullptr, false, 1) != 1) return false;
    model = text_column(0, 1);
    member = text_column(0, 2);
    return true;
  });
  if (!found) return;
  const std::optional<std::string> model_name = copy_text(model);
  const std::optional<std::string> member_id = copy_text(member);
  const TimestampTz now = op.now();
  // Spend is net of the refunds made in the window (as the analytics count it), whenever the debit was.
  if (flagged) {
    for (const CapRow& row : read_caps(op.account().id, false)) {
      if (!policy::cap_applies(row.cap, model_name)) continue;
      const policy::Window window = current_window(row.cap.period, now);
      const policy::CapState state = policy::state_in_window(row.stored, unix_of(row.window_start), window);
      write_cap_state(row.id, timestamp_of(window.start), policy::after_refund(state, amount));
    }
  }
  if (member_id) {
    add_member_spend(op.account().id, *member_id, now, -amount);
  }
}

// ---- teams -------------------------------------------------------------------------------------------

std::optional<Membership> read_membership(std::int64_t team_id, std::string_view user_id, TimestampTz now) {
  static SavedPlan read(
      "SELECT m.spend_cap, s.month, s.spent FROM ducto.team_members AS m LEFT JOIN ducto.member_spend AS s "
      "ON s.team_id OPERATOR(pg_catalog.=) m.team_id AND s.user_id OPERATOR(pg_catalog.=) m.user_id "
      "WHERE m.team_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2",
      {INT8OID, TEXTOID});
  struct Raw {
    bool has_cap;
    Micros cap;
    bool has_month;
    TimestampTz month;
    Micros spent;
  } raw{};
  const bool found = pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(team_id), text_datum(user_id)};
    if (spi_run(read, values, nullptr, false, 1) != 1) return false;
    bool is_null = false;
    raw.cap = DatumGetInt64(spi_value(0, 1, &is_null));
    raw.has_cap = !is_null;
    raw.month = DatumGetTimestampTz(spi_value(0, 2, &is_null));
    raw.has_month = !is_null;
    raw.spent = DatumGetInt64(spi_value(0, 3, &is_null));
    return true;
  });
  if (!found) return std::nullopt;
  Membership membership;
  if (raw.has_cap) membership.spend_cap = raw.cap;
  const policy::Window month = current_window(policy::Period::monthly, now);
  if (raw.has_month && unix_of(raw.month) == month.start) membership.spent = raw.spent;
  return membership;
}

void add_member_spend(std::int64_t team_id, std::string_view user_id, TimestampTz now, Micros amount) {
  static SavedPlan add(
      "INSERT INTO ducto.member_spend AS s (team_id, user_id, month, spent) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (team_id, user_id) DO UPDATE SET "
      "spent = CASE WHEN s.month OPERATOR(pg_catalog.=) EXCLUDED.month "
      "THEN s.spent OPERATOR(pg_catalog.+) EXCLUDED.spent ELSE EXCLUDED.spent END, month = EXCLUDED.month",
      {INT8OID, TEXTOID, TIMESTAMPTZOID, INT8OID});
  const TimestampTz month = timestamp_of(current_window(policy::Period::monthly, now).start);
  pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(team_id), text_datum(user_id), TimestampTzGetDatum(month), Int64GetDatum(amount)};
    spi_run(add, values, nullptr, false, 0);
  });
}

// ---- SQL functions -----------------------------------------------------------------------------------

namespace {

// C zone. A jsonb from JSON text.
Datum jsonb_from_text(const char* json) noexcept { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json)); }

// get_user_plan's document.
std::string plan_document(const std::optional<std::string>& stored_plan, const pricing::Plan* plan, Micros used,
                          TimestampTz now) {
  const policy::Window month = policy::month_window(unix_of(now));
  const Micros allowance = policy::allowance_of(plan);
  const Micros shown_used = stored_plan ? used : 0;
  std::string features = "{";
  if (plan != nullptr) {
    for (const auto& [name, value] : plan->features) {
      if (features.size() > 1) features += ", ";
      features += policy::json_string(name) + ": " + value;
    }
  }
  features += "}";
  return "{\"plan\": " + (stored_plan ? policy::json_string(*stored_plan) : std::string("null")) +
         ", \"name\": " + (plan != nullptr ? policy::json_string(plan->name) : std::string("null")) +
         ", \"allowance\": " + ledger::format_micros(allowance) + ", \"used\": " + ledger::format_micros(shown_used) +
         ", \"remaining\": " + ledger::format_micros(policy::allowance_remaining(allowance, shown_used)) +
         ", \"window_start\": " + policy::json_string(policy::iso_utc(month.start)) +
         ", \"window_end\": " + policy::json_string(policy::iso_utc(month.end)) + ", \"features\": " + features + "}";
}

Datum jsonb_result(const std::string& json) {
  return pg_call([&]() noexcept { return jsonb_from_text(json.c_str()); });
}

// The stored plan of a user (no lock), with the allowance used this month.
struct UserPlan {
  std::optional<std::string> plan;
  Micros used = 0;
};
UserPlan read_user_plan(std::string_view user_id, TimestampTz now) {
  UserPlan result;
  if (const std::optional<Account> account = read_account(user_id)) {
    if (const std::optional<PolicyRow> row = read_policy_row(account->id, true)) {
      result.plan = row->plan;
      result.used = used_this_month(*row, now);
    }
  }
  return result;
}

const pricing::Plan* plan_in(const ActiveConfig& active, const std::optional<std::string>& plan) {
  return plan && active.config ? active.config->plan(*plan) : nullptr;
}

Datum set_user_plan(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const std::optional<std::string_view> plan_arg = text_arg(fcinfo, 1);
  const ActiveConfig active = active_config();
  if (plan_arg) {
    if (!active.config) throw Error(Errc::invalid_value, "no active pricing config: plans come from it");
    if (active.config->plan(*plan_arg) == nullptr) {
      throw Error(Errc::invalid_value, "unknown plan " + policy::json_string(*plan_arg) + " in the active pricing config");
    }
  }
  const std::optional<std::string> plan = plan_arg ? std::optional<std::string>(*plan_arg) : std::nullopt;
  static SavedPlan upsert(
      "INSERT INTO ducto.account_policies AS p (account_id, plan) VALUES ($1, $2) "
      "ON CONFLICT (account_id) DO UPDATE SET plan = EXCLUDED.plan",
      {INT8OID, TEXTOID});
  const TimestampTz now = clock_now();
  const Session session = open_session();
  const Account account = lock_or_create_account(user_id);
  const std::optional<PolicyRow> row = read_policy_row(account.id, false);
  const std::optional<std::string> previous = row ? row->plan : std::nullopt;
  const Micros used = row ? used_this_month(*row, now) : 0;
  if (previous != plan) {
    const Datum plan_datum = optional_text_datum(plan);
    pg_call([&]() noexcept {
      Datum values[] = {Int64GetDatum(account.id), plan_datum};
      const char nulls[] = {' ', plan ? ' ' : 'n', '\0'};
      spi_run(upsert, values, nulls, false, 0);
    });
    refresh_policy_flag(account.id);
    const auto view = [](const std::optional<std::string>& value) {
      return value ? std::optional<std::string_view>(*value) : std::nullopt;
    };
    emit_event("credits.plan_changed", user_id, now, std::nullopt, account.balance,
               EventData().text("plan", view(plan)).text("previous_plan", view(previous)).build());
  }
  close_session(session);
  return jsonb_result(plan_document(plan, plan_in(active, plan), used, now));
}

Datum get_user_plan(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const ActiveConfig active = active_config();
  const TimestampTz now = clock_now();
  const Session session = open_session();
  const UserPlan user = read_user_plan(user_id, now);
  close_session(session);
  return jsonb_result(plan_document(user.plan, plan_in(active, user.plan), user.used, now));
}

Datum check_feature(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const std::string_view feature = required_text_arg(fcinfo, 1, "feature");
  const ActiveConfig active = active_config();
  const TimestampTz now = clock_now();
  const Session session = open_session();
  const UserPlan user = read_user_plan(user_id, now);
  close_session(session);
  const std::optional<std::string_view> value = policy::feature_value(plan_in(active, user.plan), feature);
  if (!value) {
    fcinfo->isnull = true;
    return Datum(0);
  }
  return jsonb_result(std::string(*value));
}

// ---- spend caps --------------------------------------------------------------------------------------

policy::Period period_arg(FunctionCallInfo fcinfo, int n) {
  return policy::period_named(required_text_arg(fcinfo, n, "period"));
}

std::optional<std::string_view> model_arg(FunctionCallInfo fcinfo, int n) {
  const std::optional<std::string_view> model = text_arg(fcinfo, n);
  if (model) ledger::check_label(*model, "model");
  return model;
}

// The cap amount: a positive amount, with the message naming the argument.
Micros cap_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) throw Error(Errc::null_value, "cap must not be NULL");
  try {
    return amount_arg(fcinfo, n);
  } catch (const Error& error) {
    std::string message = error.what();
    if (message.rfind("amount", 0) == 0) message.replace(0, 6, "cap");
    throw Error(error.code(), message);
  }
}

// The smallest ledger id an entry created at or after `at` can have: ids are UUIDv7 whose millisecond
// prefix is the entry's created_at or later (analytics.cpp), and an account's chain runs in id order.
Uuid smallest_id_from(TimestampTz at) {
  constexpr std::int64_t kUnixEpochMs =
      static_cast<std::int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * (USECS_PER_DAY / 1000);
  const std::int64_t unix_ms = (at >= 0 ? at / 1000 : -((-at + 999) / 1000)) + kUnixEpochMs;
  return ledger::uuid_v7(static_cast<std::uint64_t>(unix_ms < 0 ? 0 : unix_ms), 0, 0);
}

// What the account's debits took in `window`, net of the refunds made in it; for a
// model cap, that model's charges and their refunds. Read once, when a cap is set: a walk back along
// the account's chain from its newest entry (through the primary key) while ids can still belong to
// entries created in the window.
Micros spent_in_window(const Account& account, const policy::Window& window,
                       const std::optional<std::string_view>& model) {
  static SavedPlan spent(
      "WITH RECURSIVE chain AS (SELECT l.id, l.prev_id, l.kind, l.amount, l.created_at, l.original_id, l.model "
      "FROM ducto.ledger AS l WHERE l.id OPERATOR(pg_catalog.=) $1 AND l.id OPERATOR(pg_catalog.>=) $5 "
      "UNION ALL SELECT l.id, l.prev_id, l.kind, l.amount, l.created_at, l.original_id, l.model "
      "FROM chain AS c JOIN ducto.ledger AS l ON l.id OPERATOR(pg_catalog.=) c.prev_id "
      "WHERE l.id OPERATOR(pg_catalog.>=) $5) "
      "SELECT COALESCE(pg_catalog.sum(l.amount), 0)::bigint FROM chain AS l "
      "LEFT JOIN ducto.ledger AS o ON o.id OPERATOR(pg_catalog.=) l.original_id "
      "WHERE l.kind OPERATOR(pg_catalog.=) ANY ('{charge,deduct,refund}'::pg_catalog.text[]) "
      "AND l.created_at OPERATOR(pg_catalog.>=) $2 AND l.created_at OPERATOR(pg_catalog.<) $3 "
      "AND ($4::pg_catalog.text IS NULL OR COALESCE(o.model, l.model) OPERATOR(pg_catalog.=) $4)",
      {UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, UUIDOID});
  if (!account.last_entry_id) return 0;
  const TimestampTz start = timestamp_of(window.start);
  const Uuid lowest = smallest_id_from(start);
  const Micros total = pg_call([&]() noexcept {
    Datum values[] = {uuid_datum(*account.last_entry_id), TimestampTzGetDatum(start),
                      TimestampTzGetDatum(timestamp_of(window.end)), model ? text_datum(*model) : Datum(0),
                      uuid_datum(lowest)};
    const char nulls[] = {' ', ' ', ' ', model ? ' ' : 'n', ' ', '\0'};
    spi_run(spent, values, nulls, false, 1);
    bool is_null = false;
    return DatumGetInt64(spi_value(0, 1, &is_null));
  });
  return -total;
}

Datum set_spend_cap(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  policy::Cap cap;
  cap.period = period_arg(fcinfo, 1);
  cap.cap = cap_arg(fcinfo, 2);
  cap.action = policy::cap_action_named(required_text_arg(fcinfo, 3, "action"));
  const std::optional<std::string_view> model = model_arg(fcinfo, 4);
  if (model) cap.model = std::string(*model);
  if (PG_ARGISNULL(5)) throw Error(Errc::null_value, "warn_at must not be NULL");
  cap.warn_ppm = policy::warn_at_ppm(to_decimal(PG_GETARG_NUMERIC(5)));
  static SavedPlan upsert(
      "INSERT INTO ducto.caps AS c (account_id, period, model, cap, action, warn_ppm, window_start, spent, warned, "
      "exceeded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
      "ON CONFLICT (account_id, period, model) DO UPDATE SET cap = EXCLUDED.cap, action = EXCLUDED.action, "
      "warn_ppm = EXCLUDED.warn_ppm, window_start = EXCLUDED.window_start, spent = EXCLUDED.spent, "
      "warned = EXCLUDED.warned, exceeded = EXCLUDED.exceeded",
      {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT8OID, BOOLOID, BOOLOID});
  const TimestampTz now = clock_now();
  const policy::Window window = current_window(cap.period, now);
  const Session session = open_session();
  const Account account = lock_or_create_account(user_id);
  const policy::CapState state = policy::state_for_new_cap(cap, spent_in_window(account, window, model));
  pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account.id),
                      text_datum(policy::name_of(cap.period)),
                      model ? text_datum(*model) : Datum(0),
                      Int64GetDatum(cap.cap),
                      text_datum(policy::name_of(cap.action)),
                      Int32GetDatum(cap.warn_ppm),
                      TimestampTzGetDatum(timestamp_of(window.start)),
                      Int64GetDatum(state.spent),
                      BoolGetDatum(state.warned),
                      BoolGetDatum(state.exceeded)};
    const char nulls[] = {' ', ' ', model ? ' ' : 'n', ' ', ' ', ' ', ' ', ' ', ' ', ' ', '\0'};
    spi_run(upsert, values, nulls, false, 0);
  });
  refresh_policy_flag(account.id);
  close_session(session);
  PG_RETURN_VOID();
}

Datum remove_spend_cap(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const policy::Period period = period_arg(fcinfo, 1);
  const std::optional<std::string_view> model = model_arg(fcinfo, 2);
  static SavedPlan remove(
      "DELETE FROM ducto.caps AS c WHERE c.account_id OPERATOR(pg_catalog.=) $1 "
      "AND c.period OPERATOR(pg_catalog.=) $2 AND c.model IS NOT DISTINCT FROM $3",
      {INT8OID, TEXTOID, TEXTOID});
  const Session session = open_session();
  bool removed = false;
  if (const std::optional<Account> account = lock_account(user_id)) {
    removed = pg_call([&]() noexcept {
      Datum values[] = {Int64GetDatum(account->id), text_datum(policy::name_of(period)),
                        model ? text_datum(*model) : Datum(0)};
      const char nulls[] = {' ', ' ', model ? ' ' : 'n', '\0'};
      return spi_run(remove, values, nulls, false, 0) > 0;
    });
    if (removed) refresh_policy_flag(account->id);
  }
  close_session(session);
  PG_RETURN_BOOL(removed);
}

Datum spend_caps(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const TimestampTz now = clock_now();
  pg_call([&]() noexcept { InitMaterializedSRF(fcinfo, 0); });
  std::vector<CapRow> caps;
  const Session session = open_session();
  if (const std::optional<Account> account = read_account(user_id)) caps = read_caps(account->id, true);
  close_session(session);
  for (const CapRow& row : caps) {
    const policy::Window window = current_window(row.cap.period, now);
    const policy::CapState state = policy::state_in_window(row.stored, unix_of(row.window_start), window);
    pg_call([&]() noexcept {
      auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
      Datum values[] = {text_datum(policy::name_of(row.cap.period)),
                        row.cap.model ? text_datum(*row.cap.model) : Datum(0),
                        money_datum(row.cap.cap),
                        text_datum(policy::name_of(row.cap.action)),
                        money_datum(row.cap.warn_ppm),
                        money_datum(state.spent),
                        TimestampTzGetDatum(timestamp_of(window.start)),
                        TimestampTzGetDatum(timestamp_of(window.end))};
      bool nulls[] = {false, !row.cap.model.has_value(), false, false, false, false, false, false};
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    });
  }
  return Datum(0);
}

// ---- low-balance thresholds --------------------------------------------------------------------------

// C zone. The elements of a numeric[] into `out` (nullptr for NULL elements).
void numeric_elements(ArrayType* array, std::vector<Numeric>* out) noexcept {
  Datum* elements = nullptr;
  bool* nulls = nullptr;
  int count = 0;
  deconstruct_array(array, NUMERICOID, -1, false, TYPALIGN_INT, &elements, &nulls, &count);
  out->resize(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) (*out)[static_cast<std::size_t>(i)] = nulls[i] ? nullptr : DatumGetNumeric(elements[i]);
}

std::optional<std::vector<Micros>> thresholds_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  ArrayType* array = pg_call([&]() noexcept { return PG_GETARG_ARRAYTYPE_P(n); });
  if (ARR_NDIM(array) > 1) throw Error(Errc::invalid_value, "thresholds must be a one-dimensional array");
  std::vector<Numeric> numbers;
  pg_call([&]() noexcept { numeric_elements(array, &numbers); });
  std::vector<Decimal> values;
  for (Numeric number : numbers) {
    if (number == nullptr) throw Error(Errc::null_value, "thresholds must not contain NULL");
    try {
      values.push_back(to_decimal(number));
    } catch (const Error&) {
      throw Error(Errc::invalid_value, "thresholds must be finite amounts");
    }
  }
  return policy::thresholds_micros(values);
}

Datum set_low_balance_thresholds(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const std::optional<std::vector<Micros>> thresholds = thresholds_arg(fcinfo, 1);
  static SavedPlan upsert(
      "INSERT INTO ducto.account_policies AS p (account_id, low_balance_thresholds) VALUES ($1, $2) "
      "ON CONFLICT (account_id) DO UPDATE SET low_balance_thresholds = EXCLUDED.low_balance_thresholds",
      {INT8OID, INT8ARRAYOID});
  const Session session = open_session();
  const Account account = lock_or_create_account(user_id);
  pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account.id), thresholds ? int8_array_datum(*thresholds) : Datum(0)};
    const char nulls[] = {' ', null_flag(thresholds.has_value()), '\0'};
    spi_run(upsert, values, nulls, false, 0);
  });
  refresh_policy_flag(account.id);
  close_session(session);
  PG_RETURN_VOID();
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_set_user_plan(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::set_user_plan(fcinfo); });
}
Datum ducto_get_user_plan(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::get_user_plan(fcinfo); });
}
Datum ducto_check_feature(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::check_feature(fcinfo); });
}
Datum ducto_set_spend_cap(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::set_spend_cap(fcinfo); });
}
Datum ducto_remove_spend_cap(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::remove_spend_cap(fcinfo); });
}
Datum ducto_spend_caps(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::spend_caps(fcinfo); });
}
Datum ducto_set_low_balance_thresholds(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::set_low_balance_thresholds(fcinfo); });
}
}
