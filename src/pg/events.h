// src/pg/events.h: the write side of the event outbox (design.md, Events).
//
// Every credit operation writes its events into ducto.events in the caller's transaction, so an event
// is committed exactly when its change commits. The read side (consumers, poll/ack, pruning) lives in
// events_read.cpp; wake-ups (NOTIFY, at most one per transaction) in notify.cpp.
#pragma once
#include "pg/pg_headers.h"

#include <cstdint>
#include <string_view>

namespace ducto::pg {

// One event as an operation builds it. Pointers and views refer to the caller's memory context.
struct Event {
  const char* type = nullptr;      // "credits.added", "credits.deducted", ... (see kEventTypes in the SQL)
  std::string_view user_id;        // the account's user_id; empty for none
  bool has_amount = false;         // amounts are signed like the ledger (credits +, debits -, holds +)
  std::int64_t amount_micros = 0;
  bool has_balance_after = false;
  std::int64_t balance_after_micros = 0;
  Jsonb* data = nullptr;           // a jsonb object (design.md lists its keys); nullptr: {}
  TimestampTz created_at = 0;      // the operation's one clock reading
};

// Inserts the event (saved plan; the caller has SPI connected and runs as the extension owner) and
// tells the notify layer that this transaction wrote an event. A C-zone function: call it inside
// pg_call (bridge.h). Returns the event's id (0 when ducto.write_events is off, for benchmarks only).
std::int64_t write_event(const Event& event) noexcept;

}  // namespace ducto::pg
