// src/core/ledger/rules.cpp: refusal codes and the decisions that produce them (see rules.h).
#include "core/no_postgres.h"

#include "core/ledger/rules.h"

#include <array>
#include <string>
#include <utility>

#include "core/error.h"

namespace ducto::ledger {
namespace {

constexpr std::array<std::pair<Rejection, std::string_view>, 13> kRejections = {{
    {Rejection::insufficient_credits, "insufficient_credits"},
    {Rejection::unknown_model, "unknown_model"},
    {Rejection::reservation_not_found, "reservation_not_found"},
    {Rejection::reservation_expired, "reservation_expired"},
    {Rejection::reservation_settled, "reservation_settled"},
    {Rejection::idempotency_conflict, "idempotency_conflict"},
    {Rejection::transaction_not_found, "transaction_not_found"},
    {Rejection::not_refundable, "not_refundable"},
    {Rejection::refund_exceeds_original, "refund_exceeds_original"},
    {Rejection::nothing_to_refund, "nothing_to_refund"},
    {Rejection::cap_reached, "cap_reached"},
    {Rejection::not_a_member, "not_a_member"},
    {Rejection::member_cap_reached, "member_cap_reached"},
}};

constexpr std::array<std::pair<HoldState, std::string_view>, 4> kHoldStates = {{
    {HoldState::active, "active"},
    {HoldState::settled, "settled"},
    {HoldState::released, "released"},
    {HoldState::expired, "expired"},
}};

constexpr std::array<std::pair<EntryKind, std::string_view>, 5> kEntryKinds = {{
    {EntryKind::grant, "grant"},
    {EntryKind::deduct, "deduct"},
    {EntryKind::charge, "charge"},
    {EntryKind::refund, "refund"},
    {EntryKind::expiry, "expiry"},
}};

template <class Enum, std::size_t N>
std::string_view name_in(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name;
  }
  return "?";
}

template <class Enum, std::size_t N>
Enum value_in(const std::array<std::pair<Enum, std::string_view>, N>& table, std::string_view name,
              std::string_view what) {
  for (const auto& [value, candidate] : table) {
    if (candidate == name) return value;
  }
  throw Error(Errc::invalid_value, "internal ledger error: unknown " + std::string(what) + " \"" +
                                       std::string(name) + "\"");
}

}  // namespace

std::string_view code_of(Rejection rejection) { return name_in(kRejections, rejection); }

std::string_view name_of(HoldState state) { return name_in(kHoldStates, state); }
HoldState hold_state_named(std::string_view name) { return value_in(kHoldStates, name, "hold state"); }

std::string_view name_of(EntryKind kind) { return name_in(kEntryKinds, kind); }
EntryKind entry_kind_named(std::string_view name) { return value_in(kEntryKinds, name, "ledger entry kind"); }

std::optional<Rejection> settle_refusal(HoldState state, bool past_expiry) {
  switch (state) {
    case HoldState::settled:
    case HoldState::released: return Rejection::reservation_settled;
    case HoldState::expired: return Rejection::reservation_expired;
    case HoldState::active: break;
  }
  if (past_expiry) return Rejection::reservation_expired;
  return std::nullopt;
}

std::optional<Rejection> release_refusal(HoldState state, bool past_expiry) {
  switch (state) {
    case HoldState::settled: return Rejection::reservation_settled;
    case HoldState::expired: return Rejection::reservation_expired;
    case HoldState::released: return std::nullopt;
    case HoldState::active: break;
  }
  if (past_expiry) return Rejection::reservation_expired;
  return std::nullopt;
}

std::variant<Micros, Rejection> refund_amount(EntryKind original, Micros debited, Micros refunded,
                                              std::optional<Micros> requested) {
  if (original != EntryKind::deduct && original != EntryKind::charge) return Rejection::not_refundable;
  const Micros left = debited - refunded;
  if (left <= 0) return Rejection::nothing_to_refund;
  if (!requested) return left;
  if (*requested > left) return Rejection::refund_exceeds_original;
  return *requested;
}

}  // namespace ducto::ledger
