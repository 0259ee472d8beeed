// src/pg/notify.cpp: the wake-ups of event listeners (see notify.h): the ducto.notify settings, the
// per-transaction pending NOTIFY kept across subtransactions, the pre-commit callback that sends it,
// and ducto.relay_events, the worker mode's relay.
//
// The pending state is plain static data (no C++ object): Postgres callbacks read and reset it, and a
// transaction or subtransaction abort must be able to restore it without allocating.
#include "pg/notify.h"

extern "C" {
#include "commands/async.h"
#include "utils/guc.h"
}

#include <cstdio>
#include <cstring>

#include "pg/bridge.h"
#include "pg/events_internal.h"
#include "pg/spi_util.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_relay_events);
}

namespace ducto::pg {
namespace {

// ---- settings --------------------------------------------------------------------------------------

enum NotifyMode : int { kNotifyTransaction, kNotifyWorker, kNotifyOff };

const struct config_enum_entry kNotifyModes[] = {
    {"transaction", kNotifyTransaction, false},
    {"worker", kNotifyWorker, false},
    {"off", kNotifyOff, false},
    {nullptr, 0, false},
};

int notify_mode = kNotifyTransaction;
bool write_events_setting = true;
char* channel_setting = nullptr;

// A channel Async_Notify accepts: checked when the setting changes, because a failure at pre-commit
// would abort the committing transaction.
bool check_channel(char** value, void**, GucSource) {
  const std::size_t length = *value == nullptr ? 0 : std::strlen(*value);
  if (length == 0 || length >= NAMEDATALEN) {
    GUC_check_errdetail("ducto.notify_channel must have 1 to %d bytes.", NAMEDATALEN - 1);
    return false;
  }
  return true;
}

// ---- the pending NOTIFY of the current transaction ---------------------------------------------------

// Types listed in the payload; more distinct types (or a type with characters JSON would need escaped)
// and the payload leaves "types" out, which listeners read as "any type".
constexpr int kMaxTypes = 8;
constexpr std::size_t kMaxTypeLength = 48;

struct Pending {
  std::int64_t first = 0;
  std::int64_t last = 0;
  std::int64_t count = 0;
  int type_count = 0;
  bool types_incomplete = false;
  char types[kMaxTypes][kMaxTypeLength] = {};
};

// The pending state as it was before the first event of each open subtransaction level that wrote one,
// so that its abort can restore it. Deeper than kMaxSaved levels, an aborted subtransaction's events stay
// counted: the NOTIFY is then a spurious hint, which listeners tolerate (they poll the outbox).
struct Saved {
  int level;
  Pending before;
};
constexpr int kMaxSaved = 16;

Pending pending;
Saved saved[kMaxSaved];
int saved_count = 0;

void reset_pending() noexcept {
  pending.count = 0;
  pending.type_count = 0;
  pending.types_incomplete = false;
  saved_count = 0;
}

bool listable_type(const char* type) noexcept {
  const std::size_t length = std::strlen(type);
  if (length == 0 || length >= kMaxTypeLength) return false;
  for (std::size_t i = 0; i < length; ++i) {
    const char c = type[i];
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '_' || c == '-' || c == ':';
    if (!plain) return false;
  }
  return true;
}

void remember_type(const char* type) noexcept {
  if (pending.types_incomplete) return;
  for (int i = 0; i < pending.type_count; ++i) {
    if (std::strcmp(pending.types[i], type) == 0) return;
  }
  if (pending.type_count == kMaxTypes || !listable_type(type)) {
    pending.types_incomplete = true;
    return;
  }
  std::strcpy(pending.types[pending.type_count++], type);
}

// {"first":12,"last":15,"count":4,"types":["credits.added"]}: at most about 60 + 8 * 50 bytes.
void format_payload(char* buffer, std::size_t size) noexcept {
  int used = snprintf(buffer, size, "{\"first\":%lld,\"last\":%lld,\"count\":%lld", static_cast<long long>(pending.first),
                      static_cast<long long>(pending.last), static_cast<long long>(pending.count));
  if (!pending.types_incomplete && pending.type_count > 0) {
    used += snprintf(buffer + used, size - used, ",\"types\":[");
    for (int i = 0; i < pending.type_count; ++i) {
      used += snprintf(buffer + used, size - used, "%s\"%s\"", i == 0 ? "" : ",", pending.types[i]);
    }
    used += snprintf(buffer + used, size - used, "]");
  }
  snprintf(buffer + used, size - used, "}");
}

double notify_queue_usage() noexcept {
  LOCAL_FCINFO(fcinfo, 0);
  InitFunctionCallInfoData(*fcinfo, nullptr, 0, InvalidOid, nullptr, nullptr);
  return DatumGetFloat8(pg_notification_queue_usage(fcinfo));
}

void on_transaction_event(XactEvent event, void*) noexcept {
  switch (event) {
    case XACT_EVENT_PRE_COMMIT:
      if (pending.count > 0 && notify_mode == kNotifyTransaction) {
        char payload[1024];
        format_payload(payload, sizeof payload);
        queue_notify(payload);
      }
      reset_pending();
      break;
    case XACT_EVENT_PRE_PREPARE:  // never at PREPARE: a pending NOTIFY makes PREPARE TRANSACTION fail
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PREPARE:
      reset_pending();
      break;
    default:
      break;
  }
}

void on_subtransaction_event(SubXactEvent event, SubTransactionId, SubTransactionId, void*) noexcept {
  if (saved_count == 0) return;
  const int level = GetCurrentTransactionNestLevel();
  Saved& top = saved[saved_count - 1];
  if (top.level != level) return;
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    pending = top.before;
    --saved_count;
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    // The subtransaction's events now belong to its parent: the parent's own save point (if it has one)
    // is older and wins; otherwise this one becomes the parent's. The top level needs none.
    const bool parent_saved = saved_count >= 2 && saved[saved_count - 2].level == level - 1;
    if (parent_saved || level - 1 <= 1) {
      --saved_count;
    } else {
      top.level = level - 1;
    }
  }
}

// ---- relay (worker mode) ---------------------------------------------------------------------------

// C zone. The events committed after the relay's position, if any, get one NOTIFY.
std::int64_t relay() noexcept {
  static SavedPlan position("SELECT r.xid, r.id FROM ducto.notify_relay AS r", {});
  static SavedPlan create_position(
      "INSERT INTO ducto.notify_relay (xid, id, relayed_at) VALUES ('0', 0, pg_catalog.clock_timestamp()) "
      "ON CONFLICT (singleton) DO NOTHING",
      {});
  static SavedPlan newest(
      "SELECT e.xid, e.id FROM ducto.events AS e "
      "WHERE e.xid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) "
      "AND ROW(e.xid, e.id) > ROW($1, $2) ORDER BY e.xid DESC, e.id DESC LIMIT 1",
      {XID8OID, INT8OID});
  // The count is capped: a payload is a hint, and a first relay over a large backlog must stay cheap.
  static SavedPlan range(
      "SELECT (SELECT e.id FROM ducto.events AS e WHERE ROW(e.xid, e.id) > ROW($1, $2) "
      "        ORDER BY e.xid, e.id LIMIT 1), "
      "       (SELECT count(*) FROM (SELECT 1 FROM ducto.events AS e "
      "        WHERE ROW(e.xid, e.id) > ROW($1, $2) AND ROW(e.xid, e.id) <= ROW($3, $4) LIMIT 1000000) AS s)",
      {XID8OID, INT8OID, XID8OID, INT8OID});
  // Optimistic: a concurrent relay (worker and run_maintenance) that moved first makes this one a no-op.
  static SavedPlan advance(
      "UPDATE ducto.notify_relay AS r SET xid = $3, id = $4, relayed_at = pg_catalog.clock_timestamp() "
      "WHERE r.xid = $1 AND r.id = $2",
      {XID8OID, INT8OID, XID8OID, INT8OID});

  const OwnerScope scope = enter_owner_scope(nullptr);
  bool is_null = false;
  if (spi_run(position, nullptr, nullptr, false, 1) == 0) {
    spi_run(create_position, nullptr, nullptr, false, 0);
    spi_run(position, nullptr, nullptr, false, 1);
  }
  Datum values[4] = {spi_value(0, 1, &is_null), spi_value(0, 2, &is_null), Datum(0), Datum(0)};
  std::int64_t count = 0;
  char payload[128] = {};
  if (spi_run(newest, values, nullptr, false, 1) == 1) {
    values[2] = spi_value(0, 1, &is_null);
    values[3] = spi_value(0, 2, &is_null);
    spi_run(range, values, nullptr, false, 1);
    const std::int64_t first = DatumGetInt64(spi_value(0, 1, &is_null));
    count = DatumGetInt64(spi_value(0, 2, &is_null));
    snprintf(payload, sizeof payload, "{\"first\":%lld,\"last\":%lld,\"count\":%lld}", static_cast<long long>(first),
             static_cast<long long>(DatumGetInt64(values[3])), static_cast<long long>(count));
    if (spi_run(advance, values, nullptr, false, 0) != 1) count = 0;
  }
  leave_owner_scope(scope);
  // A skipped NOTIFY (queue too full) must not move the position: the next relay covers these events.
  if (count > 0 && !queue_notify(payload)) {
    ereport(WARNING, (errmsg("ducto: notify queue more than half full, relay skipped")));
    count = 0;
  }
  return count;
}

Datum relay_events(FunctionCallInfo) {
  if (notify_off()) return Int64GetDatum(0);
  return Int64GetDatum(pg_call([]() noexcept { return relay(); }));
}

}  // namespace

