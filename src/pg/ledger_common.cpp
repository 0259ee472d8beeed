// src/pg/ledger_common.cpp: arguments, ids, Datums, the SPI session, result rows and event data of the
// credit operations (see ledger_common.h).
#include "pg/ledger_common.h"

extern "C" {
#include "common/pg_prng.h"
#include "utils/json.h"
}

#include <cstring>
#include <string>

#include "core/ledger/validate.h"
#include "pg/bridge.h"
#include "pg/config_cache.h"
#include "pg/convert.h"

namespace ducto::pg {

namespace {

[[noreturn]] void throw_null(std::string_view name) {
  throw Error(Errc::null_value, std::string(name) + " must not be NULL");
}

}  // namespace

// ---- arguments ---------------------------------------------------------------------------------------

std::string_view user_id_arg(FunctionCallInfo fcinfo, int n) {
  const std::string_view user_id = required_text_arg(fcinfo, n, "user_id");
  ledger::check_user_id(user_id);
  return user_id;
}

std::optional<Micros> optional_amount_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  // numeric's own text: plain notation, "NaN" or "[-]Infinity"; the core checks it exactly.
  const char* digits = pg_call([&]() noexcept {
    return DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(n)));
  });
  return ledger::parse_amount(digits);
}

Micros amount_arg(FunctionCallInfo fcinfo, int n) {
  const std::optional<Micros> amount = optional_amount_arg(fcinfo, n);
  if (!amount) throw_null("amount");
  return *amount;
}

std::optional<Uuid> optional_uuid_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return uuid_of(PG_GETARG_DATUM(n));  // a fixed-size by-reference type: never toasted
}

Uuid uuid_arg(FunctionCallInfo fcinfo, int n, std::string_view name) {
  const std::optional<Uuid> uuid = optional_uuid_arg(fcinfo, n);
  if (!uuid) throw_null(name);
  return *uuid;
}

std::optional<std::string_view> idempotency_key_arg(FunctionCallInfo fcinfo, int n) {
  const std::optional<std::string_view> key = text_arg(fcinfo, n);
  if (key) ledger::check_idempotency_key(*key);
  return key;
}

Jsonb* metadata_arg(FunctionCallInfo fcinfo, int n) {
  Jsonb* metadata = jsonb_arg(fcinfo, n);
  if (metadata == nullptr) return pg_call(empty_object);
  const bool object = is_object(metadata);
  // The empty object (the default) needs no text to be measured.
  const std::size_t text_bytes = !object ? 0 : JB_ROOT_COUNT(metadata) == 0 ? 2 : jsonb_text(metadata).size();
  ledger::check_metadata(object, text_bytes);
  return metadata;
}

std::int32_t int32_arg(FunctionCallInfo fcinfo, int n, std::string_view name) {
  if (PG_ARGISNULL(n)) throw_null(name);
  return PG_GETARG_INT32(n);
}

// ---- clock and ids -----------------------------------------------------------------------------------

TimestampTz clock_now() noexcept { return GetCurrentTimestamp(); }

Uuid new_uuid(TimestampTz now) noexcept {
  // Plain data: nothing to destroy at backend exit. The random bits come from a per-backend generator
  // seeded from the strong source once: ids are unique and time-ordered, not secrets, and reading the
  // strong source for each id cost more than a microsecond per call on the charge path.
  static Uuid last{};
  static pg_prng_state random_state;
  static bool seeded = false;
  if (!seeded) {
    if (!pg_prng_strong_seed(&random_state)) elog(ERROR, "could not seed the id generator");
    seeded = true;
  }
  constexpr std::int64_t kUnixEpochInPostgres =
      static_cast<std::int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
  const std::int64_t unix_micros = now + kUnixEpochInPostgres;
  const std::uint64_t random = pg_prng_uint64(&random_state);
  const Uuid candidate = ledger::uuid_v7(static_cast<std::uint64_t>(unix_micros / 1000),
                                         ledger::sub_ms_fraction(static_cast<std::uint32_t>(unix_micros % 1000)),
                                         random);
  last = ledger::uuid_after(candidate, last);
  return last;
}

// ---- Datums ------------------------------------------------------------------------------------------

Datum uuid_datum(const Uuid& uuid) noexcept {
  auto* value = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
  std::memcpy(value->data, uuid.data(), UUID_LEN);
  return UUIDPGetDatum(value);
}

Uuid uuid_of(Datum datum) noexcept {
  Uuid uuid;
  std::memcpy(uuid.data(), DatumGetUUIDP(datum)->data, UUID_LEN);
  return uuid;
}

Datum money_datum(Micros micros) noexcept {
  return NumericGetDatum(int64_div_fast_to_numeric(micros, Decimal::kMoneyScale));
}

