// src/pg/events.cpp: the write side of the event outbox: one row in ducto.events per event, in the
// caller's transaction and SPI session (see events.h).
#include "pg/events.h"

#include "pg/ledger_common.h"
#include "pg/notify.h"
#include "pg/direct_rows.h"
#include "pg/spi_util.h"

extern "C" {
#include "commands/sequence.h"
#include "utils/datetime.h"
#include "utils/xid8.h"
}

namespace ducto::pg {

namespace {

// An INSERT into the partitioned ducto.events sets up tuple routing on every execution. When the day
// partition of the event's UTC day exists (create_event_partitions: ducto.events_pYYYYMMDD, range
// exactly that day), the row goes straight into it, written without a statement (direct_rows.h); the
// partition's own constraint still checks the day. The partition is looked up on every call (a syscache
// hit), so one dropped or recreated meanwhile is never written through a stale oid.

// C zone. The day partition of `created_at`, or InvalidOid when it has none.
Oid day_partition(TimestampTz created_at) noexcept {
  const std::int64_t day = created_at >= 0 ? created_at / USECS_PER_DAY : (created_at + 1) / USECS_PER_DAY - 1;
  int year = 0, month = 0, mday = 0;
  j2date(static_cast<int>(day + POSTGRES_EPOCH_JDATE), &year, &month, &mday);
  char name[NAMEDATALEN];
  snprintf(name, sizeof name, "events_p%04d%02d%02d", year, month, mday);
  return get_relname_relid(name, ducto_namespace());
}

// C zone. Writes the event into its day partition; returns its id.
std::int64_t insert_into_partition(Oid partition, const Datum* values, const bool* nulls) noexcept {
  static RowColumns columns{"id",   "event_id",   "type", "user_id", "amount", "balance_after",
                            "data", "created_at", "xid"};
  const std::int64_t id = nextval_internal(ducto_relation("events_id_seq"), false);
  Datum row[9] = {Int64GetDatum(id)};
  bool row_nulls[9] = {false};
  for (int i = 0; i < 7; ++i) {
    row[i + 1] = values[i];
    row_nulls[i + 1] = nulls[i];
  }
  row[8] = FullTransactionIdGetDatum(GetTopFullTransactionId());
  row_nulls[8] = false;
  insert_row(partition, columns, row, row_nulls);
  return id;
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
  const bool nulls[] = {false, false, event.user_id.empty(), !event.has_amount, !event.has_balance_after, false, false};
  std::int64_t id = 0;
  if (const Oid partition = day_partition(created_at); OidIsValid(partition)) {
    id = insert_into_partition(partition, values, nulls);
  } else {
    char spi_nulls[8] = {};
    for (int i = 0; i < 7; ++i) spi_nulls[i] = nulls[i] ? 'n' : ' ';
    spi_run(insert, values, spi_nulls, false, 0);
    bool is_null = false;
    id = DatumGetInt64(spi_value(0, 1, &is_null));
  }
  note_event_written(id, event.type);
  return id;
}

}  // namespace ducto::pg
