// src/core/ledger/uuid.h: time-ordered identifiers (UUID version 7, RFC 9562) for ledger rows, holds and
// events (design.md, The hot path: "UUIDv7-style ids (time-ordered) rather than random UUIDs").
//
// Layout: 48 bits of Unix milliseconds, version 7, 12 bits of sub-millisecond fraction (RFC 9562,
// method 3), the variant, 62 random bits. The glue supplies the clock and the random bits; ordering
// ids after a given one (uuid_after) keeps one account's ledger in id order even when clocks step back
// or a call read the clock before waiting for the account's lock.
#pragma once
#include "core/no_postgres.h"

#include <array>
#include <cstdint>
#include <string>

namespace ducto::ledger {

using Uuid = std::array<std::uint8_t, 16>;  // byte order = Postgres' uuid order (memcmp)

// The 12-bit fraction of a millisecond for `micros` (0..999) microseconds into it.
std::uint16_t sub_ms_fraction(std::uint32_t micros);

// A version 7 UUID. `unix_ms` keeps its low 48 bits, `sub_ms` its low 12, `random` its low 62.
Uuid uuid_v7(std::uint64_t unix_ms, std::uint16_t sub_ms, std::uint64_t random);

// `candidate` when it sorts after `floor`, otherwise the UUID right after `floor` (its 74 bits below
// the timestamp plus one, carrying into the timestamp).
Uuid uuid_after(const Uuid& candidate, const Uuid& floor);

// The canonical text form: 8-4-4-4-12 lowercase hex digits.
std::string to_string(const Uuid& uuid);

}  // namespace ducto::ledger
