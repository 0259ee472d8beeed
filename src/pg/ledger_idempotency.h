// src/pg/ledger_idempotency.h: idempotency keys of the credit operations (design.md, Idempotency).
//
// A key is scoped to one account across all operations (a refund's account is its debit's). The row an
// operation writes (a ledger entry, or a hold for reserve_credits) carries the key and the SHA-256 of
// the request's canonical bytes (core/ledger/request.h). Under the account lock, before any other work
// of the call, the key is looked up: the same digest replays the stored result, another digest is an
// idempotency_conflict. Rejected calls write no keyed row, so they bind nothing.
#pragma once
#include "pg/pg_headers.h"

#include <optional>
#include <string_view>

#include "core/ledger/request.h"
#include "pg/ledger_common.h"
#include "pg/ledger_store.h"

namespace ducto::pg {

// SHA-256 of the request's bytes (Postgres' cryptohash: OpenSSL when built with it).
Digest request_digest(const ledger::RequestBytes& request);

// The row an account's key is bound to.
struct KeyedRow {
  bool same_request = false;
  bool is_hold = false;  // from ducto.holds (reserve_credits); otherwise a ledger entry
  Uuid id{};
  Micros amount = 0;         // the entry's signed amount, or the hold's amount
  Micros balance_after = 0;  // the entry's balance_after, or the hold's available_after
  std::optional<Uuid> original_id;        // refunds
  std::optional<TimestampTz> expires_at;  // holds
  Jsonb* breakdown = nullptr;             // charges; in the caller's memory context
  Micros allowance_used = 0;              // charges: what the plan's free allowance paid
};

// The row bound to `key` in the account, compared with `digest`; nullopt when the key is free.
std::optional<KeyedRow> find_keyed_row(const Session& session, std::int64_t account_id, std::string_view key,
                                       const Digest& digest);

// The idempotency check of every keyed call, under the account lock and before any other work: when
// `key` is already bound in the account, the call is answered by that row: replay(const KeyedRow&) for
// the same request, refuse(idempotency_conflict, balance) for another. Returns whether it was answered.
template <class Replay, class Refuse>
bool answered_by_key(const Session& session, const Account& account, std::optional<std::string_view> key,
                     const std::optional<Digest>& digest, Replay&& replay, Refuse&& refuse) {
  if (!key) return false;
  const std::optional<KeyedRow> keyed = find_keyed_row(session, account.id, *key, *digest);
  if (!keyed) return false;
  if (keyed->same_request) {
    replay(*keyed);
  } else {
    refuse(ledger::Rejection::idempotency_conflict, std::optional<Micros>(account.balance));
  }
  return true;
}

}  // namespace ducto::pg
