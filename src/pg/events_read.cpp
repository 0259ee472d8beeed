// src/pg/events_read.cpp: the read side of the event outbox (design.md, Events; issue 4): poll_events,
// ack_events, prune_events, the consumer listing and dropping, day partitions, and the retention settings.
//
// The read protocol. An id is not commit order (A takes id 9, B id 10, B commits, a reader passes 10,
// then A commits 9), so each event carries its writer's top-level xid8 and a reader only takes events
// whose xid is below its snapshot's xmin: their writers can no longer be running, so no event that
// commits later can sort before them. Cursors and delivery order are (xid, id). A poll remembers how far
// it delivered (delivered_*); ack_events moves the durable cursor (acked_*) up to a delivered event.
#include "pg/pg_headers.h"

extern "C" {
#include "access/transam.h"
#include "utils/guc.h"
#include "utils/xid8.h"
}

#include <cstdint>
#include <string>
#include <string_view>

#include "pg/bridge.h"
#include "pg/convert.h"
#include "pg/events_internal.h"
#include "pg/spi_util.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_poll_events);
PG_FUNCTION_INFO_V1(ducto_ack_events);
PG_FUNCTION_INFO_V1(ducto_prune_events);
PG_FUNCTION_INFO_V1(ducto_create_event_partitions);
PG_FUNCTION_INFO_V1(ducto_consumers);
PG_FUNCTION_INFO_V1(ducto_drop_consumer);
}

