// src/pg/refunds.cpp: ducto.refund_credits (issue 3, Refunds).
//
// Only debits (deductions and charges) are refundable, in parts that add up to at most the debit. Credit
// goes back into the lots the debit consumed, newest allocation first, with their expiry: what lands in
// a lot that has expired since expires again at once (an expiry entry right after the refund). The
// overdraft part of a debit, restored first, pays back the account's debt; what the debt no longer
// covers (a grant repaid it meanwhile) comes back as a new lot that never expires.
#include "pg/pg_headers.h"

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/ledger/lots.h"
#include "core/ledger/request.h"
#include "core/ledger/validate.h"
#include "pg/bridge.h"
#include "pg/convert.h"
#include "pg/ledger_common.h"
#include "pg/ledger_idempotency.h"
#include "pg/ledger_store.h"
#include "pg/policies.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_refund_credits);
}

namespace ducto::pg {
namespace {

std::string_view bytes_of(const Uuid& uuid) { return {reinterpret_cast<const char*>(uuid.data()), uuid.size()}; }

Datum refund_credits(FunctionCallInfo fcinfo) {
  const Uuid original_id = uuid_arg(fcinfo, 0, "transaction_id");
  const std::optional<Micros> requested = optional_amount_arg(fcinfo, 1);
  const std::optional<std::string_view> reason = text_arg(fcinfo, 2);
  if (reason) ledger::check_reason(*reason);
  const std::optional<std::string_view> key = idempotency_key_arg(fcinfo, 3);
  Jsonb* metadata = metadata_arg(fcinfo, 4);
  const TimestampTz now = clock_now();
  std::optional<Digest> digest;
  if (key) {
    digest = request_digest(ledger::RequestBytes("refund_credits")
                                .text(bytes_of(original_id))
                                .integer(requested)
                                .text(reason)
                                .text(key)
                                .text(jsonb_bytes(metadata)));
  }

  RefundOutcome outcome;
  outcome.original_transaction_id = original_id;
  std::string user_id;
  const auto refuse = [&](ledger::Rejection error, std::optional<Micros> balance) {
    outcome.amount = requested;
    outcome.error = error;
    emit_failure("credits.refund_failed", user_id, now, error, requested, balance,
                 EventData()
                     .uuid("original_transaction_id", original_id)
                     .text("reason", reason)
                     .text("idempotency_key", key)
                     .document("metadata", metadata));
  };

  const Session session = open_session();
  // The debit names its account (entries are never updated): lock that account.
  const std::optional<StoredEntry> original = read_entry(original_id);
  const std::optional<Account> locked = original ? lock_account_by_id(original->account_id, user_id) : std::nullopt;
  if (!locked) {
    refuse(ledger::Rejection::transaction_not_found, std::nullopt);
    close_session(session);
    return refund_result(fcinfo, outcome);
  }
  outcome.user_id = user_id;
  Operation op(now, user_id, *locked);
  op.expire_due();
  Account& account = op.account();
  const auto finish = [&]() {
    op.save();
    close_session(session);
    return refund_result(fcinfo, outcome);
  };
  const auto replay = [&](const KeyedRow& row) {
    outcome.refund_transaction_id = row.id;
    outcome.original_transaction_id = row.original_id;
    outcome.amount = row.amount;
    outcome.balance_after = row.balance_after;
    outcome.idempotent = true;
  };
  if (answered_by_key(session, account, key, digest, replay, refuse)) return finish();
  // Read under the lock: concurrent refunds of the same debit wait for it.
  const Micros refunded = refunded_so_far(original_id);
  const std::variant<Micros, ledger::Rejection> decided =
      ledger::refund_amount(original->kind, -original->amount, refunded, requested);
  if (const auto* refusal = std::get_if<ledger::Rejection>(&decided)) {
    refuse(*refusal, account.balance);
    return finish();
  }
  const Micros amount = std::get<Micros>(decided);

  const std::vector<ledger::Part> parts = ledger::restoration_parts(original->parts, refunded, amount);
  ledger::LotBook book;
  for (const ledger::Lot& lot : lots_by_id(lot_ids(parts))) book.add(lot);
  ledger::restore_lots(book, parts);
  const ledger::OverdraftRestoration overdraft = ledger::restore_overdraft(account.debt, ledger::overdraft_of(parts));
  account.debt -= overdraft.repaid;
  const Uuid id = op.next_entry_id();
  if (overdraft.new_lot > 0) insert_lot(account.id, overdraft.new_lot, overdraft.new_lot, std::nullopt, now, id);
  account.balance = ledger::checked_add(account.balance, amount);
  Entry entry;
  entry.kind = ledger::EntryKind::refund;
  entry.amount = amount;
  entry.allocations = parts;
  entry.original_id = original_id;
  entry.reason = reason;
  entry.idempotency_key = key;
  entry.digest = digest;
  entry.metadata = metadata;
  op.append(id, entry);
  op.emit("credits.refunded", amount, account.balance,
          EventData()
              .uuid("refund_transaction_id", id)
              .uuid("original_transaction_id", original_id)
              .text("reason", reason)
              .text("idempotency_key", key)
              .document("metadata", metadata)
              .build());
  if (account.policies || account.team) after_refund(op, account.policies, original_id, amount);
  outcome.refund_transaction_id = id;
  outcome.amount = amount;
  outcome.balance_after = account.balance;
  const std::vector<ledger::Part> expired = ledger::expire_due(book, now);
  write_lots(book.changed());
  op.post_expiries(expired);
  op.expiry_at_most(ledger::next_expiry(book, now));
  return finish();
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_refund_credits(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::refund_credits(fcinfo); });
}
}
