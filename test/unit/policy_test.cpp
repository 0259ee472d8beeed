// test/unit/policy_test.cpp: the pure policy rules (src/core/policy): UTC windows, allowance coverage,
// spend cap decisions, low-balance edges and plan features.
#include "core/no_postgres.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/decimal.h"
#include "core/error.h"
#include "core/ledger/rules.h"
#include "core/policy/policy.h"
#include "core/pricing/config.h"

namespace ducto::policy {
namespace {

constexpr std::int64_t kSecond = 1'000'000;
constexpr Micros kCredit = 1'000'000;

template <typename Action>
testing::AssertionResult Throws(Action&& action, Errc code, const std::string& message) {
  try {
    action();
  } catch (const Error& error) {
    if (error.code() != code || message != error.what()) {
      return testing::AssertionFailure() << "threw " << sqlstate(error.code()) << " \"" << error.what() << "\"";
    }
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << "did not throw";
}

// ---- windows -----------------------------------------------------------------------------------------

TEST(PolicyWindow, MonthOfALeapDay) {
  const Window month = month_window(1709209815 * kSecond);  // 2024-02-29 12:30:15 UTC
  EXPECT_EQ(month.start, 1706745600 * kSecond);             // 2024-02-01
  EXPECT_EQ(month.end, 1709251200 * kSecond);               // 2024-03-01
  EXPECT_EQ(iso_utc(month.start), "2024-02-01T00:00:00+00:00");
  EXPECT_EQ(iso_utc(month.end), "2024-03-01T00:00:00+00:00");
}

TEST(PolicyWindow, DayAndItsBounds) {
  const Window day = day_window(1709209815 * kSecond);
  EXPECT_EQ(day.start, 1709164800 * kSecond);
  EXPECT_EQ(day.end, (1709164800 + 86400) * kSecond);
  // The start belongs to the window, the end to the next one.
  EXPECT_EQ(day_window(day.start), day);
  EXPECT_EQ(day_window(day.end).start, day.end);
  EXPECT_EQ(day_window(day.end - 1), day);
}

TEST(PolicyWindow, YearEndAndCenturyNonLeapYear) {
  const Window december = month_window(1735689599 * kSecond);  // 2024-12-31 23:59:59
  EXPECT_EQ(december.start, 1733011200 * kSecond);
  EXPECT_EQ(december.end, 1735689600 * kSecond);
  EXPECT_EQ(month_window(1735689600 * kSecond).start, 1735689600 * kSecond);  // 2025-01-01 starts January
  const Window february2100 = month_window(4107456000 * kSecond);             // 2100-02-28: not a leap year
  EXPECT_EQ(february2100.start, 4105123200 * kSecond);
  EXPECT_EQ(february2100.end, 4107542400 * kSecond);
}

TEST(PolicyWindow, BeforeTheEpoch) {
  const Window month = month_window(-3600 * kSecond);  // 1969-12-31 23:00
  EXPECT_EQ(month.start, -2678400 * kSecond);
  EXPECT_EQ(month.end, 0);
  EXPECT_EQ(day_window(-3600 * kSecond).start, -86400 * kSecond);
  EXPECT_EQ(iso_utc(-3600 * kSecond), "1969-12-31T23:00:00+00:00");
}

TEST(PolicyWindow, PeriodNames) {
  EXPECT_EQ(period_named("daily"), Period::daily);
  EXPECT_EQ(period_named("monthly"), Period::monthly);
  EXPECT_EQ(name_of(Period::daily), "daily");
  EXPECT_TRUE(Throws([] { period_named("weekly"); }, Errc::invalid_value, "period must be 'daily' or 'monthly'"));
  EXPECT_EQ(window_of(Period::daily, 0), day_window(0));
  EXPECT_EQ(window_of(Period::monthly, 0), month_window(0));
}

// ---- allowance ---------------------------------------------------------------------------------------

TEST(PolicyAllowance, CoverIsTheSmallerOfPriceAndRemaining) {
  EXPECT_EQ(allowance_cover(3 * kCredit, 5 * kCredit), 3 * kCredit);
  EXPECT_EQ(allowance_cover(7 * kCredit, 5 * kCredit), 5 * kCredit);
  EXPECT_EQ(allowance_cover(7 * kCredit, 0), 0);
  EXPECT_EQ(allowance_cover(0, 5 * kCredit), 0);
  EXPECT_EQ(allowance_remaining(5 * kCredit, 2 * kCredit), 3 * kCredit);
  // A plan change that lowered the allowance below what was used leaves nothing, not a negative.
  EXPECT_EQ(allowance_remaining(1 * kCredit, 2 * kCredit), 0);
}

TEST(PolicyAllowance, OfAPlan) {
  pricing::Plan plan;
  plan.free_allowance = Decimal::parse("12.5");
  EXPECT_EQ(allowance_of(&plan), 12'500'000);
  EXPECT_EQ(allowance_of(nullptr), 0);
}

// ---- caps --------------------------------------------------------------------------------------------

Cap make_cap(CapAction action, Micros cap, std::int32_t warn_ppm = 800'000) {
  Cap result;
  result.action = action;
  result.cap = cap;
  result.warn_ppm = warn_ppm;
  return result;
}

TEST(PolicyCap, NamesAndWarnAt) {
  EXPECT_EQ(cap_action_named("notify"), CapAction::notify);
  EXPECT_EQ(name_of(CapAction::warn), "warn");
  EXPECT_TRUE(Throws([] { cap_action_named("block"); }, Errc::invalid_value,
                     "action must be 'deny', 'warn' or 'notify'"));
  EXPECT_EQ(warn_at_ppm(Decimal::parse("0.8")), 800'000);
  EXPECT_EQ(warn_at_ppm(Decimal::parse("1")), 1'000'000);
  EXPECT_TRUE(Throws([] { warn_at_ppm(Decimal::parse("0")); }, Errc::invalid_value,
                     "warn_at must be greater than 0 and at most 1"));
  EXPECT_TRUE(Throws([] { warn_at_ppm(Decimal::parse("1.01")); }, Errc::invalid_value,
                     "warn_at must be greater than 0 and at most 1"));
  EXPECT_TRUE(Throws([] { warn_at_ppm(Decimal::parse("0.0000001")); }, Errc::invalid_value,
                     "warn_at has more than 6 decimal places"));
}

TEST(PolicyCap, DenyRefusesWhatWouldGoOver) {
  const Cap cap = make_cap(CapAction::deny, 10 * kCredit);
  const CapDecision exact = decide(cap, {9 * kCredit, true, false}, 1 * kCredit);
  EXPECT_FALSE(exact.denied);  // reaching the cap exactly is allowed
  EXPECT_EQ(exact.after.spent, 10 * kCredit);
  EXPECT_FALSE(exact.cap_exceeded);
  const CapDecision over = decide(cap, {9 * kCredit, true, false}, 1 * kCredit + 1);
  EXPECT_TRUE(over.denied);
  EXPECT_EQ(over.after.spent, 9 * kCredit);  // nothing counted
  EXPECT_FALSE(over.threshold_crossed);
  // A free debit is never refused, even over the cap.
  EXPECT_FALSE(decide(cap, {11 * kCredit, true, false}, 0).denied);
}

TEST(PolicyCap, WarnAtCrossedOncePerWindow) {
  const Cap cap = make_cap(CapAction::deny, 10 * kCredit);
  EXPECT_EQ(warn_threshold(cap), 8 * kCredit);
  const CapDecision below = decide(cap, {}, 7 * kCredit);
  EXPECT_FALSE(below.threshold_crossed);
  const CapDecision crossing = decide(cap, below.after, 1 * kCredit);  // exactly 8: reached
  EXPECT_TRUE(crossing.threshold_crossed);
  EXPECT_TRUE(crossing.after.warned);
  EXPECT_FALSE(decide(cap, crossing.after, 1 * kCredit).threshold_crossed);
  // A refund lowers spend, but the warning stays given for the window.
  const CapState refunded = after_refund(crossing.after, 5 * kCredit);
  EXPECT_EQ(refunded.spent, 3 * kCredit);
  EXPECT_FALSE(decide(cap, refunded, 6 * kCredit).threshold_crossed);
  // The next window starts fresh.
  const Window next = month_window(0);
  EXPECT_EQ(state_in_window(crossing.after, next.start - 1, next), CapState{});
  EXPECT_EQ(state_in_window(crossing.after, next.start, next), crossing.after);
}

TEST(PolicyCap, WarnThresholdRoundsUp) {
  EXPECT_EQ(warn_threshold(make_cap(CapAction::warn, 3, 500'000)), 2);  // 1.5 micro-credits -> 2
  EXPECT_EQ(warn_threshold(make_cap(CapAction::warn, 999'999'999'999'999'999, 1'000'000)), 999'999'999'999'999'999);
}

TEST(PolicyCap, WarnAndNotifyLetItThroughAndAnnounceTheCapOnce) {
  for (const CapAction action : {CapAction::warn, CapAction::notify}) {
    const Cap cap = make_cap(action, 10 * kCredit, 1'000'000);
    const CapDecision reach = decide(cap, {}, 10 * kCredit);
    EXPECT_FALSE(reach.denied);
    EXPECT_TRUE(reach.threshold_crossed);  // warn_at 1: reaching the cap
    EXPECT_FALSE(reach.cap_exceeded);      // not over it yet
    const CapDecision over = decide(cap, reach.after, 1);
    EXPECT_FALSE(over.denied);
    EXPECT_TRUE(over.cap_exceeded);
    EXPECT_EQ(over.after.spent, 10 * kCredit + 1);
    EXPECT_FALSE(decide(cap, over.after, 5 * kCredit).cap_exceeded);
  }
}

TEST(PolicyCap, ThresholdAndCapInOneDebit) {
  const CapDecision both = decide(make_cap(CapAction::warn, 10 * kCredit), {}, 20 * kCredit);
  EXPECT_TRUE(both.threshold_crossed);
  EXPECT_TRUE(both.cap_exceeded);
}

TEST(PolicyCap, ModelCapsApplyToTheirModelOnly) {
  Cap cap = make_cap(CapAction::deny, kCredit);
  EXPECT_TRUE(cap_applies(cap, std::nullopt));
  EXPECT_TRUE(cap_applies(cap, "gpt-4"));
  cap.model = "gpt-4";
  EXPECT_TRUE(cap_applies(cap, "gpt-4"));
  EXPECT_FALSE(cap_applies(cap, "gpt-4o"));
  EXPECT_FALSE(cap_applies(cap, std::nullopt));
}

TEST(PolicyCap, NewCapDoesNotAnnounceThePast) {
  const Cap cap = make_cap(CapAction::warn, 10 * kCredit);
  EXPECT_EQ(state_for_new_cap(cap, 9 * kCredit), (CapState{9 * kCredit, true, false}));
  EXPECT_EQ(state_for_new_cap(cap, 11 * kCredit), (CapState{11 * kCredit, true, true}));
  EXPECT_EQ(state_for_new_cap(make_cap(CapAction::deny, 10 * kCredit), 11 * kCredit),
            (CapState{11 * kCredit, true, false}));
  EXPECT_EQ(state_for_new_cap(cap, 0), CapState{});
}

// ---- low balance -------------------------------------------------------------------------------------

TEST(PolicyLowBalance, LowestThresholdCrossed) {
  const std::vector<Micros> thresholds = {20 * kCredit, 100 * kCredit};
  EXPECT_EQ(low_balance_crossed(thresholds, 150 * kCredit, 120 * kCredit), std::nullopt);
  EXPECT_EQ(low_balance_crossed(thresholds, 150 * kCredit, 100 * kCredit), 100 * kCredit);  // at: crossed
  EXPECT_EQ(low_balance_crossed(thresholds, 150 * kCredit, 10 * kCredit), 20 * kCredit);    // both: the lowest
  EXPECT_EQ(low_balance_crossed(thresholds, 100 * kCredit, 50 * kCredit), std::nullopt);    // was not above
  EXPECT_EQ(low_balance_crossed(thresholds, 50 * kCredit, 20 * kCredit), 20 * kCredit);
  EXPECT_EQ(low_balance_crossed(thresholds, 50 * kCredit, 50 * kCredit), std::nullopt);
  EXPECT_EQ(low_balance_crossed({}, 50 * kCredit, 0), std::nullopt);
  // Zero is a threshold like any other; a negative balance is below it.
  const std::vector<Micros> zero = {0};
  EXPECT_EQ(low_balance_crossed(zero, 1, -5), 0);
}

TEST(PolicyLowBalance, RearmsOnlyAfterRisingAbove) {
  const std::vector<Micros> thresholds = {20 * kCredit};
  EXPECT_EQ(low_balance_crossed(thresholds, 30 * kCredit, 15 * kCredit), 20 * kCredit);
  EXPECT_EQ(low_balance_crossed(thresholds, 15 * kCredit, 10 * kCredit), std::nullopt);
  // A grant to exactly the threshold does not re-arm it; above it does.
  EXPECT_EQ(low_balance_crossed(thresholds, 20 * kCredit, 19 * kCredit), std::nullopt);
  EXPECT_EQ(low_balance_crossed(thresholds, 21 * kCredit, 19 * kCredit), 20 * kCredit);
}

TEST(PolicyLowBalance, ThresholdsFromDecimals) {
  const std::vector<Decimal> input = {Decimal::parse("100"), Decimal::parse("0.5"), Decimal::parse("100.0")};
  EXPECT_EQ(thresholds_micros(input), (std::vector<Micros>{500'000, 100 * kCredit}));
  const std::vector<Decimal> negative = {Decimal::parse("-1")};
  EXPECT_TRUE(Throws([&] { thresholds_micros(negative); }, Errc::invalid_value, "thresholds must not be negative"));
  const std::vector<Decimal> fine = {Decimal::parse("0.0000001")};
  EXPECT_TRUE(Throws([&] { thresholds_micros(fine); }, Errc::invalid_value,
                     "thresholds must be amounts below 1000000000000 with at most 6 decimal places"));
}

TEST(PolicyCap, RefusalCodes) {
  EXPECT_EQ(ledger::code_of(ledger::Rejection::cap_reached), "cap_reached");
  EXPECT_EQ(ledger::code_of(ledger::Rejection::not_a_member), "not_a_member");
  EXPECT_EQ(ledger::code_of(ledger::Rejection::member_cap_reached), "member_cap_reached");
}

// ---- features ----------------------------------------------------------------------------------------

TEST(PolicyFeature, PresenceNotTruthiness) {
  pricing::Plan plan;
  plan.features = {{"priority_queue", "true"}, {"max_seats", "0"}, {"label", "\"\""}};
  EXPECT_EQ(feature_value(&plan, "priority_queue"), "true");
  EXPECT_EQ(feature_value(&plan, "max_seats"), "0");
  EXPECT_EQ(feature_value(&plan, "label"), "\"\"");
  EXPECT_EQ(feature_value(&plan, "sso"), std::nullopt);
  EXPECT_EQ(feature_value(nullptr, "priority_queue"), std::nullopt);
}

TEST(PolicyFeature, JsonString) {
  EXPECT_EQ(json_string("Pro"), "\"Pro\"");
  EXPECT_EQ(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace ducto::policy
