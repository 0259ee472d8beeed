// src/core/ledger/rules.h: the business decisions of the credit operations (issue 3, Contract): which
// calls are refused, with which code. A refusal is not an error: it comes back in the result's `error`
// column, writes a failure event and changes no balance.
#pragma once
#include "core/no_postgres.h"

#include <optional>
#include <string_view>
#include <variant>

#include "core/ledger/money.h"

namespace ducto::ledger {

enum class Rejection {
  insufficient_credits,
  unknown_model,
  reservation_not_found,
  reservation_expired,
  reservation_settled,
  idempotency_conflict,
  transaction_not_found,
  not_refundable,
  refund_exceeds_original,
  nothing_to_refund,
  // The policies (issue 5): a deny spend cap, charge_team's membership and member spend cap.
  cap_reached,
  not_a_member,
  member_cap_reached,
};

// The code as the `error` column shows it ("insufficient_credits", ...).
std::string_view code_of(Rejection rejection);

enum class HoldState { active, settled, released, expired };

// "active", "settled", ... (the holds.state column) and back; an unknown text is an internal error.
std::string_view name_of(HoldState state);
HoldState hold_state_named(std::string_view name);

// Why a hold cannot be settled by deduct_credits, if it cannot. A hold past its expiry is expired
// whatever its stored state says (the state follows the clock, not the sweep).
std::optional<Rejection> settle_refusal(HoldState state, bool past_expiry);
// Why release_reservation refuses; a hold already released is not refused (the call is replayed).
std::optional<Rejection> release_refusal(HoldState state, bool past_expiry);

// Ledger row kinds ("grant", "deduct", "charge", "refund", "expiry").
enum class EntryKind { grant, deduct, charge, refund, expiry };
std::string_view name_of(EntryKind kind);
EntryKind entry_kind_named(std::string_view name);

// The amount a refund gives back, or why it is refused. `debited` is the debit's size (positive),
// `refunded` what earlier refunds gave back, `requested` the amount asked for (nullopt: all that is left).
std::variant<Micros, Rejection> refund_amount(EntryKind original, Micros debited, Micros refunded,
                                              std::optional<Micros> requested);

}  // namespace ducto::ledger
