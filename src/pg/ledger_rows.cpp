// src/pg/ledger_rows.cpp: lots, ledger entries and holds as the credit operations read and write them
// (see ledger_store.h). Ledger entries, lot updates and the debit's lots read go through direct_rows.h
// (no statement); the rest are saved plans, in which every object and operator is schema-qualified, so
// the caller's search_path cannot redirect a statement (the plans are re-analysed under whatever path
// is current).
#include "pg/ledger_store.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "pg/bridge.h"
#include "pg/convert.h"
#include "pg/direct_rows.h"

namespace ducto::pg {

namespace {

// C zone. The Datum of an optional text (0 when absent: its null flag says so).
Datum optional_text(const std::optional<std::string_view>& value) noexcept {
  return value ? text_datum(*value) : Datum(0);
}
char null_flag(bool present) noexcept { return present ? ' ' : 'n'; }

// The lot columns every lot read takes, in this order (the SPI reads select them, then l.ctid).
RowColumns lot_columns{"id", "remaining", "earmarked", "expires_at"};
constexpr int kLotColumns = 4;

// C zone. A lot from the values of lot_columns and the row's address.
ledger::Lot lot_from(const Datum* values, const bool* nulls, RowId row) noexcept {
  ledger::Lot lot;
  lot.id = DatumGetInt64(values[0]);
  lot.remaining = DatumGetInt64(values[1]);
  lot.earmarked = DatumGetInt64(values[2]);
  if (!nulls[3]) lot.expires_at = DatumGetTimestampTz(values[3]);
  lot.row = row;
  return lot;
}

// C zone. The lot in row `row` of the last SPI result: lot_columns, then ctid.
ledger::Lot lot_at(std::uint64_t row) noexcept {
  Datum values[kLotColumns];
  bool nulls[kLotColumns];
  for (int column = 0; column < kLotColumns; ++column) values[column] = spi_value(row, column + 1, &nulls[column]);
  bool is_null = false;
  return lot_from(values, nulls, row_id_of_datum(spi_value(row, kLotColumns + 1, &is_null)));
}

// Runs a lot query and copies its rows out of SPI memory.
std::vector<ledger::Lot> lot_query(SavedPlan& plan, Datum* values, long max_rows, bool read_only = false) {
  const std::uint64_t rows = pg_call([&]() noexcept { return spi_run(plan, values, nullptr, read_only, max_rows); });
  std::vector<ledger::Lot> lots(rows);
  ledger::Lot* out = lots.data();
  pg_call([&]() noexcept {
    for (std::uint64_t row = 0; row < rows; ++row) out[row] = lot_at(row);
  });
  return lots;
}

// C zone. Text column `column` of row `row`, or an empty view for NULL (valid until the next SPI call).
std::string_view text_at(std::uint64_t row, int column) noexcept {
  bool is_null = false;
  const Datum value = spi_value(row, column, &is_null);
  if (is_null) return {};
  return view_of(DatumGetTextPP(value));
}

}  // namespace

// ---- ledger entries ----------------------------------------------------------------------------------

namespace {

constexpr int kEntryColumns = 23;

// C zone. The values and null flags of an entry's columns, in the order insert_entry names them.
void entry_values(const Uuid& id, const std::optional<Uuid>& prev_id, std::int64_t account_id, Micros balance_after,
                  TimestampTz created_at, const Entry& entry, Jsonb* metadata, Datum* values, bool* nulls) noexcept {
  const Datum row[kEntryColumns] = {
      uuid_datum(id),
      Int64GetDatum(account_id),
      text_datum(ledger::name_of(entry.kind)),
      Int64GetDatum(entry.amount),
      Int64GetDatum(balance_after),
      TimestampTzGetDatum(created_at),
      parts_datum(entry.allocations),
      entry.reservation_id ? uuid_datum(*entry.reservation_id) : Datum(0),
      entry.original_id ? uuid_datum(*entry.original_id) : Datum(0),
      Int64GetDatum(entry.lot_id.value_or(0)),
      optional_text(entry.source),
      optional_text(entry.reason),
      optional_text(entry.operation_type),
      optional_text(entry.model),
      JsonbPGetDatum(entry.metrics),
      JsonbPGetDatum(entry.breakdown),
      Int32GetDatum(entry.config_version.value_or(0)),
      optional_text(entry.idempotency_key),
      entry.digest ? bytes_datum(*entry.digest) : Datum(0),
      JsonbPGetDatum(metadata),
      Int64GetDatum(entry.allowance_used.value_or(0)),
      optional_text(entry.member_user_id),
      prev_id ? uuid_datum(*prev_id) : Datum(0),
  };
  const bool absent[kEntryColumns] = {false,
                                      false,
                                      false,
                                      false,
                                      false,
                                      false,
                                      false,
                                      !entry.reservation_id,
                                      !entry.original_id,
                                      !entry.lot_id,
                                      !entry.source,
                                      !entry.reason,
                                      !entry.operation_type,
                                      !entry.model,
                                      entry.metrics == nullptr,
                                      entry.breakdown == nullptr,
                                      !entry.config_version,
                                      !entry.idempotency_key,
                                      !entry.digest,
                                      false,
                                      !entry.allowance_used,
                                      !entry.member_user_id,
                                      !prev_id};
  std::memcpy(values, row, sizeof row);
  std::memcpy(nulls, absent, sizeof absent);
}

}  // namespace

void insert_entry(const Uuid& id, const std::optional<Uuid>& prev_id, std::int64_t account_id, Micros balance_after,
                  TimestampTz created_at, const Entry& entry) {
  static RowColumns columns{"id",           "account_id",     "kind",            "amount",         "balance_after",
                            "created_at",   "allocations",    "reservation_id",  "original_id",    "lot_id",
                            "source",       "reason",         "operation_type",  "model",          "metrics",
                            "breakdown",    "config_version", "idempotency_key", "request_digest", "metadata",
                            "allowance_used", "member_user_id", "prev_id"};
  Jsonb* metadata = entry.metadata != nullptr ? entry.metadata : pg_call(empty_object);
  pg_call([&]() noexcept {
    Datum values[kEntryColumns];
    bool nulls[kEntryColumns];
    entry_values(id, prev_id, account_id, balance_after, created_at, entry, metadata, values, nulls);
    insert_row(ducto_relation("ledger"), columns, values, nulls);
  });
}

std::optional<StoredEntry> read_entry(const Uuid& id) {
  static SavedPlan read(
      "SELECT l.account_id, l.kind, l.amount, l.allocations FROM ducto.ledger AS l "
      "WHERE l.id OPERATOR(pg_catalog.=) $1",
      {UUIDOID});
  StoredEntry entry;
  std::string_view kind;
  Datum allocations = 0;
  const bool found = pg_call([&]() noexcept {
    Datum values[] = {uuid_datum(id)};
    if (spi_run(read, values, nullptr, false, 1) != 1) return false;
    bool is_null = false;
    entry.account_id = DatumGetInt64(spi_value(0, 1, &is_null));
    kind = text_at(0, 2);
    entry.amount = DatumGetInt64(spi_value(0, 3, &is_null));
    allocations = spi_value(0, 4, &is_null);
    return true;
  });
  if (!found) return std::nullopt;
  entry.kind = ledger::entry_kind_named(kind);
  entry.parts = parts_of(allocations);
  return entry;
}

Micros refunded_so_far(const Uuid& original_id) {
  static SavedPlan refunds(
      "SELECT l.amount FROM ducto.ledger AS l WHERE l.original_id OPERATOR(pg_catalog.=) $1", {UUIDOID});
  const std::uint64_t rows = pg_call([&]() noexcept {
    Datum values[] = {uuid_datum(original_id)};
    return spi_run(refunds, values, nullptr, false, 0);
  });
  Micros total = 0;
  for (std::uint64_t row = 0; row < rows; ++row) {
    const Micros amount = pg_call([&]() noexcept {
      bool is_null = false;
      return DatumGetInt64(spi_value(row, 1, &is_null));
    });
    total = ledger::checked_add(total, amount);
  }
  return total;
}

// ---- lots --------------------------------------------------------------------------------------------

std::vector<ledger::Lot> usable_lots(std::int64_t account_id, TimestampTz now, Micros needed) {
  // The lots found, in palloc'd memory: the C zone below holds no std::vector.
  struct Found {
    ledger::Lot* lots;
    int count;
    int capacity;
  } found{nullptr, 0, 0};
  pg_call([&]() noexcept {
    Micros free = 0;
    // lots_consumption's order is the consumption order: read the account's lots through it until they
    // cover `needed` (usually the first one does), passing over expired and fully used ones.
    scan_by_bigint_key(ducto_relation("lots"), ducto_relation("lots_consumption"), account_id, lot_columns,
                       [&](const ScannedRow& row) noexcept {
                         const ledger::Lot lot = lot_from(row.values, row.nulls, row.row);
                         if (lot.free() <= 0 || lot.expired_at(now)) return true;
                         if (found.count == found.capacity) {
                           found.capacity = found.capacity == 0 ? 4 : found.capacity * 2;
                           const std::size_t bytes = sizeof(ledger::Lot) * static_cast<std::size_t>(found.capacity);
                           found.lots = static_cast<ledger::Lot*>(found.lots == nullptr ? palloc(bytes)
                                                                                         : repalloc(found.lots, bytes));
                         }
                         std::memcpy(static_cast<void*>(&found.lots[found.count++]), &lot, sizeof lot);
                         if (__builtin_add_overflow(free, lot.free(), &free)) free = INT64_MAX;
                         return free < needed;
                       });
  });
  return std::vector<ledger::Lot>(found.lots, found.lots + found.count);
}

std::vector<ledger::Lot> lots_by_id(std::span<const std::int64_t> ids, bool read_only) {
  static SavedPlan by_id(
      "SELECT l.id, l.remaining, l.earmarked, l.expires_at, l.ctid FROM ducto.lots AS l "
      "WHERE l.id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY l.expires_at, l.created_at, l.id",
      {INT8ARRAYOID});
  if (ids.empty()) return {};
  const Datum array = pg_call([&]() noexcept {
    auto* elements = static_cast<Datum*>(palloc(ids.size() * sizeof(Datum)));
    for (std::size_t i = 0; i < ids.size(); ++i) elements[i] = Int64GetDatum(ids[i]);
    return PointerGetDatum(construct_array(elements, static_cast<int>(ids.size()), INT8OID, sizeof(int64),
                                           FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  });
  Datum values[] = {array};
  return lot_query(by_id, values, 0, read_only);
}

std::vector<ledger::Lot> expired_lots(std::int64_t account_id, TimestampTz now, bool read_only) {
  static SavedPlan expired(
      "SELECT l.id, l.remaining, l.earmarked, l.expires_at, l.ctid FROM ducto.lots AS l "
      "WHERE l.account_id OPERATOR(pg_catalog.=) $1 AND l.expires_at OPERATOR(pg_catalog.<=) $2 "
      "AND l.remaining OPERATOR(pg_catalog.>) l.earmarked ORDER BY l.expires_at, l.created_at, l.id",
      {INT8OID, TIMESTAMPTZOID});
  Datum values[] = {Int64GetDatum(account_id), TimestampTzGetDatum(now)};
  return lot_query(expired, values, 0, read_only);
}

void write_lots(std::span<const ledger::Lot> lots) {
  static RowColumns columns{"remaining", "earmarked"};
  for (const ledger::Lot& lot : lots) {
    pg_call([&]() noexcept {
      const Datum values[] = {Int64GetDatum(lot.remaining), Int64GetDatum(lot.earmarked)};
      update_row(ducto_relation("lots"), lot.row, lot.id, columns, values, nullptr);
    });
  }
}

std::int64_t insert_lot(std::int64_t account_id, Micros granted, Micros remaining, std::optional<TimestampTz> expires_at,
                        TimestampTz created_at, const Uuid& transaction_id) {
  static SavedPlan insert(
      "INSERT INTO ducto.lots (account_id, granted, remaining, expires_at, created_at, transaction_id) "
      "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
      {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID});
  return pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id), Int64GetDatum(granted),  Int64GetDatum(remaining),
                      TimestampTzGetDatum(expires_at.value_or(0)), TimestampTzGetDatum(created_at),
                      uuid_datum(transaction_id)};
    const char nulls[] = {' ', ' ', ' ', null_flag(expires_at.has_value()), ' ', ' ', '\0'};
    spi_run(insert, values, nulls, false, 0);
    bool is_null = false;
    return DatumGetInt64(spi_value(0, 1, &is_null));
  });
}

