// src/pg/worker.h: the background worker's registration (the worker itself: worker.cpp).
#pragma once
#include "pg/pg_headers.h"

namespace ducto::pg {

// Defines the task intervals (every backend, so SET and SHOW work) and, under shared_preload_libraries,
// ducto.database. From _PG_init.
void register_worker_settings() noexcept;
// Registers the worker when the library is being loaded by shared_preload_libraries; otherwise nothing.
void register_worker() noexcept;

}  // namespace ducto::pg
