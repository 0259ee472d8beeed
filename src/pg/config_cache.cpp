// src/pg/config_cache.cpp: compiled-config caches and their invalidation (see config_cache.h).
#include "pg/config_cache.h"

#include <utility>

#include "pg/bounded_cache.h"
#include "pg/bridge.h"
#include "pg/convert.h"
#include "pg/spi_util.h"

namespace ducto::pg {

namespace {

// Enough for the active version, a rollback target and a few inline configs per backend.
constexpr std::size_t kCompiledConfigs = 16;

// Statics hold pure C++ objects only (their destructors never touch Postgres memory: notes §7).
BoundedCache<std::shared_ptr<const pricing::Config>> compiled_configs(kCompiledConfigs);

struct ActiveState {
  bool valid = false;
  // Filled in parallel mode from the transaction's snapshot: only good until the transaction ends.
  bool transaction_scoped = false;
  // Bumped by every invalidation; a refresh only caches its result when no invalidation arrived while it
  // was reading.
  std::uint64_t generation = 0;
  Oid relation = InvalidOid;  // ducto.pricing_configs, once looked up
  ActiveConfig active;
};
ActiveState state;

void invalidate() noexcept {
  state.valid = false;
  ++state.generation;
}

// Postgres callbacks: noexcept, no allocation (bridge.h, rule 5).
void on_relcache_invalidation(Datum, Oid relation) noexcept {
  if (relation == InvalidOid || state.relation == InvalidOid || relation == state.relation) invalidate();
}

void on_transaction_end(XactEvent event, void*) noexcept {
  if (!state.transaction_scoped) return;
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      invalidate();
      state.transaction_scoped = false;
      break;
    default:
      break;
  }
}

// The active row as read by a C zone: plain data only.
struct ActiveRow {
  std::int32_t version = 0;
  Jsonb* config = nullptr;  // copied into the caller's memory context; nullptr when none is active
  bool transaction_scoped = false;
};

// C zone. Reads the active row as the extension owner. The cache must hold the latest committed state,
// not what an older snapshot shows: an invalidation processed now may belong to a commit that the
// transaction's snapshot predates, and caching that snapshot's answer would keep the stale version
// after the transaction ends. So the read uses a fresh snapshot. Parallel mode forbids taking one; there
// the transaction's snapshot is used and the result is only cached until the transaction ends.
ActiveRow read_active_row() noexcept {
  static SavedPlan plan(
      "SELECT c.version, c.config FROM ducto.pricing_configs AS c WHERE c.active", {});
  MemoryContext caller_context = CurrentMemoryContext;
  ActiveRow row;
  const SecurityState saved = become_extension_owner();
  spi_connect();
  std::uint64_t rows = 0;
  if (IsInParallelMode()) {
    rows = spi_run(plan, nullptr, nullptr, true, 1);
    row.transaction_scoped = true;
  } else {
    rows = spi_run_with_snapshot(plan, nullptr, nullptr, GetLatestSnapshot(), 1);
  }
  if (rows == 1) {
    bool is_null = false;
    row.version = DatumGetInt32(spi_value(0, 1, &is_null));
    const Datum config = spi_value(0, 2, &is_null);
    MemoryContext spi_context = MemoryContextSwitchTo(caller_context);
    row.config = DatumGetJsonbPCopy(config);
    MemoryContextSwitchTo(spi_context);
  }
  spi_finish();
  restore_security(saved);
  return row;
}

ActiveConfig refresh_active_config() {
  const Oid relation = pg_call([]() noexcept { return ducto_relation("pricing_configs"); });
  state.relation = relation;
  const std::uint64_t generation = state.generation;
  const ActiveRow row = pg_call(read_active_row);
  ActiveConfig active;
  if (row.config != nullptr) {
    active.version = row.version;
    active.config = compiled_config(row.config);
  }
  if (state.generation == generation) {
    state.active = active;
    state.transaction_scoped = row.transaction_scoped;
    state.valid = true;
  }
  return active;
}

}  // namespace

ActiveConfig active_config() {
  if (state.valid) return state.active;
  return refresh_active_config();
}

std::shared_ptr<const pricing::Config> compiled_config(Jsonb* document) {
  const std::string_view key = jsonb_bytes(document);
  if (auto* cached = compiled_configs.find(key)) return *cached;
  return compiled_configs.insert(key, pricing::Config::compile(jsonb_text(document)));
}

void remember_compiled_config(Jsonb* document, std::shared_ptr<const pricing::Config> config) {
  const std::string_view key = jsonb_bytes(document);
  if (compiled_configs.find(key) == nullptr) compiled_configs.insert(key, std::move(config));
}

void forget_active_config() noexcept { invalidate(); }

void register_config_cache_callbacks() noexcept {
  CacheRegisterRelcacheCallback(on_relcache_invalidation, 0);
  RegisterXactCallback(on_transaction_end, nullptr);
}

}  // namespace ducto::pg