namespace ducto::pg {
namespace {

constexpr std::int32_t kMaxPollEvents = 10000;
constexpr std::int32_t kMaxDaysAhead = 60;
constexpr std::size_t kMaxConsumerLength = 255;
// How long partition DDL may wait for its lock (it queues every writer of ducto.events behind it).
constexpr const char* kDdlLockTimeout = "2s";

// Seconds; ducto.max_event_retention: after this, an event is pruned even if a consumer has not
// acknowledged it. ducto.event_retention: the `keep` of the worker's and run_maintenance's pruning.
int max_event_retention = 30 * 24 * 3600;
int event_retention = 7 * 24 * 3600;

// ---- arguments -------------------------------------------------------------------------------------

std::string_view consumer_arg(FunctionCallInfo fcinfo) {
  const std::string_view name = required_text_arg(fcinfo, 0, "consumer");
  if (name.empty() || name.size() > kMaxConsumerLength) {
    throw Error(Errc::invalid_value, "consumer must have 1 to 255 bytes");
  }
  for (const char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw Error(Errc::invalid_value, "consumer must not contain control characters");
    }
  }
  return name;
}

// A Datum of type text for the validated name (the argument itself, detoasted once).
Datum consumer_datum(std::string_view name) { return PointerGetDatum(make_text(name)); }

// ---- positions -------------------------------------------------------------------------------------

struct Position {
  Datum xid;  // xid8, by value
  std::int64_t id;
};

bool after(const Position& a, const Position& b) {
  const std::uint64_t ax = U64FromFullTransactionId(DatumGetFullTransactionId(a.xid));
  const std::uint64_t bx = U64FromFullTransactionId(DatumGetFullTransactionId(b.xid));
  return ax != bx ? ax > bx : a.id > b.id;
}

Position position_at(std::uint64_t row, int xid_column, int id_column) noexcept {
  bool is_null = false;
  const Datum xid = spi_value(row, xid_column, &is_null);
  return Position{xid, DatumGetInt64(spi_value(row, id_column, &is_null))};
}

// ---- poll_events -----------------------------------------------------------------------------------

// C zone. Fills the result set; returns nothing the caller needs.
void poll(FunctionCallInfo fcinfo, Datum consumer, std::int32_t max_events, Datum types, bool no_types) noexcept {
  static SavedPlan cursor("SELECT c.acked_xid, c.acked_id FROM ducto.event_consumers AS c WHERE c.consumer = $1",
                          {TEXTOID});
  // Both conditions on xid use the one snapshot of this statement: pg_current_snapshot() is the active
  // snapshot, the one the scan reads with.
  static SavedPlan events(
      "SELECT e.* FROM ducto.events AS e "
      "WHERE ROW(e.xid, e.id) > ROW($1, $2) "
      "AND e.xid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) "
      "AND ($4 IS NULL OR e.type = ANY ($4)) "
      "ORDER BY e.xid, e.id LIMIT $3",
      {XID8OID, INT8OID, INT4OID, TEXTARRAYOID});
  // A new consumer starts before every event kept; a known one only moves its delivered mark forward.
  static SavedPlan remember(
      "INSERT INTO ducto.event_consumers AS c (consumer, delivered_xid, delivered_id, delivered_at) "
      "VALUES ($1, $2, $3, pg_catalog.clock_timestamp()) "
      "ON CONFLICT (consumer) DO UPDATE SET delivered_xid = excluded.delivered_xid, "
      "delivered_id = excluded.delivered_id, delivered_at = excluded.delivered_at "
      "WHERE ROW(c.delivered_xid, c.delivered_id) < ROW(excluded.delivered_xid, excluded.delivered_id)",
      {TEXTOID, XID8OID, INT8OID});

  InitMaterializedSRF(fcinfo, 0);
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  const OwnerScope scope = enter_owner_scope(nullptr);

  Datum key[] = {consumer};
  const bool known = spi_run(cursor, key, nullptr, false, 1) == 1;
  Position from{FullTransactionIdGetDatum(FullTransactionIdFromU64(0)), 0};
  if (known) from = position_at(0, 1, 2);

  Datum args[] = {from.xid, Int64GetDatum(from.id), Int32GetDatum(max_events), types};
  const char nulls[] = {' ', ' ', ' ', no_types ? 'n' : ' ', '\0'};
  const std::uint64_t rows = spi_run(events, args, nulls, false, max_events);
  TupleDesc row_type = SPI_tuptable->tupdesc;
  const int columns = row_type->natts;
  Datum values[16];
  bool is_null[16];
  if (columns > 16) elog(ERROR, "ducto.events has %d columns, more than poll_events handles", columns);
  for (std::uint64_t row = 0; row < rows; ++row) {
    for (int column = 0; column < columns; ++column) values[column] = spi_value(row, column + 1, &is_null[column]);
    tuplestore_putvalues(result->setResult, result->setDesc, values, is_null);
  }
  if (rows > 0 || !known) {
    Position upto = from;
    if (rows > 0) upto = position_at(rows - 1, SPI_fnumber(row_type, "xid"), SPI_fnumber(row_type, "id"));
    Datum mark[] = {consumer, upto.xid, Int64GetDatum(upto.id)};
    spi_run(remember, mark, nullptr, false, 0);
  }
  leave_owner_scope(scope);
}

Datum poll_events(FunctionCallInfo fcinfo) {
  const std::string_view name = consumer_arg(fcinfo);
  if (PG_ARGISNULL(1)) throw Error(Errc::null_value, "max_events must not be NULL");
  const std::int32_t max_events = PG_GETARG_INT32(1);
  if (max_events < 1 || max_events > kMaxPollEvents) {
    throw Error(Errc::invalid_value, "max_events must be between 1 and " + std::to_string(kMaxPollEvents));
  }
  const bool no_types = PG_ARGISNULL(2);
  const Datum types = no_types ? Datum(0) : PG_GETARG_DATUM(2);
  const Datum consumer = consumer_datum(name);
  pg_call([&]() noexcept { poll(fcinfo, consumer, max_events, types, no_types); });
  return Datum(0);
}

// ---- ack_events ------------------------------------------------------------------------------------

// C zone. Raises 22023 for an unknown consumer, an unknown event, or one not delivered yet.
std::int64_t ack(Datum consumer, std::int64_t up_to) noexcept {
  static SavedPlan lock_consumer(
      "SELECT c.acked_xid, c.acked_id, c.delivered_xid, c.delivered_id FROM ducto.event_consumers AS c "
      "WHERE c.consumer = $1 FOR UPDATE",
      {TEXTOID});
  // An event being acknowledged lies between the consumer's acked and delivered positions, so the
  // (xid, id) index finds it by that xid range (the outbox has no index on id alone). Only when it is not
  // there does the second lookup (a scan: the error path) tell "not delivered yet" from "does not exist".
  static SavedPlan delivered_xid("SELECT e.xid FROM ducto.events AS e WHERE e.xid >= $2 AND e.xid <= $3 AND e.id = $1",
                                 {INT8OID, XID8OID, XID8OID});
  static SavedPlan event_xid("SELECT e.xid FROM ducto.events AS e WHERE e.id = $1", {INT8OID});
  static SavedPlan count_between(
      "SELECT count(*) FROM ducto.events AS e "
      "WHERE ROW(e.xid, e.id) > ROW($1, $2) AND ROW(e.xid, e.id) <= ROW($3, $4)",
      {XID8OID, INT8OID, XID8OID, INT8OID});
  static SavedPlan move_cursor(
      "UPDATE ducto.event_consumers AS c SET acked_xid = $2, acked_id = $3, "
      "acked_at = pg_catalog.clock_timestamp() WHERE c.consumer = $1",
      {TEXTOID, XID8OID, INT8OID});

  const char* consumer_name = TextDatumGetCString(consumer);
  const OwnerScope scope = enter_owner_scope(nullptr);
  Datum key[] = {consumer};
  if (spi_run(lock_consumer, key, nullptr, false, 1) == 0) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown consumer \"%s\"", consumer_name),
                    errhint("A consumer is created by its first ducto.poll_events.")));
  }
  const Position acked = position_at(0, 1, 2);
  const Position delivered = position_at(0, 3, 4);
  std::int64_t acknowledged = 0;
  if (up_to != acked.id) {
    Position target{delivered.xid, up_to};
    if (up_to != delivered.id) {
      Datum window[] = {Int64GetDatum(up_to), acked.xid, delivered.xid};
      Datum id[] = {Int64GetDatum(up_to)};
      if (spi_run(delivered_xid, window, nullptr, false, 1) == 0 &&
          spi_run(event_xid, id, nullptr, false, 1) == 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("event %lld does not exist", static_cast<long long>(up_to))));
      }
      bool is_null = false;
      target.xid = spi_value(0, 1, &is_null);
    }
    if (after(target, delivered)) {
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("event %lld was not delivered to consumer \"%s\"", static_cast<long long>(up_to),
                             consumer_name),
                      errdetail("The last event delivered to it is %lld.", static_cast<long long>(delivered.id))));
    }
    if (after(target, acked)) {
      Datum range[] = {acked.xid, Int64GetDatum(acked.id), target.xid, Int64GetDatum(target.id)};
      spi_run(count_between, range, nullptr, false, 1);
      bool is_null = false;
      acknowledged = DatumGetInt64(spi_value(0, 1, &is_null));
      Datum update[] = {consumer, target.xid, Int64GetDatum(target.id)};
      spi_run(move_cursor, update, nullptr, false, 0);
    }
  }
  leave_owner_scope(scope);
  return acknowledged;
}

