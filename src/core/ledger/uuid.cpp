// src/core/ledger/uuid.cpp: UUIDv7 layout and ordering (see uuid.h).
#include "core/no_postgres.h"

#include "core/ledger/uuid.h"

namespace ducto::ledger {
namespace {

constexpr std::uint8_t kVersion7 = 0x70;
constexpr std::uint8_t kVariant = 0x80;

// The 48-bit timestamp (bytes 0-5) and the 74-bit counter (12 bits of bytes 6-7, 62 of bytes 8-15).
struct Fields {
  std::uint64_t unix_ms;
  std::uint16_t sub_ms;
  std::uint64_t random;
};

Fields fields_of(const Uuid& uuid) {
  Fields fields{0, 0, 0};
  for (int i = 0; i < 6; ++i) fields.unix_ms = (fields.unix_ms << 8) | uuid[i];
  fields.sub_ms = static_cast<std::uint16_t>(((uuid[6] & 0x0F) << 8) | uuid[7]);
  fields.random = uuid[8] & 0x3F;
  for (int i = 9; i < 16; ++i) fields.random = (fields.random << 8) | uuid[i];
  return fields;
}

}  // namespace

std::uint16_t sub_ms_fraction(std::uint32_t micros) {
  return static_cast<std::uint16_t>((micros % 1000) * 4096 / 1000);
}

Uuid uuid_v7(std::uint64_t unix_ms, std::uint16_t sub_ms, std::uint64_t random) {
  Uuid uuid{};
  for (int i = 0; i < 6; ++i) uuid[i] = static_cast<std::uint8_t>(unix_ms >> (8 * (5 - i)));
  uuid[6] = static_cast<std::uint8_t>(kVersion7 | ((sub_ms >> 8) & 0x0F));
  uuid[7] = static_cast<std::uint8_t>(sub_ms);
  uuid[8] = static_cast<std::uint8_t>(kVariant | ((random >> 56) & 0x3F));
  for (int i = 9; i < 16; ++i) uuid[i] = static_cast<std::uint8_t>(random >> (8 * (15 - i)));
  return uuid;
}

Uuid uuid_after(const Uuid& candidate, const Uuid& floor) {
  if (candidate > floor) return candidate;
  Fields next = fields_of(floor);
  constexpr std::uint64_t kRandomMax = (std::uint64_t{1} << 62) - 1;
  constexpr std::uint16_t kSubMsMax = 0x0FFF;
  if (next.random < kRandomMax) {
    ++next.random;
  } else if (next.random = 0; next.sub_ms < kSubMsMax) {
    ++next.sub_ms;
  } else {
    next.sub_ms = 0;
    ++next.unix_ms;
  }
  return uuid_v7(next.unix_ms, next.sub_ms, next.random);
}

std::string to_string(const Uuid& uuid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += kHex[uuid[i] >> 4];
    text += kHex[uuid[i] & 0x0F];
  }
  return text;
}

}  // namespace ducto::ledger
