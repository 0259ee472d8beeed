// src/pg/debits.cpp: ducto.deduct_credits (direct, or settling a hold), ducto.charge (issue 3) and
// ducto.charge_team (issue 5), with the account's policies (policies.h) applied under the account lock:
// the plan's rate overrides and free allowance, spend caps, member caps and low-balance alerts.
//
// charge is the hot path (design.md, The hot path): the usage is priced and its jsonb built before the
// account lock; under the lock it locks the account row, reads the lots it needs, and writes the lot,
// the ledger entry, the account and the event, all without a SQL statement (direct_rows.h). An account
// without policies (accounts.policies false) adds nothing; one with a plan or caps reads and writes its
// policy rows too (saved SPI plans).
#include "pg/pg_headers.h"

#include <optional>
#include <string>
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
#include "pg/pricing.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_deduct_credits);
PG_FUNCTION_INFO_V1(ducto_charge);
PG_FUNCTION_INFO_V1(ducto_charge_team);
}

namespace ducto::pg {
namespace {

// Credit taken from lots, not yet written: the parts (allocations) and the lots as they are now.
struct Taken {
  std::vector<ledger::Part> parts;
  std::vector<ledger::Lot> changed;
};

// Takes `amount` from the account's usable lots in consumption order; what they cannot cover (a
// negative floor allowed it) becomes debt. The lots are written with the entry (Operation::append_last).
Taken take_credit(Operation& op, Micros amount) {
  if (amount == 0) return {};
  Account& account = op.account();
  const std::vector<ledger::Lot> lots = usable_lots(account.id, op.now(), amount);
  ledger::LotBook book;
  for (const ledger::Lot& lot : lots) book.add(lot);
  const std::vector<std::int64_t> order = lot_ids(lots);
  Taken taken;
  taken.parts = ledger::take_in_order(book, order, amount);
  taken.changed = book.changed();
  account.debt = ledger::checked_add(account.debt, ledger::overdraft_of(taken.parts));
  account.balance = ledger::checked_sub(account.balance, amount);
  return taken;
}

// ---- deduct_credits ----------------------------------------------------------------------------------

struct DeductRequest {
  std::string_view user_id;
  std::optional<Uuid> reservation_id;
  Micros amount = 0;
  std::optional<std::string_view> key;
  std::optional<Digest> digest;
  Jsonb* metadata = nullptr;
};

// Settles `hold` for the request's amount; returns the entry's id, or the refusal.
std::variant<Uuid, ledger::Rejection> settle(Operation& op, const DeductRequest& request, const Hold& hold, Micros floor,
                                             const AccountPolicies& policies) {
  Account& account = op.account();
  const TimestampTz now = op.now();
  if (hold.account_id != account.id) return ledger::Rejection::reservation_not_found;
  if (const std::optional<ledger::Rejection> refusal = ledger::settle_refusal(hold.state, now >= hold.expires_at)) {
    return *refusal;
  }
  if (const std::optional<CapRefusal> refusal = policies.refusal(std::nullopt, request.amount)) {
    emit_cap_reached(op, *refusal);
    return ledger::Rejection::cap_reached;
  }
  // Up to the hold, the credit is earmarked; an excess must fit above the floor without this hold.
  const Micros excess = request.amount > hold.amount ? request.amount - hold.amount : 0;
  if (excess > 0 && !ledger::floor_allows(account.balance, account.reserved - hold.amount, request.amount, floor)) {
    return ledger::Rejection::insufficient_credits;
  }
  ledger::LotBook book;
  for (const ledger::Lot& lot : lots_by_id(lot_ids(hold.parts))) book.add(lot);
  std::vector<std::int64_t> order;
  if (excess > 0) {
    const std::vector<ledger::Lot> usable = usable_lots(account.id, now, excess);
    for (const ledger::Lot& lot : usable) book.add(lot);
    order = lot_ids(usable);
  }
  const std::vector<ledger::Part> parts = ledger::settle_hold(book, hold.parts, request.amount, order);
  // What the settle returned to lots that expired meanwhile expires now.
  const std::vector<ledger::Part> expired = ledger::expire_due(book, now);
  write_lots(book.changed());
  account.debt = ledger::checked_add(account.debt, ledger::overdraft_of(parts));
  account.reserved = ledger::checked_sub(account.reserved, hold.amount);
  account.balance = ledger::checked_sub(account.balance, request.amount);

  const Uuid id = op.next_entry_id();
  Entry entry;
  entry.kind = ledger::EntryKind::deduct;
  entry.amount = -request.amount;
  entry.allocations = parts;
  entry.reservation_id = hold.id;
  entry.operation_type = hold.operation_type;
  entry.idempotency_key = request.key;
  entry.digest = request.digest;
  entry.metadata = request.metadata;
  op.append(id, entry);
  op.emit("credits.deducted", -request.amount, account.balance,
          EventData()
              .uuid("transaction_id", id)
              .uuid("reservation_id", hold.id)
              .text("operation_type", hold.operation_type)
              .text("idempotency_key", request.key)
              .document("metadata", request.metadata)
              .build());
  op.post_expiries(expired);
  op.expiry_at_most(ledger::next_expiry(book, now));
  finish_hold(hold.id, ledger::HoldState::settled, now, id, op.available());
  return id;
}

// A direct debit; returns the entry's id, or the refusal.
std::variant<Uuid, ledger::Rejection> debit(Operation& op, const DeductRequest& request, Micros floor,
                                            const AccountPolicies& policies) {
  Account& account = op.account();
  if (const std::optional<CapRefusal> refusal = policies.refusal(std::nullopt, request.amount)) {
    emit_cap_reached(op, *refusal);
    return ledger::Rejection::cap_reached;
  }
  if (!ledger::floor_allows(account.balance, account.reserved, request.amount, floor)) {
    return ledger::Rejection::insufficient_credits;
  }
  const Taken taken = take_credit(op, request.amount);
  const Uuid id = op.next_entry_id();
  Entry entry;
  entry.kind = ledger::EntryKind::deduct;
  entry.amount = -request.amount;
  entry.allocations = taken.parts;
  entry.idempotency_key = request.key;
  entry.digest = request.digest;
  entry.metadata = request.metadata;
  op.append_last(id, entry, taken.changed);
  op.emit("credits.deducted", -request.amount, account.balance,
          EventData()
              .uuid("transaction_id", id)
              .text("idempotency_key", request.key)
              .document("metadata", request.metadata)
              .build());
  return id;
}

Datum deduct_credits(FunctionCallInfo fcinfo) {
  DeductRequest request;
  request.user_id = user_id_arg(fcinfo, 0);
  request.reservation_id = optional_uuid_arg(fcinfo, 1);
  request.amount = amount_arg(fcinfo, 2);
  request.key = idempotency_key_arg(fcinfo, 3);
  request.metadata = metadata_arg(fcinfo, 4);
  const ActiveConfig active = active_config();
  const Micros floor = active.config ? ledger::floor_micros(active.config->min_balance()) : 0;
  const TimestampTz now = clock_now();
  if (request.key) {
    const std::optional<std::string_view> reservation =
        request.reservation_id ? std::optional<std::string_view>(std::string_view(
                                     reinterpret_cast<const char*>(request.reservation_id->data()), 16))
                               : std::nullopt;
    request.digest = request_digest(ledger::RequestBytes("deduct_credits")
                                        .text(request.user_id)
                                        .text(reservation)
                                        .integer(request.amount)
                                        .text(request.key)
                                        .text(jsonb_bytes(request.metadata)));
  }

  CreditOutcome outcome;
  outcome.user_id = request.user_id;
  const auto refuse = [&](ledger::Rejection error, std::optional<Micros> balance) {
    outcome.amount = -request.amount;
    outcome.error = error;
    emit_failure("credits.deduct_failed", request.user_id, now, error, -request.amount, balance,
                 EventData()
                     .uuid("reservation_id", request.reservation_id)
                     .text("idempotency_key", request.key)
                     .document("metadata", request.metadata));
  };

  const Session session = open_session();
  std::optional<Account> locked = lock_account(request.user_id);
  refuse_team_account(locked && locked->team, request.user_id);
  if (!locked && !request.reservation_id && floor < 0) locked = lock_or_create_account(request.user_id);
  if (!locked) {
    refuse(request.reservation_id ? ledger::Rejection::reservation_not_found : ledger::Rejection::insufficient_credits,
           std::nullopt);
    close_session(session);
    return credit_result(fcinfo, outcome);
  }
  Operation op(now, request.user_id, *locked);
  op.expire_due();
  const auto finish = [&]() {
    op.save();
    close_session(session);
    return credit_result(fcinfo, outcome);
  };
  const auto replay = [&](const KeyedRow& row) {
    outcome.transaction_id = row.id;
    outcome.amount = row.amount;
    outcome.balance_after = row.balance_after;
    outcome.idempotent = true;
  };
  if (answered_by_key(session, op.account(), request.key, request.digest, replay, refuse)) return finish();
  const pricing::Config* config = active.config.get();
  AccountPolicies policies(op.account().id, op.account().policies, config, now);
  const Micros balance_before = op.account().balance;
  std::variant<Uuid, ledger::Rejection> done = ledger::Rejection::reservation_not_found;
  if (request.reservation_id) {
    if (const std::optional<Hold> hold = read_hold(*request.reservation_id)) {
      done = settle(op, request, *hold, floor, policies);
    }
  } else {
    done = debit(op, request, floor, policies);
  }
  if (const auto* refusal = std::get_if<ledger::Rejection>(&done)) {
    refuse(*refusal, op.account().balance);
  } else {
    outcome.transaction_id = std::get<Uuid>(done);
    outcome.amount = -request.amount;
    outcome.balance_after = op.account().balance;
    if (op.account().policies) {
      policies.after_debit(op, std::nullopt, request.amount, 0, balance_before);
    } else {
      check_low_balance(op, config, balance_before);
    }
  }
  return finish();
}

// ---- charge ------------------------------------------------------------------------------------------

struct Priced {
  bool known_model = true;
  std::optional<std::string> model;  // as the metrics name it
  Micros amount = 0;
  Jsonb* breakdown = nullptr;
  std::optional<std::string_view> model_name() const {
    return model ? std::optional<std::string_view>(*model) : std::nullopt;
  }
};

// Prices the usage with the active config, before any lock (and again under it for a user whose plan
// overrides rates). Bad metrics and failing formulas raise 22023; a model without a formula is a
// refusal (unknown_model), decided after the idempotency check.
Priced price_usage(Jsonb* metrics, const pricing::Config& config, const pricing::Plan* plan) {
  Priced priced;
  try {
    const pricing::Usage usage = read_usage(metrics, config);
    if (!usage.model.empty()) priced.model = usage.model;
    pricing::Breakdown breakdown;
    try {
      breakdown = pricing::price(config, usage, plan);
    } catch (const pricing::UnknownModel&) {
      priced.known_model = false;
      return priced;
    }
    const std::optional<Micros> total = breakdown.total.to_micros();
    if (!total || *total >= ledger::kAmountLimit) {
      throw Error(Errc::invalid_value, "charge amount must be below 1000000000000");
    }
    priced.amount = *total;
    priced.breakdown = breakdown_jsonb(breakdown);
  } catch (const Error& error) {
    if (error.code() == Errc::invalid_value) throw;
    throw Error(Errc::invalid_value, error.what());
  }
  return priced;
}

// One charge: of a user (ducto.charge) or of a team on behalf of a member (ducto.charge_team).
struct ChargeRequest {
  std::string_view user_id;                 // the account debited: the user, or the team
  std::optional<std::string_view> member;  // charge_team: the member the spend is attributed to
  Jsonb* metrics = nullptr;
  std::optional<std::string_view> key;
  Jsonb* metadata = nullptr;
};

Datum charge_account(FunctionCallInfo fcinfo, const ChargeRequest& request) {
  const std::string_view user_id = request.user_id;
  const std::optional<std::string_view> key = request.key;
  Jsonb* metrics = request.metrics;
  Jsonb* metadata = request.metadata;
  const ActiveConfig active = active_config();
  if (!active.config) throw Error(Errc::not_ready, "no active pricing config");
  const pricing::Config& config = *active.config;
  const Micros floor = ledger::floor_micros(config.min_balance());
  Priced priced = price_usage(metrics, config, nullptr);
  const TimestampTz now = clock_now();
  std::optional<Digest> digest;
  if (key) {
    ledger::RequestBytes bytes(request.member ? "charge_team" : "charge");
    bytes.text(user_id);
    if (request.member) bytes.text(*request.member);
    digest = request_digest(bytes.text(jsonb_bytes(metrics)).text(key).text(jsonb_bytes(metadata)));
  }

  ChargeOutcome outcome;
  outcome.user_id = user_id;
  const auto refuse = [&](ledger::Rejection error, std::optional<Micros> balance) {
    outcome.amount = priced.known_model ? std::optional<Micros>(-priced.amount) : std::nullopt;
    outcome.error = error;
    emit_failure("credits.deduct_failed", user_id, now, error, outcome.amount, balance,
                 EventData()
                     .text("model", priced.model_name())
                     .text("member_user_id", request.member)
                     .text("idempotency_key", key)
                     .document("metadata", metadata));
  };

  const Session session = open_session();
  std::optional<Account> locked = lock_account(user_id);
  if (request.member) {
    if (!locked || !locked->team) {
      throw Error(Errc::invalid_value, "unknown team " + policy::json_string(user_id));
    }
  } else {
    refuse_team_account(locked && locked->team, user_id);
    // A free charge is recorded even for a user without credit; a priced one needs credit or a negative floor.
    if (!locked && priced.known_model && (priced.amount == 0 || floor < 0)) locked = lock_or_create_account(user_id);
  }
  if (!locked) {
    refuse(priced.known_model ? ledger::Rejection::insufficient_credits : ledger::Rejection::unknown_model,
           std::nullopt);
    close_session(session);
    return charge_result(fcinfo, outcome);
  }
  Operation op(now, user_id, *locked);
  op.expire_due();
  Account& account = op.account();
  const auto finish = [&]() {
    op.save();
    close_session(session);
    return charge_result(fcinfo, outcome);
  };
  const auto replay = [&](const KeyedRow& row) {
    outcome.transaction_id = row.id;
    outcome.amount = row.amount;
    outcome.balance_after = row.balance_after;
    outcome.breakdown = row.breakdown;
    outcome.allowance_used = row.allowance_used;
    outcome.idempotent = true;
  };
  if (answered_by_key(session, account, key, digest, replay, refuse)) return finish();
  std::optional<Membership> membership;
  if (request.member) {
    membership = read_membership(account.id, *request.member, now);
    if (!membership) {
      refuse(ledger::Rejection::not_a_member, account.balance);
      return finish();
    }
  }
  AccountPolicies policies(account.id, account.policies, &config, now);
  // The plan's rate overrides replace model formulas: price again with the plan, now that it is known.
  if (policies.plan() != nullptr && !policies.plan()->rate_overrides.empty()) {
    priced = price_usage(metrics, config, policies.plan());
  }
  if (!priced.known_model) {
    refuse(ledger::Rejection::unknown_model, account.balance);
    return finish();
  }
  // The free allowance pays first; the balance pays the rest.
  const Micros covered = policy::allowance_cover(priced.amount, policies.allowance_left());
  const Micros debited = priced.amount - covered;
  if (membership && membership->spend_cap && debited > 0 &&
      ledger::checked_add(membership->spent, debited) > *membership->spend_cap) {
    refuse(ledger::Rejection::member_cap_reached, account.balance);
    return finish();
  }
  if (const std::optional<CapRefusal> refusal = policies.refusal(priced.model_name(), debited)) {
    emit_cap_reached(op, *refusal);
    refuse(ledger::Rejection::cap_reached, account.balance);
    return finish();
  }
  // A free charge moves nothing, so no floor can refuse it.
  if (debited > 0 && !ledger::floor_allows(account.balance, account.reserved, debited, floor)) {
    refuse(ledger::Rejection::insufficient_credits, account.balance);
    return finish();
  }
  const Micros balance_before = account.balance;
  const Taken taken = take_credit(op, debited);
  const Uuid id = op.next_entry_id();
  Entry entry;
  entry.kind = ledger::EntryKind::charge;
  entry.amount = -debited;
  entry.allocations = taken.parts;
  entry.model = priced.model_name();
  entry.metrics = metrics;
  entry.breakdown = priced.breakdown;
  entry.config_version = active.version;
  entry.idempotency_key = key;
  entry.digest = digest;
  entry.metadata = metadata;
  if (covered > 0) entry.allowance_used = covered;
  entry.member_user_id = request.member;
  op.append_last(id, entry, taken.changed);
  op.emit("credits.deducted", -debited, account.balance,
          EventData()
              .uuid("transaction_id", id)
              .text("model", priced.model_name())
              .document("breakdown", priced.breakdown)
              .money("allowance_used", covered > 0 ? std::optional<Micros>(covered) : std::nullopt)
              .text("member_user_id", request.member)
              .text("idempotency_key", key)
              .document("metadata", metadata)
              .build());
  if (request.member && debited > 0) add_member_spend(account.id, *request.member, now, debited);
  if (account.policies) {
    policies.after_debit(op, priced.model_name(), debited, covered, balance_before);
  } else {
    check_low_balance(op, &config, balance_before);
  }
  outcome.transaction_id = id;
  outcome.amount = -debited;
  outcome.balance_after = account.balance;
  outcome.breakdown = priced.breakdown;
  outcome.allowance_used = covered;
  return finish();
}

Datum charge(FunctionCallInfo fcinfo) {
  ChargeRequest request;
  request.user_id = user_id_arg(fcinfo, 0);
  request.metrics = required_jsonb_arg(fcinfo, 1, "metrics");
  request.key = idempotency_key_arg(fcinfo, 2);
  request.metadata = metadata_arg(fcinfo, 3);
  return charge_account(fcinfo, request);
}

Datum charge_team(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(Errc::null_value, "team_id must not be NULL");
  ChargeRequest request;
  request.user_id = user_id_arg(fcinfo, 0);
  request.member = user_id_arg(fcinfo, 1);
  request.metrics = required_jsonb_arg(fcinfo, 2, "metrics");
  request.key = idempotency_key_arg(fcinfo, 3);
  request.metadata = metadata_arg(fcinfo, 4);
  return charge_account(fcinfo, request);
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_deduct_credits(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::deduct_credits(fcinfo); });
}
Datum ducto_charge(PG_FUNCTION_ARGS) { return ducto::pg::guarded([&] { return ducto::pg::charge(fcinfo); }); }
Datum ducto_charge_team(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::charge_team(fcinfo); });
}
}
