// src/pg/holds.cpp: ducto.reserve_credits and ducto.release_reservation (issue 3, Holds).
//
// A hold earmarks free credit of specific lots (an overdraft part when a negative floor allows it), so a
// later settle up to the hold always succeeds: expiry never takes earmarked credit. The floor is checked
// here, at reserve. Releasing returns the earmarks; what returns into a lot that expired meanwhile
// expires at once. Settling is deduct_credits with the reservation (debits.cpp).
#include "pg/pg_headers.h"

#include <optional>
#include <string_view>
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
PG_FUNCTION_INFO_V1(ducto_reserve_credits);
PG_FUNCTION_INFO_V1(ducto_release_reservation);
}

namespace ducto::pg {
namespace {

constexpr std::int64_t kDefaultTtl = 10 * 60 * USECS_PER_SEC;

std::int64_t ttl_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return kDefaultTtl;
  const Interval* ttl = PG_GETARG_INTERVAL_P(n);  // fixed-size by-reference: never toasted
  return ledger::ttl_micros(ttl->month, ttl->day, ttl->time);
}

// ---- reserve_credits ---------------------------------------------------------------------------------

Datum reserve_credits(FunctionCallInfo fcinfo) {
  const std::string_view user_id = user_id_arg(fcinfo, 0);
  const Micros amount = amount_arg(fcinfo, 1);
  const std::string_view operation_type = text_arg(fcinfo, 2).value_or("usage");
  ledger::check_label(operation_type, "operation_type");
  const std::int64_t ttl = ttl_arg(fcinfo, 3);
  const std::optional<std::string_view> key = idempotency_key_arg(fcinfo, 4);
  Jsonb* metadata = metadata_arg(fcinfo, 5);
  const Micros floor = current_floor();
  const TimestampTz now = clock_now();
  const TimestampTz expires_at = now + ttl;
  std::optional<Digest> digest;
  if (key) {
    digest = request_digest(ledger::RequestBytes("reserve_credits")
                                .text(user_id)
                                .integer(amount)
                                .text(operation_type)
                                .integer(ttl)
                                .text(key)
                                .text(jsonb_bytes(metadata)));
  }

  ReservationOutcome outcome;
  outcome.user_id = user_id;
  const auto refuse = [&](ledger::Rejection error, std::optional<Micros> balance) {
    outcome.amount = amount;
    outcome.error = error;
    emit_failure("credits.deduct_failed", user_id, now, error, amount, balance,
                 EventData().text("operation_type", operation_type).text("idempotency_key", key).document("metadata", metadata));
  };

  const Session session = open_session();
  std::optional<Account> locked = lock_account(user_id);
  refuse_team_account(locked && locked->team, user_id);
  // Without an account there is no credit: only a negative floor lets a hold begin in debt.
  if (!locked && floor < 0) locked = lock_or_create_account(user_id);
  if (!locked) {
    refuse(ledger::Rejection::insufficient_credits, std::nullopt);
    close_session(session);
    return reservation_result(fcinfo, outcome);
  }
  Operation op(now, user_id, *locked);
  op.expire_due();
  Account& account = op.account();
  const auto finish = [&]() {
    op.save();
    close_session(session);
    return reservation_result(fcinfo, outcome);
  };
  const auto replay = [&](const KeyedRow& row) {
    outcome.reservation_id = row.id;
    outcome.amount = row.amount;
    outcome.available_after = row.balance_after;
    outcome.expires_at = row.expires_at;
    outcome.idempotent = true;
  };
  if (answered_by_key(session, account, key, digest, replay, refuse)) return finish();
  if (!ledger::floor_allows(account.balance, account.reserved, amount, floor)) {
    refuse(ledger::Rejection::insufficient_credits, account.balance);
    return finish();
  }

  const std::vector<ledger::Lot> lots = usable_lots(account.id, now, amount);
  ledger::LotBook book;
  for (const ledger::Lot& lot : lots) book.add(lot);
  const std::vector<std::int64_t> order = lot_ids(lots);
  const std::vector<ledger::Part> parts = ledger::earmark_in_order(book, order, amount);
  write_lots(book.changed());
  account.reserved = ledger::checked_add(account.reserved, amount);
  const Uuid id = pg_call([&]() noexcept { return new_uuid(now); });
  NewHold hold;
  hold.id = id;
  hold.account_id = account.id;
  hold.amount = amount;
  hold.parts = parts;
  hold.operation_type = operation_type;
  hold.expires_at = expires_at;
  hold.created_at = now;
  hold.available_after = op.available();
  hold.idempotency_key = key;
  hold.digest = digest;
  hold.metadata = metadata;
  insert_hold(hold);
  op.expiry_at_most(expires_at);
  op.emit("credits.reserved", amount, account.balance,
          EventData()
              .uuid("reservation_id", id)
              .text("operation_type", operation_type)
              .timestamp("expires_at", expires_at)
              .text("idempotency_key", key)
              .document("metadata", metadata)
              .build());
  outcome.reservation_id = id;
  outcome.amount = amount;
  outcome.available_after = op.available();
  outcome.expires_at = expires_at;
  return finish();
}

// ---- release_reservation -----------------------------------------------------------------------------

Datum release_reservation(FunctionCallInfo fcinfo) {
  const Uuid reservation_id = uuid_arg(fcinfo, 0, "reservation_id");
  const TimestampTz now = clock_now();
  ReservationOutcome outcome;
  outcome.reservation_id = reservation_id;

  const Session session = open_session();
  // The hold names its account; lock that, then read the hold again under the lock.
  const std::optional<Hold> found = read_hold(reservation_id);
  std::string user_id;
  const std::optional<Account> locked = found ? lock_account_by_id(found->account_id, user_id) : std::nullopt;
  if (!locked) {
    outcome.error = ledger::Rejection::reservation_not_found;
    close_session(session);
    return reservation_result(fcinfo, outcome);
  }
  outcome.user_id = user_id;
  Operation op(now, user_id, *locked);
  op.expire_due();
  Account& account = op.account();
  const auto finish = [&]() {
    op.save();
    close_session(session);
    return reservation_result(fcinfo, outcome);
  };
  const Hold hold = *read_hold(reservation_id);
  outcome.amount = hold.amount;
  if (hold.state == ledger::HoldState::released) {
    // Released before: the same call again returns what the release returned.
    outcome.available_after = hold.finished_available_after;
    outcome.expires_at = hold.expires_at;
    outcome.idempotent = true;
    return finish();
  }
  if (const std::optional<ledger::Rejection> refusal = ledger::release_refusal(hold.state, now >= hold.expires_at)) {
    outcome.error = refusal;
    return finish();
  }

  ledger::LotBook book;
  for (const ledger::Lot& lot : lots_by_id(lot_ids(hold.parts))) book.add(lot);
  ledger::release_hold(book, hold.parts);
  const std::vector<ledger::Part> expired = ledger::expire_due(book, now);
  write_lots(book.changed());
  account.reserved = ledger::checked_sub(account.reserved, hold.amount);
  op.emit("credits.reservation_released", hold.amount, account.balance,
          EventData().uuid("reservation_id", reservation_id).text("operation_type", hold.operation_type).build());
  op.post_expiries(expired);
  op.expiry_at_most(ledger::next_expiry(book, now));
  finish_hold(reservation_id, ledger::HoldState::released, now, std::nullopt, op.available());
  outcome.available_after = op.available();
  outcome.expires_at = hold.expires_at;
  return finish();
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_reserve_credits(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::reserve_credits(fcinfo); });
}
Datum ducto_release_reservation(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::release_reservation(fcinfo); });
}
}
