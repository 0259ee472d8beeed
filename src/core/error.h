// src/core/error.h: the one exception type of the core.
// Every error the core raises carries the SQLSTATE the Postgres glue reports, so the glue never has to
// guess a code from a message (design.md, boundary rule 3).
#pragma once
#include "core/no_postgres.h"

#include <stdexcept>
#include <string>

namespace ducto {

// The SQLSTATEs the core can raise; the glue maps each to its ERRCODE_*.
enum class Errc {
  invalid_value,  // 22023 invalid_parameter_value
  null_value,     // 22004 null_value_not_allowed
  out_of_range,   // 22003 numeric_value_out_of_range
  not_ready,      // 55000 object_not_in_prerequisite_state
};

// The five-character SQLSTATE of a code, for messages and tests.
constexpr const char* sqlstate(Errc code) {
  switch (code) {
    case Errc::invalid_value: return "22023";
    case Errc::null_value: return "22004";
    case Errc::out_of_range: return "22003";
    case Errc::not_ready: return "55000";
  }
  return "XX000";
}

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace ducto