Datum text_datum(std::string_view text) noexcept {
  return PointerGetDatum(cstring_to_text_with_len(text.data(), static_cast<int>(text.size())));
}

Datum parts_datum(std::span<const ledger::Part> parts) noexcept {
  if (parts.empty()) return PointerGetDatum(construct_empty_array(INT8OID));
  const std::size_t count = parts.size() * 2;
  auto* elements = static_cast<Datum*>(palloc(count * sizeof(Datum)));
  for (std::size_t i = 0; i < parts.size(); ++i) {
    elements[2 * i] = Int64GetDatum(parts[i].lot_id);
    elements[2 * i + 1] = Int64GetDatum(parts[i].micros);
  }
  return PointerGetDatum(construct_array(elements, static_cast<int>(count), INT8OID, sizeof(int64),
                                         FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

namespace {

// The elements of a bigint[] (never NULL elements: the ledger writes them).
Datum* int8_elements(Datum array, int* count) noexcept {
  Datum* elements = nullptr;
  bool* nulls = nullptr;
  deconstruct_array(DatumGetArrayTypeP(array), INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
                    &elements, &nulls, count);
  return elements;
}

}  // namespace

std::size_t part_count(Datum array) noexcept {
  return static_cast<std::size_t>(ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(array)),
                                                 ARR_DIMS(DatumGetArrayTypeP(array)))) /
         2;
}

void read_parts(Datum array, ledger::Part* out, std::size_t count) noexcept {
  int elements_count = 0;
  const Datum* elements = int8_elements(array, &elements_count);
  for (std::size_t i = 0; i < count && 2 * i + 1 < static_cast<std::size_t>(elements_count); ++i) {
    out[i] = {DatumGetInt64(elements[2 * i]), DatumGetInt64(elements[2 * i + 1])};
  }
}

std::vector<ledger::Part> parts_of(Datum array) {
  const std::size_t count = pg_call([&]() noexcept { return part_count(array); });
  std::vector<ledger::Part> parts(count);
  if (count > 0) pg_call([&]() noexcept { read_parts(array, parts.data(), count); });
  return parts;
}

Datum bytes_datum(std::span<const std::uint8_t> bytes) noexcept {
  auto* value = static_cast<bytea*>(palloc(VARHDRSZ + bytes.size()));
  SET_VARSIZE(value, VARHDRSZ + bytes.size());
  std::memcpy(VARDATA(value), bytes.data(), bytes.size());
  return PointerGetDatum(value);
}

// ---- session -----------------------------------------------------------------------------------------

Session open_session() {
  return pg_call([]() noexcept {
    Session session;
    session.caller = CurrentMemoryContext;
    session.security = become_extension_owner();
    spi_connect();
    return session;
  });
}

void close_session(const Session& session) {
  pg_call([&]() noexcept {
    spi_finish();
    restore_security(session.security);
  });
}

// ---- configuration -----------------------------------------------------------------------------------

Micros current_floor() {
  const ActiveConfig active = active_config();
  return active.config ? ledger::floor_micros(active.config->min_balance()) : 0;
}

// ---- result rows -------------------------------------------------------------------------------------

void ResultRow::set_uuid(int column, const std::optional<Uuid>& value) {
  if (value) set(column, pg_call([&]() noexcept { return uuid_datum(*value); }));
}

void ResultRow::set_money(int column, const std::optional<Micros>& value) {
  if (value) set(column, pg_call([&]() noexcept { return money_datum(*value); }));
}

void ResultRow::set_text(int column, const std::optional<std::string_view>& value) {
  if (value) set(column, pg_call([&]() noexcept { return text_datum(*value); }));
}

void ResultRow::set_timestamp(int column, const std::optional<TimestampTz>& value) {
  if (value) set(column, TimestampTzGetDatum(*value));
}

Datum ResultRow::finish(FunctionCallInfo fcinfo) {
  return pg_call([&]() noexcept {
    auto desc = static_cast<TupleDesc>(fcinfo->flinfo->fn_extra);
    if (desc == nullptr) {
      TupleDesc expected = nullptr;
      if (get_call_result_type(fcinfo, nullptr, &expected) != TYPEFUNC_COMPOSITE) {
        elog(ERROR, "a ducto ledger function must return a composite type");
      }
      MemoryContext previous = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
      desc = BlessTupleDesc(CreateTupleDescCopy(expected));
      MemoryContextSwitchTo(previous);
      fcinfo->flinfo->fn_extra = desc;
    }
    return HeapTupleGetDatum(heap_form_tuple(desc, values_, nulls_));
  });
}

namespace {

std::optional<std::string_view> error_text(const std::optional<ledger::Rejection>& error) {
  if (!error) return std::nullopt;
  return ledger::code_of(*error);
}

}  // namespace

Datum credit_result(FunctionCallInfo fcinfo, const CreditOutcome& outcome) {
  ResultRow row;
  row.set_uuid(0, outcome.transaction_id);
  row.set_text(1, outcome.user_id);
  row.set_money(2, outcome.amount);
  row.set_money(3, outcome.balance_after);
  row.set_bool(4, outcome.idempotent);
  row.set_text(5, error_text(outcome.error));
  return row.finish(fcinfo);
}

Datum reservation_result(FunctionCallInfo fcinfo, const ReservationOutcome& outcome) {
  ResultRow row;
  row.set_uuid(0, outcome.reservation_id);
  row.set_text(1, outcome.user_id);
  row.set_money(2, outcome.amount);
  row.set_money(3, outcome.available_after);
  row.set_timestamp(4, outcome.expires_at);
  row.set_bool(5, outcome.idempotent);
  row.set_text(6, error_text(outcome.error));
  return row.finish(fcinfo);
}

Datum refund_result(FunctionCallInfo fcinfo, const RefundOutcome& outcome) {
  ResultRow row;
  row.set_uuid(0, outcome.refund_transaction_id);
  row.set_uuid(1, outcome.original_transaction_id);
  row.set_text(2, outcome.user_id);
  row.set_money(3, outcome.amount);
  row.set_money(4, outcome.balance_after);
  row.set_bool(5, outcome.idempotent);
  row.set_text(6, error_text(outcome.error));
  return row.finish(fcinfo);
}

Datum charge_result(FunctionCallInfo fcinfo, const ChargeOutcome& outcome) {
  ResultRow row;
  row.set_uuid(0, outcome.transaction_id);
  row.set_text(1, outcome.user_id);
  row.set_money(2, outcome.amount);
  row.set_money(3, outcome.balance_after);
  if (outcome.breakdown != nullptr) row.set(4, JsonbPGetDatum(outcome.breakdown));
  row.set_bool(5, outcome.idempotent);
  row.set_text(6, error_text(outcome.error));
  row.set_money(7, outcome.allowance_used);
  return row.finish(fcinfo);
}

// ---- event data --------------------------------------------------------------------------------------

std::string_view EventData::keep(std::string text) { return texts_.emplace_back(std::move(text)); }

EventData& EventData::text(std::string_view key, std::optional<std::string_view> value) {
  if (value) members_.push_back({key, jsonb_string(*value)});
  return *this;
}

EventData& EventData::uuid(std::string_view key, const std::optional<Uuid>& value) {
  if (value) members_.push_back({key, jsonb_string(keep(ledger::to_string(*value)))});
  return *this;
}

EventData& EventData::money(std::string_view key, std::optional<Micros> value) {
  if (value) {
    const Datum number = pg_call([&]() noexcept { return money_datum(*value); });
    members_.push_back({key, jsonb_numeric(DatumGetNumeric(number))});
  }
  return *this;
}

EventData& EventData::timestamp(std::string_view key, std::optional<TimestampTz> value) {
  if (value) {
    // ISO 8601 in UTC, whatever the session's TimeZone: event data is read by other sessions.
    const char* text = pg_call([&]() noexcept {
      const int utc = 0;
      return JsonEncodeDateTime(nullptr, TimestampTzGetDatum(*value), TIMESTAMPTZOID, &utc);
    });
    members_.push_back({key, jsonb_string(text)});
  }
  return *this;
}

EventData& EventData::document(std::string_view key, Jsonb* value) {
  if (value != nullptr) {
    JsonbValue nested;
    nested.type = jbvBinary;
    nested.val.binary.data = &value->root;
    nested.val.binary.len = static_cast<int>(VARSIZE_ANY_EXHDR(value));
    members_.push_back({key, nested});
  }
  return *this;
}

Jsonb* EventData::build() {
  const std::span<const Member> members = members_;
  return pg_call([&]() noexcept {
    JsonbParseState* state = nullptr;
    pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
    for (const Member& member : members) {
      JsonbValue key = jsonb_string(member.key);
      JsonbValue value = member.value;
      pushJsonbValue(&state, WJB_KEY, &key);
      pushJsonbValue(&state, WJB_VALUE, &value);
    }
    return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, nullptr));
  });
}

Jsonb* empty_object() noexcept {
  static Jsonb* empty = nullptr;
  if (empty == nullptr) {
    MemoryContext previous = MemoryContextSwitchTo(TopMemoryContext);
    JsonbValue object;
    object.type = jbvObject;
    object.val.object.nPairs = 0;
    object.val.object.pairs = nullptr;
    empty = JsonbValueToJsonb(&object);
    MemoryContextSwitchTo(previous);
  }
  return empty;
}

}  // namespace ducto::pg
