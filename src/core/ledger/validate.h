// src/core/ledger/validate.h: the argument checks of the credit operations (issue 3, Contract).
//
// Every check runs before an operation takes its account lock, and every failure is an
// Error(invalid_value) (SQLSTATE 22023) whose message names the argument, so a bad call changes
// nothing. Text is UTF-8 (ducto expects a UTF-8 database): lengths count characters, not bytes.
#pragma once
#include "core/no_postgres.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/ledger/money.h"

namespace ducto::ledger {

inline constexpr std::size_t kMaxIdLength = 255;           // user ids, idempotency keys, labels
inline constexpr std::size_t kMaxReasonLength = 1000;
inline constexpr std::size_t kMaxMetadataBytes = 16 * 1024;  // as JSON text
inline constexpr std::int64_t kMicrosPerDay = 86'400LL * 1'000'000;
inline constexpr std::int64_t kMaxTtlMicros = 7 * kMicrosPerDay;
inline constexpr int kMaxListRows = 1000;

// A positive amount from its plain decimal text (numeric's output: "12.50", "-3", "NaN", "Infinity"),
// in micro-credits. Finite, positive, below 10^12, no non-zero digit past the 6th decimal place.
Micros parse_amount(std::string_view numeric_text);

// 1 to 255 characters, no control character, no white space at either end.
void check_user_id(std::string_view user_id);
// 1 to 255 characters.
void check_idempotency_key(std::string_view key);
// source and operation_type: 1 to 255 characters. `name` is the argument's name for the message.
void check_label(std::string_view value, std::string_view name);
// At most 1000 characters.
void check_reason(std::string_view reason);

// An interval's parts (months, days, microseconds) as a TTL in microseconds: positive, at most 7 days,
// no months (a month has no fixed length).
std::int64_t ttl_micros(std::int32_t months, std::int32_t days, std::int64_t time_micros);

// Caller metadata: a JSON object of at most 16 kB as text.
void check_metadata(bool is_object, std::size_t text_bytes);

// A lot's expiry must be later than the operation's clock reading (both Postgres timestamps).
void check_expires_at(std::int64_t expires_at, std::int64_t now);

// transactions(max_rows): 1 to 1000.
void check_max_rows(std::int64_t max_rows);
// expire_credits(max_users): positive.
void check_max_users(std::int64_t max_users);

// Number of characters of UTF-8 text (bytes that are not continuation bytes).
std::size_t utf8_length(std::string_view text);

}  // namespace ducto::ledger