std::optional<TimestampTz> next_expiry_of(std::int64_t account_id) {
  static SavedPlan next(
      "SELECT pg_catalog.min(s.at) FROM ("
      "SELECT h.expires_at AS at FROM ducto.holds AS h "
      "WHERE h.account_id OPERATOR(pg_catalog.=) $1 AND h.state OPERATOR(pg_catalog.=) 'active' "
      "UNION ALL SELECT l.expires_at FROM ducto.lots AS l "
      "WHERE l.account_id OPERATOR(pg_catalog.=) $1 AND l.expires_at IS NOT NULL "
      "AND l.remaining OPERATOR(pg_catalog.>) l.earmarked) AS s",
      {INT8OID});
  bool is_null = true;
  const TimestampTz at = pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id)};
    spi_run(next, values, nullptr, false, 1);
    return DatumGetTimestampTz(spi_value(0, 1, &is_null));
  });
  if (is_null) return std::nullopt;
  return at;
}

std::vector<std::int64_t> lot_ids(std::span<const ledger::Part> parts) {
  std::vector<std::int64_t> ids;
  for (const ledger::Part& part : parts) {
    if (part.lot_id != ledger::kOverdraft && std::find(ids.begin(), ids.end(), part.lot_id) == ids.end()) {
      ids.push_back(part.lot_id);
    }
  }
  return ids;
}

