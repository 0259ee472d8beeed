// src/core/policy/policy.cpp: the pure policy rules (see policy.h).
#include "core/no_postgres.h"

#include "core/policy/policy.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace ducto::policy {

namespace {

constexpr std::int64_t kMicrosPerSecond = 1'000'000;
constexpr std::int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

[[noreturn]] void invalid(const std::string& message) { throw Error(Errc::invalid_value, message); }

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

struct CivilDate {
  std::int64_t year;
  int month;  // 1-12
  int day;    // 1-31
};

// Days since 1970-01-01 of a proleptic Gregorian date. Years are counted from March so that the leap
// day ends a year; eras are the 400-year cycles of 146097 days.
std::int64_t days_from_civil(CivilDate date) {
  const std::int64_t year = date.month <= 2 ? date.year - 1 : date.year;
  const std::int64_t era = floor_div(year, 400);
  const std::int64_t year_of_era = year - era * 400;
  const std::int64_t month_from_march = date.month > 2 ? date.month - 3 : date.month + 9;
  const std::int64_t day_of_year = (153 * month_from_march + 2) / 5 + date.day - 1;
  const std::int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

CivilDate civil_from_days(std::int64_t days) {
  const std::int64_t shifted = days + 719468;
  const std::int64_t era = floor_div(shifted, 146097);
  const std::int64_t day_of_era = shifted - era * 146097;
  const std::int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const std::int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::int64_t month_from_march = (5 * day_of_year + 2) / 153;
  const int day = static_cast<int>(day_of_year - (153 * month_from_march + 2) / 5 + 1);
  const int month = static_cast<int>(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
  const std::int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

}  // namespace

Period period_named(std::string_view name) {
  if (name == "daily") return Period::daily;
  if (name == "monthly") return Period::monthly;
  invalid("period must be 'daily' or 'monthly'");
}

std::string_view name_of(Period period) { return period == Period::daily ? "daily" : "monthly"; }

Window day_window(UnixMicros at) {
  const std::int64_t day = floor_div(at, kMicrosPerDay);
  return {day * kMicrosPerDay, (day + 1) * kMicrosPerDay};
}

Window month_window(UnixMicros at) {
  const CivilDate date = civil_from_days(floor_div(at, kMicrosPerDay));
  const CivilDate first{date.year, date.month, 1};
  const CivilDate next = date.month == 12 ? CivilDate{date.year + 1, 1, 1} : CivilDate{date.year, date.month + 1, 1};
  return {days_from_civil(first) * kMicrosPerDay, days_from_civil(next) * kMicrosPerDay};
}

Window window_of(Period period, UnixMicros at) {
  return period == Period::daily ? day_window(at) : month_window(at);
}

std::string iso_utc(UnixMicros at) {
  const std::int64_t days = floor_div(at, kMicrosPerDay);
  const CivilDate date = civil_from_days(days);
  const std::int64_t seconds = floor_div(at - days * kMicrosPerDay, kMicrosPerSecond);
  char text[48];
  std::snprintf(text, sizeof text, "%04lld-%02d-%02dT%02lld:%02lld:%02lld+00:00", static_cast<long long>(date.year),
                date.month, date.day, static_cast<long long>(seconds / 3600), static_cast<long long>(seconds / 60 % 60),
                static_cast<long long>(seconds % 60));
  return text;
}

// ---- allowance -------------------------------------------------------------------------------------

Micros allowance_of(const pricing::Plan* plan) {
  if (plan == nullptr) return 0;
  const std::optional<Micros> micros = plan->free_allowance.to_micros();
  // The config validated it as an amount; clamp anything unrepresentable to the amount limit.
  return micros ? std::clamp<Micros>(*micros, 0, ledger::kAmountLimit) : ledger::kAmountLimit;
}

Micros allowance_remaining(Micros allowance, Micros used) { return std::max<Micros>(0, allowance - used); }

Micros allowance_cover(Micros total, Micros remaining) { return std::max<Micros>(0, std::min(total, remaining)); }

// ---- spend caps ------------------------------------------------------------------------------------

CapAction cap_action_named(std::string_view name) {
  if (name == "deny") return CapAction::deny;
  if (name == "warn") return CapAction::warn;
  if (name == "notify") return CapAction::notify;
  invalid("action must be 'deny', 'warn' or 'notify'");
}

std::string_view name_of(CapAction action) {
  switch (action) {
    case CapAction::deny: return "deny";
    case CapAction::warn: return "warn";
    case CapAction::notify: return "notify";
  }
  return "deny";
}

std::int32_t warn_at_ppm(const Decimal& warn_at) {
  if (warn_at.sign() <= 0 || warn_at > Decimal(1)) invalid("warn_at must be greater than 0 and at most 1");
  const std::optional<std::int64_t> ppm = warn_at.to_micros();
  if (!ppm) invalid("warn_at has more than 6 decimal places");
  return static_cast<std::int32_t>(*ppm);
}

CapState state_in_window(const CapState& stored, UnixMicros stored_window_start, const Window& current) {
  return stored_window_start == current.start ? stored : CapState{};
}

bool cap_applies(const Cap& cap, std::optional<std::string_view> model) {
  return !cap.model || (model && *model == *cap.model);
}

Micros warn_threshold(const Cap& cap) {
  const __int128 product = static_cast<__int128>(cap.cap) * cap.warn_ppm;
  return static_cast<Micros>((product + 999'999) / 1'000'000);
}

CapDecision decide(const Cap& cap, const CapState& state, Micros amount) {
  CapDecision decision;
  decision.after = state;
  if (amount <= 0) return decision;
  const Micros spent = ledger::checked_add(state.spent, amount);
  if (cap.action == CapAction::deny && spent > cap.cap) {
    decision.denied = true;
    return decision;
  }
  decision.after.spent = spent;
  if (!state.warned && spent >= warn_threshold(cap)) {
    decision.threshold_crossed = true;
    decision.after.warned = true;
  }
  if (cap.action != CapAction::deny && !state.exceeded && spent > cap.cap) {
    decision.cap_exceeded = true;
    decision.after.exceeded = true;
  }
  return decision;
}

CapState after_refund(const CapState& state, Micros amount) {
  CapState after = state;
  after.spent = ledger::checked_sub(state.spent, amount);
  return after;
}

CapState state_for_new_cap(const Cap& cap, Micros spent) {
  return {spent, spent >= warn_threshold(cap), cap.action != CapAction::deny && spent > cap.cap};
}

// ---- low balance -----------------------------------------------------------------------------------

std::optional<Micros> low_balance_crossed(std::span<const Micros> thresholds, Micros before, Micros after) {
  std::optional<Micros> lowest;
  for (const Micros threshold : thresholds) {
    if (before > threshold && after <= threshold && (!lowest || threshold < *lowest)) lowest = threshold;
  }
  return lowest;
}

std::vector<Micros> thresholds_micros(std::span<const Decimal> thresholds) {
  std::vector<Micros> micros;
  micros.reserve(thresholds.size());
  for (const Decimal& threshold : thresholds) {
    const std::optional<Micros> value = threshold.to_micros();
    if (threshold.is_negative()) invalid("thresholds must not be negative");
    if (!value || *value >= ledger::kAmountLimit) {
      invalid("thresholds must be amounts below 1000000000000 with at most 6 decimal places");
    }
    micros.push_back(*value);
  }
  std::sort(micros.begin(), micros.end());
  micros.erase(std::unique(micros.begin(), micros.end()), micros.end());
  return micros;
}

// ---- features --------------------------------------------------------------------------------------

std::optional<std::string_view> feature_value(const pricing::Plan* plan, std::string_view feature) {
  if (plan == nullptr) return std::nullopt;
  const auto found = plan->features.find(feature);
  if (found == plan->features.end()) return std::nullopt;
  return std::string_view(found->second);
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace ducto::policy
