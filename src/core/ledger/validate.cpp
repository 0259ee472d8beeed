// src/core/ledger/validate.cpp: argument checks (see validate.h).
#include "core/no_postgres.h"

#include "core/ledger/validate.h"

#include <string>

#include "core/error.h"

namespace ducto::ledger {
namespace {

[[noreturn]] void invalid(const std::string& message) { throw Error(Errc::invalid_value, message); }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The code point starting at text[at] (text is UTF-8; a malformed sequence yields its first byte).
char32_t decode_at(std::string_view text, std::size_t at, std::size_t* length) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char first = byte(at);
  std::size_t size = 1;
  char32_t code = first;
  if (first >= 0xF0) {
    size = 4;
    code = first & 0x07;
  } else if (first >= 0xE0) {
    size = 3;
    code = first & 0x0F;
  } else if (first >= 0xC0) {
    size = 2;
    code = first & 0x1F;
  }
  if (size == 1 || at + size > text.size()) {
    *length = 1;
    return first;
  }
  for (std::size_t i = 1; i < size; ++i) code = (code << 6) | (byte(at + i) & 0x3F);
  *length = size;
  return code;
}

bool is_control(char32_t code) { return code < 0x20 || (code >= 0x7F && code <= 0x9F); }

// Unicode white space (the Zs category, line/paragraph separators, the BOM); controls are refused
// separately.
bool is_space(char32_t code) {
  return code == 0x20 || code == 0xA0 || code == 0x1680 || (code >= 0x2000 && code <= 0x200A) || code == 0x2028 ||
         code == 0x2029 || code == 0x202F || code == 0x205F || code == 0x3000 || code == 0xFEFF;
}

// The first code point of the last character.
std::size_t last_character_start(std::string_view text) {
  std::size_t at = text.size() - 1;
  while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
  return at;
}

void check_length(std::string_view value, std::string_view name, std::size_t min, std::size_t max) {
  const std::size_t length = utf8_length(value);
  if (length < min || length > max) {
    invalid(std::string(name) + (min == 0 ? " must be at most " + std::to_string(max) + " characters"
                                          : " must be " + std::to_string(min) + " to " + std::to_string(max) +
                                                " characters"));
  }
}

}  // namespace

std::size_t utf8_length(std::string_view text) {
  std::size_t count = 0;
  for (const char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

Micros parse_amount(std::string_view text) {
  if (text == "NaN" || text == "Infinity" || text == "-Infinity") invalid("amount must be a finite number");
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  const std::size_t point = text.find('.');
  std::string_view integer = text.substr(0, point);
  std::string_view fraction = point == std::string_view::npos ? std::string_view{} : text.substr(point + 1);
  if (integer.empty() && fraction.empty()) invalid("amount must be a number");
  for (const char c : integer) {
    if (!is_digit(c)) invalid("amount must be a number");
  }
  for (const char c : fraction) {
    if (!is_digit(c)) invalid("amount must be a number");
  }
  while (!integer.empty() && integer.front() == '0') integer.remove_prefix(1);
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (integer.empty() && fraction.empty()) invalid("amount must be positive");
  if (negative) invalid("amount must be positive");
  if (integer.size() > 12) invalid("amount must be below 1000000000000");
  if (fraction.size() > 6) invalid("amount has more than 6 decimal places");
  Micros micros = 0;
  for (const char c : integer) micros = micros * 10 + (c - '0');
  for (std::size_t place = 0; place < 6; ++place) {
    micros = micros * 10 + (place < fraction.size() ? fraction[place] - '0' : 0);
  }
  return micros;
}

void check_user_id(std::string_view user_id) {
  check_length(user_id, "user_id", 1, kMaxIdLength);
  std::size_t length = 0;
  for (std::size_t at = 0; at < user_id.size(); at += length) {
    if (is_control(decode_at(user_id, at, &length))) invalid("user_id must not contain control characters");
  }
  if (is_space(decode_at(user_id, 0, &length)) || is_space(decode_at(user_id, last_character_start(user_id), &length))) {
    invalid("user_id must not begin or end with white space");
  }
}

void check_idempotency_key(std::string_view key) { check_length(key, "idempotency_key", 1, kMaxIdLength); }

void check_label(std::string_view value, std::string_view name) { check_length(value, name, 1, kMaxIdLength); }

void check_reason(std::string_view reason) { check_length(reason, "reason", 0, kMaxReasonLength); }

std::int64_t ttl_micros(std::int32_t months, std::int32_t days, std::int64_t time_micros) {
  const __int128 total = static_cast<__int128>(days) * kMicrosPerDay + time_micros;
  if (months != 0 || total <= 0 || total > kMaxTtlMicros) invalid("ttl must be positive and at most 7 days");
  return static_cast<std::int64_t>(total);
}

void check_metadata(bool is_object, std::size_t text_bytes) {
  if (!is_object || text_bytes > kMaxMetadataBytes) invalid("metadata must be a JSON object of at most 16 kB");
}

void check_expires_at(std::int64_t expires_at, std::int64_t now) {
  if (expires_at <= now) invalid("expires_at must be in the future");
}

void check_max_rows(std::int64_t max_rows) {
  if (max_rows < 1 || max_rows > kMaxListRows) invalid("max_rows must be between 1 and 1000");
}

void check_max_users(std::int64_t max_users) {
  if (max_users < 1) invalid("max_users must be positive");
}

}  // namespace ducto::ledger
