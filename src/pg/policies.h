// src/pg/policies.h: the policies of one locked account (issue 5) as the debit paths apply them: the
// plan and its free allowance, spend caps, low-balance alerts, and team member caps (charge_team).
//
// Everything is decided under the account lock, in the debit's transaction: a rejected or rolled-back
// debit changes no counter. An account without policy rows (accounts.policies false) is never read here:
// such a debit pays only the low-balance check against the config's thresholds (no SPI unless an event
// fires). Functions run inside an open Session (ledger_common.h) and wrap their Postgres calls.
#pragma once
#include "pg/pg_headers.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy/policy.h"
#include "pg/ledger_common.h"

namespace ducto::pg {

class Operation;

// A deny cap that refuses a debit: what credits.cap_reached reports.
struct CapRefusal {
  policy::Period period = policy::Period::monthly;
  std::optional<std::string> model;
  Micros cap = 0;
  Micros spent = 0;
  Micros attempted = 0;
};

class AccountPolicies {
 public:
  // Reads the account's policy rows when `flagged` (accounts.policies); `config` is the active config
  // (nullptr: none), `now` the operation's clock reading.
  AccountPolicies(std::int64_t account_id, bool flagged, const pricing::Config* config, TimestampTz now);

  // The user's plan in the active config (nullptr: none, or a plan the config no longer has).
  const pricing::Plan* plan() const { return plan_; }
  // What is left of the plan's free allowance this month.
  Micros allowance_left() const;
  // The first deny cap a debit of `amount` for `model` (nullopt: a deduction) would take over its cap.
  std::optional<CapRefusal> refusal(std::optional<std::string_view> model, Micros amount) const;
  // After a debit went through: the allowance used, the caps' counters, and the events (cap warnings,
  // then low balance from balance_before to the account's balance).
  void after_debit(Operation& op, std::optional<std::string_view> model, Micros debited, Micros covered,
                   Micros balance_before);

 private:
  struct StoredCap {
    std::int64_t id = 0;
    policy::Cap cap;
    policy::CapState state;  // in the current window
  };
  std::int64_t account_id_;
  TimestampTz now_;
  const pricing::Config* config_;
  const pricing::Plan* plan_ = nullptr;
  Micros allowance_used_ = 0;  // this month
  std::optional<std::vector<Micros>> own_thresholds_;
  std::vector<StoredCap> caps_;
};

// What is left of the account's free allowance this month (a read: get_balance).
Micros allowance_remaining_of(std::int64_t account_id, const pricing::Config* config, TimestampTz now);

// Personal operations (reserve, deduct, charge) refuse a team account: 22023 "... is a team account".
void refuse_team_account(bool team, std::string_view user_id);

// Writes credits.cap_reached for a refused debit.
void emit_cap_reached(Operation& op, const CapRefusal& refusal);

// The low-balance event of a debit without account policies (config thresholds only).
void check_low_balance(Operation& op, const pricing::Config* config, Micros balance_before);

// After a refund of `amount` of the entry `original_id` made now: lowers the spend counters of the
// account's caps that counted it (flagged accounts) and of the team member it was attributed to.
void after_refund(Operation& op, bool flagged, const Uuid& original_id, Micros amount);

// ---- teams -------------------------------------------------------------------------------------------

// A member of a team as charge_team checks it.
struct Membership {
  std::optional<Micros> spend_cap;  // per UTC month; nullopt: none
  Micros spent = 0;                 // this month, net of refunds
};
// The membership of `user_id` in the team account `team_id` (nullopt: not a member), with its spend.
std::optional<Membership> read_membership(std::int64_t team_id, std::string_view user_id, TimestampTz now);
// Adds a debit to the member's monthly spend.
void add_member_spend(std::int64_t team_id, std::string_view user_id, TimestampTz now, Micros amount);

// Time conversions: Postgres timestamps count from 2000-01-01, the core's from 1970-01-01.
policy::UnixMicros unix_of(TimestampTz at);
TimestampTz timestamp_of(policy::UnixMicros at);

}  // namespace ducto::pg
