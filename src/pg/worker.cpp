// src/pg/worker.cpp: the background worker (design.md, Operations; issue 4), started when ducto is in
// shared_preload_libraries. One worker, connected to the database named by ducto.database, runs three
// tasks, each on its own interval: the worker-mode NOTIFY relay (ducto.relay_events), the expiry sweep of
// holds and lots (the ledger's ducto.expire_credits, in batches), and outbox upkeep (day partitions ahead,
// ducto.prune_events with ducto.event_retention). ducto.run_maintenance() is the same work in one call.
//
// Every task is one SQL statement in its own transaction. A task that fails is reported to the server
// log, its transaction aborted, and the loop carries on: the next round retries it. No C++ object with a
// destructor lives in these frames (Postgres errors longjmp through them).
#include "pg/pg_headers.h"

extern "C" {
#include "commands/extension.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

#include <cstdint>
#include <cstring>

#include "pg/worker.h"

extern "C" {
PGDLLEXPORT void ducto_worker_main(Datum argument);
}

namespace ducto::pg {
namespace {

// ---- settings --------------------------------------------------------------------------------------

char* worker_database = nullptr;
// Milliseconds for the relay, seconds for the others; 0 turns a task off.
int notify_interval_ms = 1000;
int expiry_interval_s = 60;
int prune_interval_s = 3600;

// Accounts per expire_credits call (one transaction each), and calls per round, so one round stays short.
constexpr int kExpiryBatch = 1000;
constexpr int kMaxExpiryBatches = 100;

// ---- tasks -----------------------------------------------------------------------------------------

// Results of run_task besides the statement's own value.
constexpr std::int64_t kTaskFailed = -1;
constexpr std::int64_t kTaskUnavailable = -2;  // ducto (or the function the task needs) is not installed

// The first column of the statement's first row as a bigint (0 for none).
std::int64_t run_statement(const char* sql) {
  if (SPI_execute(sql, false, 0) < 0) elog(ERROR, "ducto worker: \"%s\" failed", sql);
  if (SPI_processed == 0 || SPI_tuptable == nullptr) return 0;
  bool is_null = false;
  const Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
  return is_null ? 0 : DatumGetInt64(value);
}

// `probe` is a query returning one bigint: 1 when the task can run.
bool available(const char* probe) {
  if (!OidIsValid(get_extension_oid("ducto", true))) return false;
  return probe == nullptr || run_statement(probe) == 1;
}

// One transaction running `sql` when ducto is installed and `probe` (if any) says the task can run.
// Returns the statement's value, kTaskFailed or kTaskUnavailable.
std::int64_t run_task(const char* activity, const char* sql, const char* probe) {
  MemoryContext caller_context = CurrentMemoryContext;
  volatile std::int64_t result = kTaskUnavailable;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PG_TRY();
  {
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, activity);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "ducto worker: SPI_connect failed");
    if (available(probe)) result = run_statement(sql);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(caller_context);
    HOLD_INTERRUPTS();
    EmitErrorReport();
    AbortCurrentTransaction();
    FlushErrorState();
    RESUME_INTERRUPTS();
    result = kTaskFailed;
  }
  PG_END_TRY();
  pgstat_report_activity(STATE_IDLE, nullptr);
  return result;
}

// Each task returns false when it could not run because ducto is not installed (yet): the loop then
// retries it soon instead of after its whole interval.
bool relay_task() {
  return run_task("ducto: notify relay", "SELECT ducto.relay_events()", nullptr) != kTaskUnavailable;
}

bool expiry_task() {
  static const char* sql = "SELECT pg_catalog.count(*) FROM ducto.expire_credits(1000)";
  static const char* probe =
      "SELECT CASE WHEN pg_catalog.to_regprocedure('ducto.expire_credits(integer)') IS NULL THEN 0::pg_catalog.int8 "
      "ELSE 1::pg_catalog.int8 END";
  static_assert(kExpiryBatch == 1000, "the statement's batch size");
  for (int batch = 0; batch < kMaxExpiryBatches; ++batch) {
    const std::int64_t expired = run_task("ducto: expiry sweep", sql, probe);
    if (expired == kTaskUnavailable) return false;
    if (expired < kExpiryBatch) break;
    CHECK_FOR_INTERRUPTS();
  }
  return true;
}

bool upkeep_task() {
  if (run_task("ducto: event partitions", "SELECT ducto.create_event_partitions()", nullptr) == kTaskUnavailable) {
    return false;
  }
  run_task("ducto: prune events",
           "SELECT ducto.prune_events(pg_catalog.current_setting('ducto.event_retention')::pg_catalog.interval)",
           nullptr);
  return true;
}

// How soon a task that found ducto missing is tried again.
constexpr long kRetryMs = 5000;

struct Task {
  bool (*run)();
  const int* interval;
  long unit_ms;
  TimestampTz next;  // 0: due now
};

long interval_ms(const Task& task) { return static_cast<long>(*task.interval) * task.unit_ms; }

void worker_loop() {
  Task tasks[] = {
      {relay_task, &notify_interval_ms, 1, 0},
      {expiry_task, &expiry_interval_s, 1000, 0},
      {upkeep_task, &prune_interval_s, 1000, 0},
  };
  for (;;) {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
      for (Task& task : tasks) task.next = 0;  // intervals may have changed
    }
    long sleep_ms = 60 * 1000;
    for (Task& task : tasks) {
      const long every = interval_ms(task);
      if (every <= 0) continue;
      TimestampTz now = GetCurrentTimestamp();
      if (now >= task.next) {
        const bool ran = task.run();
        now = GetCurrentTimestamp();
        task.next = TimestampTzPlusMilliseconds(now, ran || every < kRetryMs ? every : kRetryMs);
      }
      const long until = static_cast<long>((task.next - now) / 1000);
      if (until < sleep_ms) sleep_ms = until < 1 ? 1 : until;
    }
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
  }
}

}  // namespace