std::vector<std::int64_t> lot_ids(std::span<const ledger::Lot> lots) {
  std::vector<std::int64_t> ids;
  ids.reserve(lots.size());
  for (const ledger::Lot& lot : lots) ids.push_back(lot.id);
  return ids;
}

// ---- holds -------------------------------------------------------------------------------------------

namespace {

// Reads the holds of the last SPI result (id, amount, allocations, state, operation_type, expires_at,
// available_after, finished_available_after, account_id).
std::vector<Hold> hold_rows(std::uint64_t rows) {
  std::vector<Hold> holds(rows);
  for (std::uint64_t row = 0; row < rows; ++row) {
    Hold& hold = holds[row];
    std::string_view state;
    std::string_view operation_type;
    Datum allocations = 0;
    pg_call([&]() noexcept {
      bool is_null = false;
      hold.id = uuid_of(spi_value(row, 1, &is_null));
      hold.amount = DatumGetInt64(spi_value(row, 2, &is_null));
      allocations = spi_value(row, 3, &is_null);
      state = text_at(row, 4);
      operation_type = text_at(row, 5);
      hold.expires_at = DatumGetTimestampTz(spi_value(row, 6, &is_null));
      hold.available_after = DatumGetInt64(spi_value(row, 7, &is_null));
      const Datum finished = spi_value(row, 8, &is_null);
      if (!is_null) hold.finished_available_after = DatumGetInt64(finished);
      hold.account_id = DatumGetInt64(spi_value(row, 9, &is_null));
    });
    hold.parts = parts_of(allocations);
    hold.state = ledger::hold_state_named(state);
    hold.operation_type.assign(operation_type);
  }
  return holds;
}

// In expiry order, so events and entries come out the same way every time.
void sort_by_expiry(std::vector<Hold>& holds) {
  std::sort(holds.begin(), holds.end(), [](const Hold& a, const Hold& b) {
    return a.expires_at != b.expires_at ? a.expires_at < b.expires_at : a.id < b.id;
  });
}

}  // namespace