Datum ack_events(FunctionCallInfo fcinfo) {
  const std::string_view name = consumer_arg(fcinfo);
  if (PG_ARGISNULL(1)) throw Error(Errc::null_value, "up_to must not be NULL");
  const std::int64_t up_to = PG_GETARG_INT64(1);
  const Datum consumer = consumer_datum(name);
  return Int64GetDatum(pg_call([&]() noexcept { return ack(consumer, up_to); }));
}

// ---- partitions ------------------------------------------------------------------------------------

// C zone. Returns the number of day partitions created.
std::int32_t create_partitions(std::int32_t days_ahead) noexcept {
  // Days (UTC) without a partition whose range the default partition does not touch (a new partition
  // cannot take over rows the default one holds).
  static SavedPlan missing_days(
      "SELECT 'events_p' || to_char(d.day, 'YYYYMMDD'), "
      "       to_char(d.day, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(d.day + 1, 'YYYY-MM-DD') || ' 00:00:00+00' "
      "FROM generate_series(0, $1) AS g(n), "
      "     LATERAL (SELECT (clock_timestamp() AT TIME ZONE 'UTC')::date + g.n AS day) AS d "
      "WHERE to_regclass('ducto.events_p' || to_char(d.day, 'YYYYMMDD')) IS NULL "
      "AND NOT EXISTS (SELECT 1 FROM ducto.events_default AS e "
      "                WHERE e.created_at >= (d.day::timestamp AT TIME ZONE 'UTC') "
      "                AND e.created_at < ((d.day + 1)::timestamp AT TIME ZONE 'UTC')) "
      "ORDER BY d.day",
      {INT4OID});
  const OwnerScope scope = enter_owner_scope(kDdlLockTimeout);
  Datum args[] = {Int32GetDatum(days_ahead)};
  const std::uint64_t days = spi_run(missing_days, args, nullptr, false, 0);
  SPITupleTable* table = SPI_tuptable;
  for (std::uint64_t day = 0; day < days; ++day) {
    const char* name = SPI_getvalue(table->vals[day], table->tupdesc, 1);
    const char* from = SPI_getvalue(table->vals[day], table->tupdesc, 2);
    const char* to = SPI_getvalue(table->vals[day], table->tupdesc, 3);
    const char* ddl = psprintf("CREATE TABLE ducto.%s PARTITION OF ducto.events FOR VALUES FROM (%s) TO (%s)",
                               quote_identifier(name), quote_literal_cstr(from), quote_literal_cstr(to));
    if (SPI_execute(ddl, false, 0) != SPI_OK_UTILITY) elog(ERROR, "could not create partition %s", name);
  }
  leave_owner_scope(scope);
  return static_cast<std::int32_t>(days);
}

