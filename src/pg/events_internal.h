// src/pg/events_internal.h: what the event files (events_read.cpp, notify.cpp, worker.cpp) share and
// nothing else needs: the scope in which their SQL runs, and the maintenance settings.
#pragma once
#include "pg/pg_headers.h"

#include "pg/spi_util.h"

namespace ducto::pg {

// The state an OwnerScope replaced.
struct OwnerScope {
  SecurityState security;
  int guc_level;
};

// C zone. Becomes the extension owner (spi_util.h) with search_path pinned to pg_catalog, pg_temp and,
// when lock_timeout is not null, that lock_timeout (so DDL on ducto.events cannot stall writers queued
// behind it for long), then connects SPI. leave_owner_scope undoes it all; after an error the
// (sub)transaction abort does.
OwnerScope enter_owner_scope(const char* lock_timeout) noexcept;
void leave_owner_scope(OwnerScope scope) noexcept;

// Defines ducto.max_event_retention and ducto.event_retention. From _PG_init.
void register_event_settings() noexcept;

}  // namespace ducto::pg
