// src/pg/ledger_common.h: what every credit operation of the ledger glue shares (issue 3): arguments,
// the clock and ids, Datum conversions, the SPI session, result rows and event data.
//
// Functions documented as "C zone" call Postgres directly and may raise a Postgres error (longjmp): call
// them only inside a pg_call lambda (bridge.h). Everything else is safe to call from C++ code with live
// objects: it wraps its Postgres calls in pg_call itself.
#pragma once
#include "pg/pg_headers.h"

extern "C" {
#include "utils/array.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/ledger/lots.h"
#include "core/ledger/money.h"
#include "core/ledger/rules.h"
#include "core/ledger/uuid.h"
#include "pg/spi_util.h"

namespace ducto::pg {

using ledger::Micros;
using ledger::Uuid;

// ---- arguments ---------------------------------------------------------------------------------------
// Each raises Error(null_value, "<name> must not be NULL") for a NULL required argument and the core's
// 22023 errors (src/core/ledger/validate.h) for a bad value.

std::string_view user_id_arg(FunctionCallInfo fcinfo, int n);
Micros amount_arg(FunctionCallInfo fcinfo, int n);
std::optional<Micros> optional_amount_arg(FunctionCallInfo fcinfo, int n);
Uuid uuid_arg(FunctionCallInfo fcinfo, int n, std::string_view name);
std::optional<Uuid> optional_uuid_arg(FunctionCallInfo fcinfo, int n);
std::optional<std::string_view> idempotency_key_arg(FunctionCallInfo fcinfo, int n);
// NULL is the empty object; otherwise an object of at most 16 kB as text.
Jsonb* metadata_arg(FunctionCallInfo fcinfo, int n);
std::int32_t int32_arg(FunctionCallInfo fcinfo, int n, std::string_view name);

// ---- clock and ids -----------------------------------------------------------------------------------

// clock_timestamp(): the one clock reading of an operation (design.md: not now()).
TimestampTz clock_now() noexcept;
// A fresh UUIDv7 for `now`, after every id this backend made before. C zone (random bytes).
Uuid new_uuid(TimestampTz now) noexcept;

// ---- Datums (C zone: they allocate) ------------------------------------------------------------------

Datum uuid_datum(const Uuid& uuid) noexcept;
Uuid uuid_of(Datum datum) noexcept;
// A numeric with exactly 6 decimal places.
Datum money_datum(Micros micros) noexcept;
Datum text_datum(std::string_view text) noexcept;
// Allocations as a flat bigint[] of (lot id, micro-credits) pairs.
Datum parts_datum(std::span<const ledger::Part> parts) noexcept;
// The number of parts in a bigint[] of pairs, and the parts themselves into `out` (count entries).
std::size_t part_count(Datum array) noexcept;
void read_parts(Datum array, ledger::Part* out, std::size_t count) noexcept;
// A bytea of the given bytes.
Datum bytes_datum(std::span<const std::uint8_t> bytes) noexcept;

// The parts of a bigint[] pairs array (C++ side: copies out of Postgres memory).
std::vector<ledger::Part> parts_of(Datum array);

// ---- session -----------------------------------------------------------------------------------------

// One operation's SPI connection, made as the extension owner. Opened after argument checks and closed
// before the result is built; an error in between leaves both to the transaction abort (spi_util.h).
struct Session {
  SecurityState security;
  MemoryContext caller;  // the SQL function's memory context, for results that outlive SPI
};
Session open_session();
void close_session(const Session& session);

// ---- configuration -----------------------------------------------------------------------------------

// The active config's min_balance in micro-credits (0 without an active config). Call before
// open_session: a cold cache reads the config with its own SPI connection.
Micros current_floor();

// ---- result rows -------------------------------------------------------------------------------------

// One composite result being filled in; every column starts NULL.
class ResultRow {
 public:
  static constexpr int kMaxColumns = 8;
  void set(int column, Datum value) {
    values_[column] = value;
    nulls_[column] = false;
  }
  void set_uuid(int column, const std::optional<Uuid>& value);
  void set_money(int column, const std::optional<Micros>& value);
  void set_text(int column, const std::optional<std::string_view>& value);
  void set_bool(int column, bool value) { set(column, BoolGetDatum(value)); }
  void set_timestamp(int column, const std::optional<TimestampTz>& value);
  // The composite Datum, with the function's result descriptor (cached in fn_extra).
  Datum finish(FunctionCallInfo fcinfo);

 private:
  Datum values_[kMaxColumns] = {};
  bool nulls_[kMaxColumns] = {true, true, true, true, true, true, true, true};
};

// The results of the credit operations (the composite types of sql/ducto--1.0.sql, "ledger"). A refused
// call carries its error code, the user_id when known, and the request's own values (amount, ids);
// everything else is NULL.
struct CreditOutcome {
  std::optional<Uuid> transaction_id;
  std::optional<std::string_view> user_id;
  std::optional<Micros> amount;
  std::optional<Micros> balance_after;
  bool idempotent = false;
  std::optional<ledger::Rejection> error;
};
Datum credit_result(FunctionCallInfo fcinfo, const CreditOutcome& outcome);

struct ReservationOutcome {
  std::optional<Uuid> reservation_id;
  std::optional<std::string_view> user_id;
  std::optional<Micros> amount;
  std::optional<Micros> available_after;
  std::optional<TimestampTz> expires_at;
  bool idempotent = false;
  std::optional<ledger::Rejection> error;
};
Datum reservation_result(FunctionCallInfo fcinfo, const ReservationOutcome& outcome);

struct RefundOutcome {
  std::optional<Uuid> refund_transaction_id;
  std::optional<Uuid> original_transaction_id;
  std::optional<std::string_view> user_id;
  std::optional<Micros> amount;
  std::optional<Micros> balance_after;
  bool idempotent = false;
  std::optional<ledger::Rejection> error;
};
Datum refund_result(FunctionCallInfo fcinfo, const RefundOutcome& outcome);

struct ChargeOutcome {
  std::optional<Uuid> transaction_id;
  std::optional<std::string_view> user_id;
  std::optional<Micros> amount;
  std::optional<Micros> balance_after;
  Jsonb* breakdown = nullptr;
  bool idempotent = false;
  std::optional<ledger::Rejection> error;
  std::optional<Micros> allowance_used;  // what the plan's free allowance paid (0 without a plan)
};
Datum charge_result(FunctionCallInfo fcinfo, const ChargeOutcome& outcome);

// ---- event data --------------------------------------------------------------------------------------

// The data object of an event, built member by member (absent values are left out). Strings are kept
// alive by the builder until build().
class EventData {
 public:
  EventData& text(std::string_view key, std::optional<std::string_view> value);
  EventData& uuid(std::string_view key, const std::optional<Uuid>& value);
  EventData& money(std::string_view key, std::optional<Micros> value);
  EventData& timestamp(std::string_view key, std::optional<TimestampTz> value);
  // A nested object or array (breakdown, metadata); nullptr leaves the key out.
  EventData& document(std::string_view key, Jsonb* value);
  Jsonb* build();

 private:
  struct Member {
    std::string_view key;
    JsonbValue value;  // a scalar, or jbvBinary of a nested document
  };
  std::string_view keep(std::string text);
  std::vector<Member> members_;
  std::deque<std::string> texts_;
};

// C zone. The shared empty jsonb object (made once per backend, never freed).
Jsonb* empty_object() noexcept;

}  // namespace ducto::pg