std::optional<Hold> read_hold(const Uuid& id) {
  static SavedPlan read(
      "SELECT h.id, h.amount, h.allocations, h.state, h.operation_type, h.expires_at, h.available_after, "
      "h.finished_available_after, h.account_id FROM ducto.holds AS h WHERE h.id OPERATOR(pg_catalog.=) $1",
      {UUIDOID});
  const std::uint64_t rows = pg_call([&]() noexcept {
    Datum values[] = {uuid_datum(id)};
    return spi_run(read, values, nullptr, false, 1);
  });
  if (rows == 0) return std::nullopt;
  return std::move(hold_rows(rows).front());
}

void insert_hold(const NewHold& hold) {
  static SavedPlan insert(
      "INSERT INTO ducto.holds (id, account_id, amount, allocations, operation_type, expires_at, created_at, "
      "available_after, idempotency_key, request_digest, metadata) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      {UUIDOID, INT8OID, INT8OID, INT8ARRAYOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, TEXTOID,
       BYTEAOID, JSONBOID});
  Jsonb* metadata = hold.metadata != nullptr ? hold.metadata : pg_call(empty_object);
  pg_call([&]() noexcept {
    Datum values[] = {uuid_datum(hold.id),
                      Int64GetDatum(hold.account_id),
                      Int64GetDatum(hold.amount),
                      parts_datum(hold.parts),
                      text_datum(hold.operation_type),
                      TimestampTzGetDatum(hold.expires_at),
                      TimestampTzGetDatum(hold.created_at),
                      Int64GetDatum(hold.available_after),
                      optional_text(hold.idempotency_key),
                      hold.digest ? bytes_datum(*hold.digest) : Datum(0),
                      JsonbPGetDatum(metadata)};
    const char nulls[] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', null_flag(hold.idempotency_key.has_value()),
                          null_flag(hold.digest.has_value()), ' ', '\0'};
    spi_run(insert, values, nulls, false, 0);
  });
}

