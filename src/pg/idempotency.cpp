// src/pg/idempotency.cpp: request digests and the lookup of an account's idempotency key
// (see ledger_idempotency.h).
#include "pg/ledger_idempotency.h"

extern "C" {
#include "common/cryptohash.h"
#include "common/sha2.h"
}

#include <cstring>

#include "pg/bridge.h"

namespace ducto::pg {

namespace {

// C zone.
void sha256(const std::string& bytes, Digest* digest) noexcept {
  pg_cryptohash_ctx* context = pg_cryptohash_create(PG_SHA256);
  if (pg_cryptohash_init(context) < 0 ||
      pg_cryptohash_update(context, reinterpret_cast<const uint8*>(bytes.data()), bytes.size()) < 0 ||
      pg_cryptohash_final(context, digest->data(), digest->size()) < 0) {
    elog(ERROR, "could not compute a request digest: %s", pg_cryptohash_error(context));
  }
  pg_cryptohash_free(context);
}

}  // namespace

Digest request_digest(const ledger::RequestBytes& request) {
  static_assert(std::tuple_size_v<Digest> == PG_SHA256_DIGEST_LENGTH);
  Digest digest{};
  const std::string& bytes = request.bytes();
  pg_call([&]() noexcept { sha256(bytes, &digest); });
  return digest;
}

std::optional<KeyedRow> find_keyed_row(const Session& session, std::int64_t account_id, std::string_view key,
                                       const Digest& digest) {
  // Both tables in one statement; each branch is an index lookup on (account_id, idempotency_key).
  static SavedPlan keyed(
      "SELECT false, l.id, l.amount, l.balance_after, l.original_id, NULL::pg_catalog.timestamptz, l.breakdown, "
      "l.request_digest, l.allowance_used FROM ducto.ledger AS l "
      "WHERE l.account_id OPERATOR(pg_catalog.=) $1 AND l.idempotency_key OPERATOR(pg_catalog.=) $2 "
      "UNION ALL "
      "SELECT true, h.id, h.amount, h.available_after, NULL::pg_catalog.uuid, h.expires_at, NULL::pg_catalog.jsonb, "
      "h.request_digest, NULL::pg_catalog.int8 FROM ducto.holds AS h "
      "WHERE h.account_id OPERATOR(pg_catalog.=) $1 AND h.idempotency_key OPERATOR(pg_catalog.=) $2",
      {INT8OID, TEXTOID});
  KeyedRow row;
  const bool found = pg_call([&]() noexcept {
    Datum values[] = {Int64GetDatum(account_id), text_datum(key)};
    if (spi_run(keyed, values, nullptr, false, 1) == 0) return false;
    bool is_null = false;
    row.is_hold = DatumGetBool(spi_value(0, 1, &is_null));
    row.id = uuid_of(spi_value(0, 2, &is_null));
    row.amount = DatumGetInt64(spi_value(0, 3, &is_null));
    row.balance_after = DatumGetInt64(spi_value(0, 4, &is_null));
    const Datum original = spi_value(0, 5, &is_null);
    if (!is_null) row.original_id = uuid_of(original);
    const Datum expires_at = spi_value(0, 6, &is_null);
    if (!is_null) row.expires_at = DatumGetTimestampTz(expires_at);
    const Datum breakdown = spi_value(0, 7, &is_null);
    if (!is_null) {
      // The result is built after SPI_finish frees SPI's memory.
      MemoryContext spi_context = MemoryContextSwitchTo(session.caller);
      row.breakdown = DatumGetJsonbPCopy(breakdown);
      MemoryContextSwitchTo(spi_context);
    }
    const Datum allowance_used = spi_value(0, 9, &is_null);
    if (!is_null) row.allowance_used = DatumGetInt64(allowance_used);
    const Datum stored = spi_value(0, 8, &is_null);
    if (!is_null) {
      const bytea* bytes = DatumGetByteaPP(stored);
      row.same_request = VARSIZE_ANY_EXHDR(bytes) == digest.size() &&
                         std::memcmp(VARDATA_ANY(bytes), digest.data(), digest.size()) == 0;
    }
    return true;
  });
  if (!found) return std::nullopt;
  return row;
}

}  // namespace ducto::pg
