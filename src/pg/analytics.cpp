// src/pg/analytics.cpp: spend reports over the ledger (issue 5, Analytics): ducto.spend_by_user,
// ducto.spend_by_model, ducto.top_users, ducto.daily_spend and ducto.aggregate_stats.
//
// Each report is one SQL statement, run as the extension owner (PUBLIC cannot read the ledger; a role
// granted EXECUTE needs nothing else) with search_path pinned to pg_catalog and JIT off, and planned for
// its actual window on every call: a generic plan would pick one access path for a day and a year alike.
//
// Windows are half-open ranges of created_at, found through the primary key: ledger ids are UUIDv7
// whose millisecond prefix is the entry's created_at or, when the entry waited for its account's lock
// while a later call committed first, that later time. So every entry created at or after `from` has
// an id at or above uuid7(from), and every entry created before `to` one below uuid7(to + kIdSlack)
// unless it waited more than kIdSlack for its lock. created_at itself decides membership; the id range
// only narrows the scan, which spares the hot path the cost of an index on created_at.
#include "pg/pg_headers.h"

extern "C" {
#include "utils/guc.h"
#include "utils/timestamp.h"
}

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "core/ledger/uuid.h"
#include "pg/bridge.h"
#include "pg/ledger_common.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_spend_by_user);
PG_FUNCTION_INFO_V1(ducto_spend_by_model);
PG_FUNCTION_INFO_V1(ducto_top_users);
PG_FUNCTION_INFO_V1(ducto_daily_spend);
PG_FUNCTION_INFO_V1(ducto_aggregate_stats);
}