void register_worker_settings() noexcept {
  // A PGC_POSTMASTER setting can only be defined while shared_preload_libraries loads the library
  // (afterwards Postgres refuses with FATAL); without preload there is no worker to configure.
  if (process_shared_preload_libraries_in_progress) {
    DefineCustomStringVariable("ducto.database", "The database the ducto background worker connects to.", nullptr,
                               &worker_database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  }
  DefineCustomIntVariable("ducto.notify_interval", "How often the worker relays a NOTIFY for new events.",
                          "0 turns the relay off.", &notify_interval_ms, 1000, 0, 3600 * 1000, PGC_SIGHUP,
                          GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("ducto.expiry_interval", "How often the worker expires due holds and lots.",
                          "0 turns the sweep off (expiry still happens lazily).", &expiry_interval_s, 60, 0,
                          7 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("ducto.prune_interval",
                          "How often the worker creates event partitions ahead and prunes old events.",
                          "0 turns both off.", &prune_interval_s, 3600, 0, 7 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S,
                          nullptr, nullptr, nullptr);
}

void register_worker() noexcept {
  if (!process_shared_preload_libraries_in_progress) return;
  BackgroundWorker worker;
  std::memset(&worker, 0, sizeof worker);
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = 10;
  strlcpy(worker.bgw_library_name, "ducto", BGW_MAXLEN);
  strlcpy(worker.bgw_function_name, "ducto_worker_main", BGW_MAXLEN);
  strlcpy(worker.bgw_name, "ducto worker", BGW_MAXLEN);
  strlcpy(worker.bgw_type, "ducto worker", BGW_MAXLEN);
  RegisterBackgroundWorker(&worker);
}

}  // namespace ducto::pg

// SIGTERM (die) ends the worker at its next interrupt check, also in the middle of a task; the
// postmaster restarts it after bgw_restart_time unless the server is shutting down.
void ducto_worker_main(Datum) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(ducto::pg::worker_database, nullptr, 0);
  ereport(LOG, (errmsg("ducto worker started on database \"%s\"", ducto::pg::worker_database)));
  ducto::pg::worker_loop();
}