// ---- public ----------------------------------------------------------------------------------------

void note_event_written(std::int64_t id, const char* type) noexcept {
  const int level = GetCurrentTransactionNestLevel();
  if (level > 1 && (saved_count == 0 || saved[saved_count - 1].level < level) && saved_count < kMaxSaved) {
    saved[saved_count++] = Saved{level, pending};
  }
  if (pending.count == 0) {
    pending.first = id;
    pending.last = id;
  } else {
    if (id < pending.first) pending.first = id;
    if (id > pending.last) pending.last = id;
  }
  ++pending.count;
  remember_type(type == nullptr ? "" : type);
}

const char* notify_channel() noexcept { return channel_setting; }

bool events_enabled() noexcept { return write_events_setting; }

bool notify_off() noexcept { return notify_mode == kNotifyOff; }

bool queue_notify(const char* payload) noexcept {
  // pg_notification_queue_usage() > 0.5: a listener is stuck; adding to the queue would only bring the
  // moment every notifier fails closer. Listeners still find the events in the outbox.
  if (notify_queue_usage() > 0.5) return false;
  Async_Notify(channel_setting, payload);
  return true;
}

void register_notify() noexcept {
  DefineCustomEnumVariable("ducto.notify", "How listeners are woken when events are written.",
                           "transaction: one NOTIFY per committing transaction that wrote events; worker: the "
                           "background worker notifies for committed events; off: never.",
                           &notify_mode, kNotifyTransaction, kNotifyModes, PGC_USERSET, 0, nullptr, nullptr,
                           nullptr);
  DefineCustomStringVariable("ducto.notify_channel", "The NOTIFY channel of event wake-ups.", nullptr,
                             &channel_setting, "ducto_events", PGC_USERSET, 0, check_channel, nullptr, nullptr);
  // Only for measuring what the outbox costs (the events benchmark's baseline): with it off, operations
  // write no event at all, which breaks every consumer. Superuser-only for that reason.
  DefineCustomBoolVariable("ducto.write_events", "Whether credit operations write events (benchmarks only).",
                           "Off breaks the outbox contract: consumers miss every event written meanwhile.",
                           &write_events_setting, true, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
  RegisterXactCallback(on_transaction_event, nullptr);
  RegisterSubXactCallback(on_subtransaction_event, nullptr);
}

}  // namespace ducto::pg

extern "C" {
Datum ducto_relay_events(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::relay_events(fcinfo); });
}
}