namespace ducto::pg {
namespace {

constexpr std::int64_t kIdSlackMs = 3'600'000;  // one hour
constexpr std::int32_t kMaxTopUsers = 10'000;

// ---- the statements ----------------------------------------------------------------------------------
// Parameters: $1 from_ts, $2 to_ts, $3 and $4 the id range, $5 top_users' max_rows. Amounts are summed
// in micro-credits and scaled once: numeric(sum) * 0.000001 has exactly 6 places.

constexpr std::string_view kWindow = "l.id >= $3 AND l.id < $4 AND l.created_at >= $1 AND l.created_at < $2 ";
constexpr std::string_view kSpendKinds = "AND l.kind IN ('charge', 'deduct', 'refund') ";
constexpr std::string_view kSpendSums =
    "COALESCE(sum(-l.amount) FILTER (WHERE l.kind <> 'refund'), 0) AS debited, "
    "COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'refund'), 0) AS refunded, "
    "count(*) FILTER (WHERE l.kind = 'charge') AS charges, "
    "count(*) FILTER (WHERE l.kind = 'deduct') AS deductions, "
    "count(*) FILTER (WHERE l.kind = 'refund') AS refunds ";
constexpr std::string_view kSpendColumns =
    "(s.debited - s.refunded) * 0.000001, s.debited * 0.000001, s.refunded * 0.000001, "
    "s.charges, s.deductions, s.refunds ";

std::string concat(std::initializer_list<std::string_view> parts) {
  std::string text;
  for (const std::string_view part : parts) text += part;
  return text;
}

std::string spend_per_account(std::string_view order) {
  return concat({"SELECT a.user_id, ", kSpendColumns, "FROM (SELECT l.account_id, ", kSpendSums,
                 "FROM ducto.ledger AS l WHERE ", kWindow, kSpendKinds, "GROUP BY l.account_id) AS s ",
                 "JOIN ducto.accounts AS a ON a.id = s.account_id ", order});
}

std::string spend_by_user_sql() { return spend_per_account("ORDER BY a.user_id"); }

std::string top_users_sql() { return spend_per_account("ORDER BY s.debited - s.refunded DESC, a.user_id LIMIT $5"); }

// A refund counts for the model of the debit it refunds: one primary-key probe per refund. Debits and
// refunds are two scans of the window: one scan grouping by a per-row subquery made the planner sort
// every row of the window (three times slower on a month of a million rows).
std::string spend_by_model_sql() {
  return concat({"SELECT s.model, ", kSpendColumns,
                 "FROM (SELECT u.model, sum(u.debited) AS debited, sum(u.refunded) AS refunded, "
                 "sum(u.charges)::bigint AS charges, sum(u.deductions)::bigint AS deductions, "
                 "sum(u.refunds)::bigint AS refunds "
                 "FROM (SELECT l.model, sum(-l.amount) AS debited, 0 AS refunded, "
                 "count(*) FILTER (WHERE l.kind = 'charge') AS charges, "
                 "count(*) FILTER (WHERE l.kind = 'deduct') AS deductions, 0 AS refunds "
                 "FROM ducto.ledger AS l WHERE ",
                 kWindow, "AND l.kind IN ('charge', 'deduct') GROUP BY l.model ",
                 "UNION ALL "
                 "SELECT (SELECT o.model FROM ducto.ledger AS o WHERE o.id = l.original_id), 0, sum(l.amount), "
                 "0, 0, count(*) FROM ducto.ledger AS l WHERE ",
                 kWindow, "AND l.kind = 'refund' GROUP BY 1) AS u GROUP BY u.model) AS s ",
                 "ORDER BY s.model NULLS LAST"});
}

std::string daily_spend_sql() {
  return concat({"SELECT s.day, ", kSpendColumns,
                 "FROM (SELECT (l.created_at AT TIME ZONE 'UTC')::date AS day, ", kSpendSums,
                 "FROM ducto.ledger AS l WHERE ", kWindow, kSpendKinds, "GROUP BY 1) AS s ORDER BY s.day"});
}

// Distinct users and models come from a first grouping by (account, model), a few groups per user:
// count(DISTINCT) over the window's rows sorted every row (twice as slow).
std::string aggregate_stats_sql() {
  return concat(
      {"SELECT (s.debited - s.refunded) * 0.000001, s.debited * 0.000001, s.refunded * 0.000001, "
       "s.charges::bigint, s.deductions::bigint, s.refunds::bigint, s.active_users, s.models, "
       "s.added * 0.000001, s.expired * 0.000001 "
       "FROM (SELECT COALESCE(sum(p.debited), 0) AS debited, COALESCE(sum(p.refunded), 0) AS refunded, "
       "COALESCE(sum(p.charges), 0) AS charges, COALESCE(sum(p.deductions), 0) AS deductions, "
       "COALESCE(sum(p.refunds), 0) AS refunds, "
       "count(DISTINCT p.account_id) FILTER (WHERE p.charges + p.deductions > 0) AS active_users, "
       "count(DISTINCT p.model) FILTER (WHERE p.charges > 0) AS models, "
       "COALESCE(sum(p.added), 0) AS added, COALESCE(sum(p.expired), 0) AS expired "
       "FROM (SELECT l.account_id, l.model, "
       "COALESCE(sum(-l.amount) FILTER (WHERE l.kind IN ('charge', 'deduct')), 0) AS debited, "
       "COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'refund'), 0) AS refunded, "
       "count(*) FILTER (WHERE l.kind = 'charge') AS charges, "
       "count(*) FILTER (WHERE l.kind = 'deduct') AS deductions, "
       "count(*) FILTER (WHERE l.kind = 'refund') AS refunds, "
       "COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'grant'), 0) AS added, "
       "COALESCE(sum(-l.amount) FILTER (WHERE l.kind = 'expiry'), 0) AS expired "
       "FROM ducto.ledger AS l WHERE ",
       kWindow, "GROUP BY l.account_id, l.model) AS p) AS s"});
}

// ---- windows -----------------------------------------------------------------------------------------

struct Window {
  TimestampTz from = 0;
  TimestampTz to = 0;
  Uuid first_id{};  // inclusive
  Uuid end_id{};    // exclusive
};

// The smallest UUIDv7 of a Unix millisecond, clamped to the 48 bits a UUIDv7 has.
Uuid smallest_id_of(std::int64_t unix_ms) {
  constexpr std::int64_t kMaxMs = (std::int64_t{1} << 48) - 1;
  if (unix_ms > kMaxMs) {
    Uuid all_ones;
    all_ones.fill(0xff);  // above every UUIDv7 (their version nibble is 7)
    return all_ones;
  }
  return ledger::uuid_v7(static_cast<std::uint64_t>(unix_ms < 0 ? 0 : unix_ms), 0, 0);
}

// Unix milliseconds of a finite timestamp, rounded down (milliseconds first: the latest timestamps
// would overflow in microseconds since 1970).
std::int64_t unix_ms_of(TimestampTz at) {
  constexpr std::int64_t kUnixEpochMs =
      static_cast<std::int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * (USECS_PER_DAY / 1000);
  const std::int64_t ms = at >= 0 ? at / 1000 : -((-at + 999) / 1000);
  return ms + kUnixEpochMs;
}

TimestampTz timestamp_arg(FunctionCallInfo fcinfo, int n, std::string_view name) {
  if (PG_ARGISNULL(n)) throw Error(Errc::null_value, std::string(name) + " must not be NULL");
  return PG_GETARG_TIMESTAMPTZ(n);
}

Window window_args(FunctionCallInfo fcinfo, int first) {
  Window window;
  window.from = timestamp_arg(fcinfo, first, "from_ts");
  window.to = timestamp_arg(fcinfo, first + 1, "to_ts");
  if (window.from >= window.to) throw Error(Errc::invalid_value, "from_ts must be earlier than to_ts");
  window.first_id = TIMESTAMP_IS_NOBEGIN(window.from) ? Uuid{} : smallest_id_of(unix_ms_of(window.from));
  // Entries created before `to` have ids of its millisecond or earlier, plus their lock wait.
  window.end_id = TIMESTAMP_IS_NOEND(window.to) ? smallest_id_of(INT64_MAX)
                                                : smallest_id_of(unix_ms_of(window.to) + 1 + kIdSlackMs);
  return window;
}

// ---- running a report --------------------------------------------------------------------------------

// C zone. Runs `sql` as the extension owner with search_path pinned and puts its rows, whose columns
// must have the function's result types, into the function's tuplestore.
void run_report(FunctionCallInfo fcinfo, const char* sql, const Window& window, std::int64_t max_rows) noexcept {
  InitMaterializedSRF(fcinfo, 0);
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  // As a function's SET clause: the setting ends with this call (AtEOXact_GUC), or with the abort.
  const int guc_level = NewGUCNestLevel();
  set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                    false);
  // Compiling these scans costs more than it saves: JIT added about 130 ms to a 300 ms report over a
  // month of a million rows.
  set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
  const SecurityState security = become_extension_owner();
  spi_connect();
  Oid types[] = {TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID, UUIDOID, INT8OID};
  Datum values[] = {TimestampTzGetDatum(window.from), TimestampTzGetDatum(window.to), uuid_datum(window.first_id),
                    uuid_datum(window.end_id), Int64GetDatum(max_rows)};
  // A custom plan for this very window, every call.
  const int status = SPI_execute_with_args(sql, 5, types, values, nullptr, true, 0);
  if (status != SPI_OK_SELECT) elog(ERROR, "ducto: analytics statement failed: %s", SPI_result_code_string(status));
  const TupleDesc produced = SPI_tuptable->tupdesc;
  bool compatible = produced->natts == result->setDesc->natts;
  for (int column = 0; compatible && column < produced->natts; ++column) {
    compatible = TupleDescAttr(produced, column)->atttypid == TupleDescAttr(result->setDesc, column)->atttypid;
  }
  if (!compatible) elog(ERROR, "ducto: analytics statement does not match the function's result type");
  for (std::uint64_t row = 0; row < SPI_processed; ++row) {
    tuplestore_puttuple(result->setResult, SPI_tuptable->vals[row]);
  }
  spi_finish();
  restore_security(security);
  AtEOXact_GUC(true, guc_level);
}

Datum report(FunctionCallInfo fcinfo, const std::string& sql, const Window& window, std::int64_t max_rows = 0) {
  pg_call([&]() noexcept { run_report(fcinfo, sql.c_str(), window, max_rows); });
  return Datum(0);
}

Datum top_users(FunctionCallInfo fcinfo) {
  const std::int32_t max_rows = int32_arg(fcinfo, 0, "max_rows");
  if (max_rows < 1 || max_rows > kMaxTopUsers) {
    throw Error(Errc::invalid_value, "max_rows must be between 1 and " + std::to_string(kMaxTopUsers));
  }
  return report(fcinfo, top_users_sql(), window_args(fcinfo, 1), max_rows);
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_spend_by_user(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded(
      [&] { return ducto::pg::report(fcinfo, ducto::pg::spend_by_user_sql(), ducto::pg::window_args(fcinfo, 0)); });
}
Datum ducto_spend_by_model(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded(
      [&] { return ducto::pg::report(fcinfo, ducto::pg::spend_by_model_sql(), ducto::pg::window_args(fcinfo, 0)); });
}
Datum ducto_top_users(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::top_users(fcinfo); });
}
Datum ducto_daily_spend(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded(
      [&] { return ducto::pg::report(fcinfo, ducto::pg::daily_spend_sql(), ducto::pg::window_args(fcinfo, 0)); });
}
Datum ducto_aggregate_stats(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded(
      [&] { return ducto::pg::report(fcinfo, ducto::pg::aggregate_stats_sql(), ducto::pg::window_args(fcinfo, 0)); });
}
}
