// src/pg/module.cpp: the library's entry: magic block and _PG_init (callbacks every backend needs).
#include "pg/pg_headers.h"

extern "C" {
#include "utils/guc.h"
}

#include "pg/config_cache.h"
#include "pg/events_internal.h"
#include "pg/notify.h"
#include "pg/spi_util.h"
#include "pg/worker.h"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
}

// Runs once per backend that loads ducto (and in each parallel worker). Only Postgres registration
// calls, no C++ object: a failure here is an ordinary Postgres error.
void _PG_init(void) {
  ducto::pg::register_spi_callbacks();
  ducto::pg::register_config_cache_callbacks();
  ducto::pg::register_notify();
  ducto::pg::register_event_settings();
  ducto::pg::register_worker_settings();
  ducto::pg::register_worker();
  MarkGUCPrefixReserved("ducto");
}
