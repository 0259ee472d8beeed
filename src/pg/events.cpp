// src/pg/events.cpp: the write side of the event outbox: one INSERT into ducto.events per event, in the
// caller's transaction and SPI session (see events.h).
#include "pg/events.h"

#include "pg/ledger_common.h"
#include "pg/notify.h"
#include "pg/spi_util.h"

namespace ducto::pg {

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
  spi_run(insert, values, nulls, false, 0);
  bool is_null = false;
  const std::int64_t id = DatumGetInt64(spi_value(0, 1, &is_null));
  note_event_written(id, event.type);
  return id;
}

}  // namespace ducto::pg
