// src/pg/spi_util.h: SPI with saved plans, run as the extension owner (design.md, Function attributes).
//
// ducto's functions are SECURITY INVOKER, and PUBLIC has no right on ducto's tables. The glue reads and
// writes them as the extension owner (the owner of schema ducto), the way Postgres' own foreign-key
// triggers do: SetUserIdAndSecContext with SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION
// around the SPI work. Statements schema-qualify every table, function and operator, so the caller's
// search_path cannot redirect them.
//
// Everything declared here is a "C zone" function: it calls Postgres directly and may raise a Postgres
// error (longjmp). Call them only inside a pg_call lambda (bridge.h), whose frame holds no C++ object with
// a destructor; they are noexcept because they never throw C++ exceptions.
// When an error leaves a C zone, SPI stays connected and the owner stays switched: the transaction (or
// subtransaction) abort that follows every error restores both (AtEOXact_SPI, AbortTransaction).
#pragma once
#include "pg/pg_headers.h"

#include <cstddef>
#include <initializer_list>

namespace ducto::pg {

// A statement prepared on first use and kept for the backend's lifetime. Constant-initialized and
// trivially destructible, so it can be a function-local or namespace static.
class SavedPlan {
 public:
  static constexpr std::size_t kMaxArgs = 32;  // more than any statement of the extension binds
  constexpr SavedPlan(const char* sql, std::initializer_list<Oid> arg_types) : sql_(sql) {
    for (Oid type : arg_types) arg_types_[arg_count_++] = type;
  }
  // The prepared plan; requires an SPI connection.
  SPIPlanPtr get() noexcept;

 private:
  const char* sql_;
  Oid arg_types_[kMaxArgs] = {};
  int arg_count_ = 0;
  SPIPlanPtr plan_ = nullptr;
};

// SPI_connect/SPI_finish that raise on failure codes.
void spi_connect() noexcept;
void spi_finish() noexcept;

// Runs a saved plan (nulls: SPI's ' '/'n' string, nullptr for none) and returns SPI_processed.
// `read_only`: true for STABLE callers (no command counter increment, the active snapshot).
std::uint64_t spi_run(SavedPlan& plan, Datum* values, const char* nulls, bool read_only, long max_rows) noexcept;
// Same, against an explicit snapshot (read only).
std::uint64_t spi_run_with_snapshot(SavedPlan& plan, Datum* values, const char* nulls, Snapshot snapshot,
                                    long max_rows) noexcept;
// Column `column` (1-based) of result row `row`; nullopt-like: *is_null set.
Datum spi_value(std::uint64_t row, int column, bool* is_null) noexcept;

// The user and security context a switch replaced.
struct SecurityState {
  Oid user;
  int context;
};
// Becomes the owner of schema ducto in a restricted security context.
SecurityState become_extension_owner() noexcept;
void restore_security(SecurityState saved) noexcept;

// The oid of schema ducto and of one of its relations (cached; reset when pg_namespace changes).
Oid ducto_namespace() noexcept;
Oid ducto_relation(const char* name) noexcept;

// Registers the syscache callback that forgets the cached schema oid and owner. Called once, from _PG_init.
void register_spi_callbacks() noexcept;

}  // namespace ducto::pg
