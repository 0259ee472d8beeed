// src/pg/ledger_credit.cpp: ducto.add_credits, ducto.get_balance and ducto.transactions (issue 3).
//
// add_credits creates the account on its first credit and adds a lot (repaying any debt first);
// get_balance and transactions only read, and never create an account. get_balance shows the clock's
// view: holds past their expiry no longer count as reserved and expired lots no longer count in the
// balance, whether or not lazy expiry or the sweep has posted them yet.
#include "pg/pg_headers.h"

#include <optional>
#include <string_view>
#include <vector>

#include "core/ledger/lots.h"
#include "core/ledger/request.h"
#include "core/ledger/validate.h"
#include "pg/bridge.h"
#include "pg/config_cache.h"
#include "pg/convert.h"
#include "pg/ledger_common.h"
#include "pg/ledger_idempotency.h"
#include "pg/ledger_store.h"
#include "pg/policies.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_add_credits);
PG_FUNCTION_INFO_V1(ducto_get_balance);
PG_FUNCTION_INFO_V1(ducto_transactions);
}

namespace ducto::pg {
namespace {

// ---- add_credits -------------------------------------------------------------------------------------

Datum add_credits(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const Micros amount = amount_arg(fcinfo, 1);
  const std::string_view source = text_arg(fcinfo, 2).value_or("adjustment");
  ledger::check_label(source, "source");
  const std::optional<TimestampTz> expires_at =
      PG_ARGISNULL(3) ? std::nullopt : std::optional<TimestampTz>(PG_GETARG_TIMESTAMPTZ(3));
  const std::optional<std::string_view> key = idempotency_key_arg(fcinfo, 4);
  Jsonb* metadata = metadata_arg(fcinfo, 5);
  const TimestampTz now = clock_now();
  if (expires_at) ledger::check_expires_at(*expires_at, now);
  std::optional<Digest> digest;
  if (key) {
    digest = request_digest(ledger::RequestBytes("add_credits")
                                .text(user_id)
                                .integer(amount)
                                .text(source)
                                .integer(expires_at)
                                .text(key)
                                .text(jsonb_bytes(metadata)));
  }

  const Session session = open_session();
  Operation op(now, user_id, lock_or_create_account(user_id));
  op.expire_due();
  CreditOutcome outcome;
  outcome.user_id = user_id;
  const auto replay = [&](const KeyedRow& row) {
    outcome.transaction_id = row.id;
    outcome.amount = row.amount;
    outcome.balance_after = row.balance_after;
    outcome.idempotent = true;
  };
  // A conflicting grant is refused without a failure event (credits.deduct_failed is for debits).
  const auto refuse = [&](ledger::Rejection error, std::optional<Micros>) {
    outcome.amount = amount;
    outcome.error = error;
  };
  if (answered_by_key(session, op.account(), key, digest, replay, refuse)) {
    op.save();
    close_session(session);
    return credit_result(fcinfo, outcome);
  }

  Account& account = op.account();
  const Uuid id = op.next_entry_id();
  // Credit first pays back what an overdraft left owing; the rest is the lot's.
  const Micros repaid = ledger::debt_repaid_by_grant(account.debt, amount);
  const std::int64_t lot_id = insert_lot(account.id, amount, amount - repaid, expires_at, now, id);
  account.debt -= repaid;
  account.balance = ledger::checked_add(account.balance, amount);
  if (amount > repaid) op.expiry_at_most(expires_at);
  std::vector<ledger::Part> parts = {{lot_id, amount - repaid}};
  if (repaid > 0) parts.push_back({ledger::kOverdraft, repaid});
  Entry entry;
  entry.kind = ledger::EntryKind::grant;
  entry.amount = amount;
  entry.allocations = parts;
  entry.source = source;
  entry.idempotency_key = key;
  entry.digest = digest;
  entry.metadata = metadata;
  op.append(id, entry);
  op.emit("credits.added", amount, account.balance,
          EventData()
              .uuid("transaction_id", id)
              .text("source", source)
              .timestamp("expires_at", expires_at)
              .text("idempotency_key", key)
              .document("metadata", metadata)
              .build());
  op.save();
  close_session(session);
  outcome.transaction_id = id;
  outcome.amount = amount;
  outcome.balance_after = account.balance;
  return credit_result(fcinfo, outcome);
}

// ---- get_balance -------------------------------------------------------------------------------------

// The balance and reserved credit of an account as lazy expiry would leave them at `now`.
void apply_clock(const Account& account, TimestampTz now, Micros& balance, Micros& reserved) {
  const std::vector<Hold> holds = holds_past_expiry(account.id, now);
  ledger::LotBook book;
  std::vector<std::int64_t> held_lots;
  for (const Hold& hold : holds) {
    for (const std::int64_t id : lot_ids(hold.parts)) held_lots.push_back(id);
  }
  for (const ledger::Lot& lot : lots_by_id(held_lots, true)) book.add(lot);
  for (const ledger::Lot& lot : expired_lots(account.id, now, true)) book.add(lot);
  for (const Hold& hold : holds) {
    ledger::release_hold(book, hold.parts);
    reserved = ledger::checked_sub(reserved, hold.amount);
  }
  balance = ledger::checked_sub(balance, ledger::total_of(ledger::expire_due(book, now)));
}

Datum get_balance(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const TimestampTz now = clock_now();
  Micros balance = 0;
  Micros reserved = 0;
  Micros allowance = 0;
  const ActiveConfig active = active_config();
  const Session session = open_session();
  if (const std::optional<Account> account = read_account(user_id)) {
    balance = account->balance;
    reserved = account->reserved;
    if (account->next_expiry_at && *account->next_expiry_at <= now) apply_clock(*account, now, balance, reserved);
    if (account->policies) allowance = allowance_remaining_of(account->id, active.config.get(), now);
  }
  close_session(session);
  ResultRow row;
  row.set_text(0, user_id);
  row.set_money(1, balance);
  row.set_money(2, reserved);
  row.set_money(3, ledger::checked_sub(balance, reserved));
  row.set_money(4, allowance);
  return row.finish(fcinfo);
}

// ---- transactions ------------------------------------------------------------------------------------

constexpr int kTransactionColumns = 13;

// C zone. Puts the account's entries, newest first, into the function's tuplestore: from its
// last_entry_id, or from the prev_id of `before` (an entry of the account; $3 is the account, so an
// entry of another account yields nothing). A recursive walk along prev_id through the primary key; the
// LIMIT stops it after max_rows entries.
void put_entries(FunctionCallInfo fcinfo, const Account& account, const Uuid* before, std::int32_t max_rows) noexcept {
  static SavedPlan newest(
      "WITH RECURSIVE chain AS (SELECT "
      "l.id, l.kind, l.amount, l.balance_after, l.created_at, l.reservation_id, l.original_id, l.source, "
      "l.reason, l.model, l.breakdown, l.idempotency_key, l.metadata, l.prev_id "
      "FROM ducto.ledger AS l WHERE l.id OPERATOR(pg_catalog.=) $1 AND l.account_id OPERATOR(pg_catalog.=) $3 "
      "UNION ALL SELECT "
      "l.id, l.kind, l.amount, l.balance_after, l.created_at, l.reservation_id, l.original_id, l.source, "
      "l.reason, l.model, l.breakdown, l.idempotency_key, l.metadata, l.prev_id "
      "FROM chain AS c JOIN ducto.ledger AS l ON l.id OPERATOR(pg_catalog.=) c.prev_id) "
      "SELECT * FROM chain LIMIT $2",
      {UUIDOID, INT8OID, INT8OID});
  static SavedPlan older(
      "WITH RECURSIVE chain AS (SELECT "
      "l.id, l.kind, l.amount, l.balance_after, l.created_at, l.reservation_id, l.original_id, l.source, "
      "l.reason, l.model, l.breakdown, l.idempotency_key, l.metadata, l.prev_id "
      "FROM ducto.ledger AS l WHERE l.id OPERATOR(pg_catalog.=) (SELECT b.prev_id FROM ducto.ledger AS b "
      "WHERE b.id OPERATOR(pg_catalog.=) $1 AND b.account_id OPERATOR(pg_catalog.=) $3) "
      "UNION ALL SELECT "
      "l.id, l.kind, l.amount, l.balance_after, l.created_at, l.reservation_id, l.original_id, l.source, "
      "l.reason, l.model, l.breakdown, l.idempotency_key, l.metadata, l.prev_id "
      "FROM chain AS c JOIN ducto.ledger AS l ON l.id OPERATOR(pg_catalog.=) c.prev_id) "
      "SELECT * FROM chain LIMIT $2",
      {UUIDOID, INT8OID, INT8OID});
  if (before == nullptr && !account.last_entry_id) return;
  Datum arguments[] = {uuid_datum(before ? *before : *account.last_entry_id), Int64GetDatum(max_rows),
                       Int64GetDatum(account.id)};
  const std::uint64_t rows = spi_run(before ? older : newest, arguments, nullptr, true, 0);
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  for (std::uint64_t row = 0; row < rows; ++row) {
    Datum values[kTransactionColumns];
    bool nulls[kTransactionColumns];
    for (int column = 0; column < kTransactionColumns; ++column) {
      values[column] = spi_value(row, column + 1, &nulls[column]);
    }
    // amount and balance_after: stored in micro-credits.
    values[2] = money_datum(DatumGetInt64(values[2]));
    values[3] = money_datum(DatumGetInt64(values[3]));
    tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
  }
}

Datum transactions(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const std::optional<Uuid> before = optional_uuid_arg(fcinfo, 1);
  const std::int32_t max_rows = int32_arg(fcinfo, 2, "max_rows");
  ledger::check_max_rows(max_rows);
  pg_call([&]() noexcept { InitMaterializedSRF(fcinfo, 0); });
  const Session session = open_session();
  if (const std::optional<Account> account = read_account(user_id)) {
    pg_call([&]() noexcept { put_entries(fcinfo, *account, before ? &*before : nullptr, max_rows); });
  }
  close_session(session);
  return Datum(0);
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_add_credits(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::add_credits(fcinfo); });
}
Datum ducto_get_balance(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::get_balance(fcinfo); });
}
Datum ducto_transactions(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::transactions(fcinfo); });
}
}
