// src/pg/events.cpp: the write side of the event outbox: one INSERT into ducto.events per event, in the
// caller's transaction and SPI session (see events.h).
#include "pg/events.h"

#include "pg/ledger_common.h"
#include "pg/notify.h"
#include "pg/spi_util.h"

extern "C" {
#include "utils/datetime.h"
}

namespace ducto::pg {

namespace {

constexpr const char* kEventColumns =
    "(event_id, type, user_id, amount, balance_after, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "RETURNING id";
constexpr Oid kEventTypes[] = {UUIDOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, JSONBOID, TIMESTAMPTZOID};

// An INSERT into the partitioned ducto.events sets up tuple routing on every execution. When the day
// partition of the event's UTC day exists (create_event_partitions: ducto.events_pYYYYMMDD, range
// exactly that day), the row goes straight into it. The relation is looked up on every call (a syscache
// hit), so a partition dropped or recreated since the plan was made is never used through a stale plan.
struct DayInsert {
  std::int64_t day = -1;  // days since 2000-01-01 UTC
  Oid relation = InvalidOid;
  SPIPlanPtr plan = nullptr;
};
DayInsert day_insert;

// C zone. The saved INSERT into the event's day partition, or nullptr when it has none.
SPIPlanPtr day_partition_plan(TimestampTz created_at) noexcept {
  const std::int64_t day = created_at >= 0 ? created_at / USECS_PER_DAY : (created_at + 1) / USECS_PER_DAY - 1;
  int year = 0, month = 0, mday = 0;
  j2date(static_cast<int>(day + POSTGRES_EPOCH_JDATE), &year, &month, &mday);
  char name[NAMEDATALEN];
  snprintf(name, sizeof name, "events_p%04d%02d%02d", year, month, mday);
  const Oid relation = get_relname_relid(name, ducto_namespace());
  if (day == day_insert.day && relation == day_insert.relation) return day_insert.plan;
  if (day_insert.plan != nullptr) SPI_freeplan(day_insert.plan);
  day_insert = DayInsert{day, relation, nullptr};
  if (!OidIsValid(relation)) return nullptr;
  const char* sql = psprintf("INSERT INTO ducto.%s %s", quote_identifier(name), kEventColumns);
  SPIPlanPtr plan = SPI_prepare(sql, 7, const_cast<Oid*>(kEventTypes));
  if (plan == nullptr || SPI_keepplan(plan) != 0) elog(ERROR, "could not prepare the event insert into %s", name);
  day_insert.plan = plan;
  return plan;
}

}  // namespace

std::int64_t write_event(const Event& event) noexcept {
  static SavedPlan insert(
      "INSERT INTO ducto.events (event_id, type, user_id, amount, balance_after, data, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
      {UUIDOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, JSONBOID, TIMESTAMPTZOID});
  if (!events_enabled()) return 0;  // ducto.write_events = off: the events benchmark's baseline only
  const TimestampTz created_at = event.created_at != 0 ? event.created_at : clock_now();
  Datum values[] = {uuid_datum(new_uuid(created_at)),
                    CStringGetTextDatum(event.type),
                    event.user_id.empty() ? Datum(0) : text_datum(event.user_id),
                    event.has_amount ? money_datum(event.amount_micros) : Datum(0),
                    event.has_balance_after ? money_datum(event.balance_after_micros) : Datum(0),
                    JsonbPGetDatum(event.data != nullptr ? event.data : empty_object()),
                    TimestampTzGetDatum(created_at)};
  const char nulls[] = {' ',
                        ' ',
                        event.user_id.empty() ? 'n' : ' ',
                        event.has_amount ? ' ' : 'n',
                        event.has_balance_after ? ' ' : 'n',
                        ' ',
                        ' ',
                        '\0'};
  if (SPIPlanPtr direct = day_partition_plan(created_at)) {
    if (SPI_execute_plan(direct, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING) {
      elog(ERROR, "could not write an event");
    }
  } else {
    spi_run(insert, values, nulls, false, 0);
  }
  bool is_null = false;
  const std::int64_t id = DatumGetInt64(spi_value(0, 1, &is_null));
  note_event_written(id, event.type);
  return id;
}

}  // namespace ducto::pg
