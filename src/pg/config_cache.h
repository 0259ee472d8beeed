// src/pg/config_cache.h: the per-backend caches of compiled pricing configs (design.md, Expression
// language: "compiled once per config version and cached per backend; a call never re-parses").
//
// Two layers:
// - compiled configs keyed by their jsonb bytes (inline `config` arguments and stored versions alike).
//   Keying by content rather than by version number keeps the cache right when a set_pricing rolls back
//   and its version number is later reused for another document;
// - the active config: a flag, the version and the compiled config. While the flag holds, reading the
//   active config costs no SPI at all. A relcache invalidation of ducto.pricing_configs clears it: our
//   own set_pricing/activate_pricing send one, so every backend (and hot standby) drops it at its next
//   invalidation processing (transaction start, lock acquisition).
#pragma once
#include "pg/pg_headers.h"

#include <cstdint>
#include <memory>

namespace ducto::pg {

struct ActiveConfig {
  std::int32_t version = 0;                        // 0 when no config is active
  std::shared_ptr<const pricing::Config> config;  // nullptr when no config is active
};

// The active config, refreshed with one SPI query when an invalidation cleared the cache.
ActiveConfig active_config();

// The compiled form of a config document (validated: an invalid one throws the core's 22023 error).
std::shared_ptr<const pricing::Config> compiled_config(Jsonb* document);
// Adds an already compiled document to the cache (set_pricing compiles before it stores).
void remember_compiled_config(Jsonb* document, std::shared_ptr<const pricing::Config> config);

// Clears the active-config flag of this backend (set_pricing and activate_pricing, before they return).
void forget_active_config() noexcept;

// Registers the relcache and transaction callbacks. Called once, from _PG_init.
void register_config_cache_callbacks() noexcept;

}  // namespace ducto::pg
