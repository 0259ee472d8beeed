// src/core/ledger/request.h: the canonical bytes of a request, for its idempotency digest
// (design.md, Idempotency: "the request digest covers the operation and every argument, metadata
// included").
//
// Each field is a tag byte (null, text, integer) followed by its value: text as an 8-byte big-endian
// length and the bytes, an integer as 8 big-endian bytes. The operation's name comes first. So two
// requests have the same bytes exactly when they name the same operation with the same arguments, and
// no choice of text can make two different argument lists collide. The glue hashes the bytes (SHA-256).
#pragma once
#include "core/no_postgres.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ducto::ledger {

class RequestBytes {
 public:
  explicit RequestBytes(std::string_view operation);
  RequestBytes& text(std::optional<std::string_view> value);
  RequestBytes& integer(std::optional<std::int64_t> value);
  const std::string& bytes() const { return bytes_; }

 private:
  void append_u64(std::uint64_t value);
  std::string bytes_;
};

}  // namespace ducto::ledger