Datum create_event_partitions(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(Errc::null_value, "days_ahead must not be NULL");
  const std::int32_t days_ahead = PG_GETARG_INT32(0);
  if (days_ahead < 0 || days_ahead > kMaxDaysAhead) {
    throw Error(Errc::invalid_value, "days_ahead must be between 0 and " + std::to_string(kMaxDaysAhead));
  }
  return Int32GetDatum(pg_call([&]() noexcept { return create_partitions(days_ahead); }));
}

// ---- prune_events ----------------------------------------------------------------------------------

// C zone. An event goes when it is older than `keep` and either every consumer acknowledged it or it is
// older than ducto.max_event_retention. Day partitions go whole, once their whole day qualifies; the
// default partition row by row.
std::int64_t prune(Interval* keep) noexcept {
  // The slowest consumer's cursor; with no consumer, a position after every event.
  static SavedPlan horizon(
      "SELECT $1 - $2, $1 - make_interval(secs => $3), "
      "       coalesce(s.acked_xid, '18446744073709551615'::xid8), "
      "       coalesce(s.acked_id, 9223372036854775807) "
      "FROM (SELECT 1) AS one LEFT JOIN (SELECT c.acked_xid, c.acked_id FROM ducto.event_consumers AS c "
      "                                  ORDER BY c.acked_xid, c.acked_id LIMIT 1) AS s ON true",
      {TIMESTAMPTZOID, INTERVALOID, INT4OID});
  // Day partitions whose day ended before the cutoff, and whether their day also ended before the hard
  // (max retention) cutoff.
  static SavedPlan old_partitions(
      "SELECT c.relname, ((p.day + 1)::timestamp AT TIME ZONE 'UTC') <= $2 "
      "FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid, "
      "     LATERAL (SELECT to_date(substr(c.relname, 9), 'YYYYMMDD') AS day) AS p "
      "WHERE i.inhparent = 'ducto.events'::regclass AND c.relname ~ '^events_p[0-9]{8}$' "
      "AND ((p.day + 1)::timestamp AT TIME ZONE 'UTC') <= $1 ORDER BY c.relname",
      {TIMESTAMPTZOID, TIMESTAMPTZOID});
  static SavedPlan prune_default(
      "DELETE FROM ducto.events_default AS e WHERE e.created_at < $1 "
      "AND (e.created_at < $2 OR ROW(e.xid, e.id) <= ROW($3, $4))",
      {TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID, INT8OID});

  const OwnerScope scope = enter_owner_scope(kDdlLockTimeout);
  Datum args[] = {TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), IntervalPGetDatum(keep),
                  Int32GetDatum(max_event_retention)};
  // now() (the transaction start), not the clock: one cutoff for the whole transaction.
  spi_run(horizon, args, nullptr, false, 1);
  bool is_null = false;
  Datum limits[] = {spi_value(0, 1, &is_null), spi_value(0, 2, &is_null), spi_value(0, 3, &is_null),
                    spi_value(0, 4, &is_null)};

  std::int64_t removed = 0;
  const std::uint64_t candidates = spi_run(old_partitions, limits, nullptr, false, 0);
  SPITupleTable* table = SPI_tuptable;
  for (std::uint64_t row = 0; row < candidates; ++row) {
    const char* name = quote_identifier(SPI_getvalue(table->vals[row], table->tupdesc, 1));
    const bool expired = DatumGetBool(SPI_getbinval(table->vals[row], table->tupdesc, 2, &is_null));
    Oid types[] = {XID8OID, INT8OID};
    Datum cursor[] = {limits[2], limits[3]};
    if (!expired) {
      const char* unacknowledged =
          psprintf("SELECT 1 FROM ducto.%s AS e WHERE ROW(e.xid, e.id) > ROW($1, $2) LIMIT 1", name);
      if (SPI_execute_with_args(unacknowledged, 2, types, cursor, nullptr, true, 1) != SPI_OK_SELECT) {
        elog(ERROR, "could not read partition %s", name);
      }
      if (SPI_processed > 0) continue;
    }
    if (SPI_execute(psprintf("SELECT count(*) FROM ducto.%s", name), true, 1) != SPI_OK_SELECT) {
      elog(ERROR, "could not count partition %s", name);
    }
    removed += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
    if (SPI_execute(psprintf("DROP TABLE ducto.%s", name), false, 0) != SPI_OK_UTILITY) {
      elog(ERROR, "could not drop partition %s", name);
    }
  }
  removed += static_cast<std::int64_t>(spi_run(prune_default, limits, nullptr, false, 0));
  leave_owner_scope(scope);
  return removed;
}

