// src/pg/notify.h: wake-ups for event listeners (design.md, Events, "Wake-ups"; issue 4).
//
// The outbox is the truth; a NOTIFY on ducto.notify_channel only tells listeners to poll. NOTIFY takes a
// cluster-wide lock held through the commit's WAL flush, so ducto sends as few as it can:
//  - ducto.notify = transaction (default): at most one NOTIFY per committing transaction that wrote
//    events, queued from a pre-commit callback with a small JSON payload ({"first":..,"last":..,
//    "count":..,"types":[..]}); nothing at PREPARE TRANSACTION (a pending notify makes PREPARE fail);
//    skipped, not failed, when the notify queue is more than half full.
//  - worker: writers never notify; the background worker (or run_maintenance) calls relay_events,
//    which sends one NOTIFY for the events committed since its last one.
//  - off: no NOTIFY at all.
#pragma once
#include "pg/pg_headers.h"

#include <cstdint>

namespace ducto::pg {

// Records that this transaction wrote event `id` of `type` (the hot path: a few stores, no Postgres
// call that can raise). Rolled back with the subtransaction or transaction that wrote it.
void note_event_written(std::int64_t id, const char* type) noexcept;

// Defines ducto.notify and ducto.notify_channel and registers the transaction callbacks. From _PG_init.
void register_notify() noexcept;

// The channel named by ducto.notify_channel (validated: a NOTIFY to it cannot fail).
const char* notify_channel() noexcept;

// C zone: queues one NOTIFY with `payload` unless the queue is more than half full; returns whether it did.
bool queue_notify(const char* payload) noexcept;

// ducto.write_events: false only while a benchmark measures the outbox's cost (write_event is skipped).
bool events_enabled() noexcept;

// True when ducto.notify is off for this session.
bool notify_off() noexcept;

}  // namespace ducto::pg