void finish_hold(const Uuid& id, ledger::HoldState state, TimestampTz at, std::optional<Uuid> settled_by,
                 std::optional<Micros> available_after) {
  static SavedPlan finish(
      "UPDATE ducto.holds AS h SET state = $2, finished_at = $3, settled_by = $4, finished_available_after = $5 "
      "WHERE h.id OPERATOR(pg_catalog.=) $1",
      {UUIDOID, TEXTOID, TIMESTAMPTZOID, UUIDOID, INT8OID});
  const std::string_view state_name = ledger::name_of(state);
  pg_call([&]() noexcept {
    Datum values[] = {uuid_datum(id), text_datum(state_name), TimestampTzGetDatum(at),
                      settled_by ? uuid_datum(*settled_by) : Datum(0), Int64GetDatum(available_after.value_or(0))};
    const char nulls[] = {' ', ' ', ' ', null_flag(settled_by.has_value()), null_flag(available_after.has_value()),
                          '\0'};
    spi_run(finish, values, nulls, false, 0);
  });
}

std::vector<Hold> expire_holds(std::int64_t account_id, TimestampTz now) {
  static SavedPlan expire(
      "UPDATE ducto.holds AS h SET state = 'expired', finished_at = $2 "
      "WHERE h.account_id OPERATOR(pg_catalog.=) $1 AND h.state OPERATOR(pg_catalog.=) 'active' "
      "AND h.expires_at OPERATOR(pg_catalog.<=) $2 "
      "RETURNING h.id, h.amount, h.allocations, h.state, h.operation_type, h.expires_at, h.available_after, "
      "h.finished_available_after, h.account_id",
      {INT8OID, TIMESTAMPTZOID});
  const std::uint64_t rows = pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id), TimestampTzGetDatum(now)};
    return spi_run(expire, values, nullptr, false, 0);
  });
  std::vector<Hold> holds = hold_rows(rows);
  sort_by_expiry(holds);
  return holds;
}

std::vector<Hold> holds_past_expiry(std::int64_t account_id, TimestampTz now) {
  static SavedPlan past(
      "SELECT h.id, h.amount, h.allocations, h.state, h.operation_type, h.expires_at, h.available_after, "
      "h.finished_available_after, h.account_id FROM ducto.holds AS h "
      "WHERE h.account_id OPERATOR(pg_catalog.=) $1 AND h.state OPERATOR(pg_catalog.=) 'active' "
      "AND h.expires_at OPERATOR(pg_catalog.<=) $2",
      {INT8OID, TIMESTAMPTZOID});
  const std::uint64_t rows = pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id), TimestampTzGetDatum(now)};
    return spi_run(past, values, nullptr, true, 0);
  });
  std::vector<Hold> holds = hold_rows(rows);
  sort_by_expiry(holds);
  return holds;
}

}  // namespace ducto::pg