Datum prune_events(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(Errc::null_value, "keep must not be NULL");
  Interval* keep = PG_GETARG_INTERVAL_P(0);
  if (keep->month < 0 || keep->day < 0 || keep->time < 0) {
    throw Error(Errc::invalid_value, "keep must not be negative");
  }
  return Int64GetDatum(pg_call([&]() noexcept { return prune(keep); }));
}

// ---- consumers / drop_consumer ---------------------------------------------------------------------

Datum consumers(FunctionCallInfo fcinfo) {
  static SavedPlan listing("SELECT * FROM ducto.consumer_lag AS l ORDER BY l.consumer", {});
  pg_call([&]() noexcept {
    InitMaterializedSRF(fcinfo, 0);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const OwnerScope scope = enter_owner_scope(nullptr);
    const std::uint64_t rows = spi_run(listing, nullptr, nullptr, true, 0);
    const int columns = result->setDesc->natts;
    Datum values[16];
    bool nulls[16];
    for (std::uint64_t row = 0; row < rows; ++row) {
      for (int column = 0; column < columns && column < 16; ++column) {
        values[column] = spi_value(row, column + 1, &nulls[column]);
      }
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    }
    leave_owner_scope(scope);
  });
  return Datum(0);
}

Datum drop_consumer(FunctionCallInfo fcinfo) {
  static SavedPlan forget("DELETE FROM ducto.event_consumers AS c WHERE c.consumer = $1", {TEXTOID});
  const Datum consumer = consumer_datum(consumer_arg(fcinfo));
  const bool dropped = pg_call([&]() noexcept {
    const OwnerScope scope = enter_owner_scope(nullptr);
    Datum key[] = {consumer};
    const bool found = spi_run(forget, key, nullptr, false, 0) == 1;
    leave_owner_scope(scope);
    return found;
  });
  return BoolGetDatum(dropped);
}

void set_local(const char* name, const char* value) noexcept {
  set_config_option(name, value, superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                    false);
}

}  // namespace

OwnerScope enter_owner_scope(const char* lock_timeout) noexcept {
  OwnerScope scope{};
  // As a function's SET clause: the settings end with this call (AtEOXact_GUC), or with the abort.
  scope.guc_level = NewGUCNestLevel();
  set_local("search_path", "pg_catalog, pg_temp");
  if (lock_timeout != nullptr) set_local("lock_timeout", lock_timeout);
  scope.security = become_extension_owner();
  spi_connect();
  return scope;
}

void leave_owner_scope(OwnerScope scope) noexcept {
  spi_finish();
  restore_security(scope.security);
  AtEOXact_GUC(true, scope.guc_level);
}

void register_event_settings() noexcept {
  DefineCustomIntVariable("ducto.max_event_retention",
                          "Age after which prune_events removes events even if a consumer has not acknowledged them.",
                          "A consumer that lags more than this loses those events.", &max_event_retention,
                          30 * 24 * 3600, 3600, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("ducto.event_retention",
                          "How long the background worker and run_maintenance keep acknowledged events.", nullptr,
                          &event_retention, 7 * 24 * 3600, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr,
                          nullptr);
}

}  // namespace ducto::pg

extern "C" {
Datum ducto_poll_events(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::poll_events(fcinfo); });
}
Datum ducto_ack_events(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::ack_events(fcinfo); });
}
Datum ducto_prune_events(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::prune_events(fcinfo); });
}
Datum ducto_create_event_partitions(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::create_event_partitions(fcinfo); });
}
Datum ducto_consumers(PG_FUNCTION_ARGS) { return ducto::pg::guarded([&] { return ducto::pg::consumers(fcinfo); }); }
Datum ducto_drop_consumer(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::drop_consumer(fcinfo); });
}
}
