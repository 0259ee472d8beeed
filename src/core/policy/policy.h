// src/core/policy/policy.h: the pure rules of the policies issue (issue 5): UTC calendar windows, the
// free allowance, spend caps, low-balance edges and plan features. The glue (src/pg/policies.cpp) keeps
// the state these rules read in ducto's tables and applies them under the account lock, in the same
// transaction as the debit; nothing here knows about Postgres.
#pragma once
#include "core/no_postgres.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/decimal.h"
#include "core/ledger/money.h"
#include "core/pricing/config.h"

namespace ducto::policy {

using ledger::Micros;

// A point in time as microseconds since 1970-01-01 00:00:00 UTC.
using UnixMicros = std::int64_t;

// A half-open window [start, end).
struct Window {
  UnixMicros start = 0;
  UnixMicros end = 0;
  friend bool operator==(const Window&, const Window&) = default;
};

enum class Period { daily, monthly };
// "daily" / "monthly"; anything else: Error(invalid_value).
Period period_named(std::string_view name);
std::string_view name_of(Period period);

// The UTC calendar day or month containing `at`.
Window day_window(UnixMicros at);
Window month_window(UnixMicros at);
Window window_of(Period period, UnixMicros at);

// "2026-12-01T00:00:00+00:00": a UTC instant as ISO 8601 (whole seconds; windows start on them).
std::string iso_utc(UnixMicros at);

// ---- allowance -------------------------------------------------------------------------------------

// A plan's free allowance per month in micro-credits (0 without a plan).
Micros allowance_of(const pricing::Plan* plan);
// What is left of `allowance` after `used` (never negative: a plan change may lower the allowance).
Micros allowance_remaining(Micros allowance, Micros used);
// The part of a price the allowance pays: min(total, remaining).
Micros allowance_cover(Micros total, Micros remaining);

// ---- spend caps ------------------------------------------------------------------------------------

enum class CapAction { deny, warn, notify };
CapAction cap_action_named(std::string_view name);
std::string_view name_of(CapAction action);

// warn_at is a fraction in (0, 1] with at most 6 decimal places, kept in parts per million.
std::int32_t warn_at_ppm(const Decimal& warn_at);

struct Cap {
  Period period = Period::monthly;
  std::optional<std::string> model;  // nullopt: every model (and deductions, which have none)
  Micros cap = 0;
  CapAction action = CapAction::deny;
  std::int32_t warn_ppm = 800'000;
};

// A cap's counters in its current window.
struct CapState {
  Micros spent = 0;      // debits minus refunds made in the window
  bool warned = false;   // the warn_at warning of this window was emitted
  bool exceeded = false; // the cap's own warning (warn/notify caps) of this window was emitted
  friend bool operator==(const CapState&, const CapState&) = default;
};

// The state of a window: the stored one when it is the current window, a fresh one otherwise.
CapState state_in_window(const CapState& stored, UnixMicros stored_window_start, const Window& current);

// True when a debit of `model` (nullopt: no model, a deduction) counts toward `cap`.
bool cap_applies(const Cap& cap, std::optional<std::string_view> model);

// warn_at x cap in micro-credits, rounded up (spend at or above it has crossed it).
Micros warn_threshold(const Cap& cap);

// What a debit of `amount` does to one cap.
struct CapDecision {
  bool denied = false;         // a deny cap the debit would take spend over
  bool threshold_crossed = false;  // spend first reaches warn_at x cap in this window
  bool cap_exceeded = false;   // a warn/notify cap's spend first goes over the cap in this window
  CapState after;              // the counters if the debit goes through
};
CapDecision decide(const Cap& cap, const CapState& state, Micros amount);

// The counters after a refund of `amount` made in the window (spend is net of refunds, so it may go below 0).
CapState after_refund(const CapState& state, Micros amount);

// Flags for a cap (re)defined while `spent` is already counted: crossings in the past are not announced.
CapState state_for_new_cap(const Cap& cap, Micros spent);

// ---- low balance -----------------------------------------------------------------------------------

// The lowest threshold a debit took the balance across: from above it (before > t) to at or below it
// (after <= t). nullopt when none was crossed. Edge detection is what re-arms a threshold: it can fire
// again only after the balance rose above it.
std::optional<Micros> low_balance_crossed(std::span<const Micros> thresholds, Micros before, Micros after);

// Thresholds as micro-credits, ascending without duplicates; each must be a valid non-negative amount.
std::vector<Micros> thresholds_micros(std::span<const Decimal> thresholds);

// ---- features --------------------------------------------------------------------------------------

// The feature's value (JSON text) in the plan; nullopt when the plan is absent or lacks the feature.
std::optional<std::string_view> feature_value(const pricing::Plan* plan, std::string_view feature);

// A JSON string literal for `text` (quotes and escapes).
std::string json_string(std::string_view text);

}  // namespace ducto::policy
