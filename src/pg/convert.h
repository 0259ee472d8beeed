// src/pg/convert.h: conversions between Postgres values (numeric, jsonb, text, arguments) and core types.
//
// Every function here that calls Postgres does so through pg_call (bridge.h), so any of them may be used
// while C++ objects are alive. Results that point into Postgres memory (string_views, spans, Datums)
// live in the current memory context: they are valid for the rest of the SQL function call.
#pragma once
#include "pg/pg_headers.h"

#include <optional>
#include <span>
#include <string_view>

namespace ducto::pg {

// ---- arguments -------------------------------------------------------------------------------------

// The detoasted jsonb argument `n`, or nullptr when it is NULL.
Jsonb* jsonb_arg(FunctionCallInfo fcinfo, int n);
// The jsonb argument `n`; a NULL raises Error(null_value, "<name> must not be NULL").
Jsonb* required_jsonb_arg(FunctionCallInfo fcinfo, int n, std::string_view name);
// The text argument `n` (pointing into the detoasted datum), or nullopt when it is NULL.
std::optional<std::string_view> text_arg(FunctionCallInfo fcinfo, int n);
std::string_view required_text_arg(FunctionCallInfo fcinfo, int n, std::string_view name);

// ---- numeric ---------------------------------------------------------------------------------------

// The exact value of a numeric. NaN and infinities raise Error(invalid_value); a value the Decimal cannot
// hold raises the core's error (out_of_range).
Decimal to_decimal(Numeric value);
// A numeric with exactly 6 fractional digits; `value` must already be rounded to 6 places.
Numeric to_money_numeric(const Decimal& value);

// ---- jsonb -----------------------------------------------------------------------------------------

struct JsonbMember {
  std::string_view key;
  JsonbValue value;  // a scalar, or jbvBinary for a nested object or array
};

bool is_object(const Jsonb* document);
// The members of a jsonb object in storage order (jsonb sorts keys by length, then bytes).
std::span<const JsonbMember> object_members(JsonbContainer* object);
// The elements of a jsonb array; nested containers come as jbvBinary.
std::span<const JsonbValue> array_elements(JsonbContainer* array);
// True when a jbvBinary value holds an object (false: an array).
bool is_object_container(const JsonbValue& value);

inline std::string_view string_of(const JsonbValue& value) {
  return {value.val.string.val, static_cast<std::size_t>(value.val.string.len)};
}
JsonbValue jsonb_string(std::string_view text);
JsonbValue jsonb_numeric(Numeric number);
// An amount as a jsonb number with exactly 6 places (as to_money_numeric). A zero shares one per-backend
// numeric: use the value only to build jsonb, which copies it.
JsonbValue jsonb_money(const Decimal& value);

struct JsonbField {
  std::string_view key;
  JsonbValue value;  // a scalar: string, numeric, boolean or null
};
// A jsonb object of at most 32 scalar members with distinct keys, in any order.
Jsonb* make_jsonb_object(std::span<const JsonbField> fields);

// The jsonb document as JSON text (jsonb's canonical form), in the current memory context.
std::string_view jsonb_text(Jsonb* document);
// The bytes of a jsonb datum's binary form: equal bytes mean equal documents.
inline std::string_view jsonb_bytes(const Jsonb* document) {
  return {VARDATA_ANY(document), VARSIZE_ANY_EXHDR(document)};
}

// ---- text ------------------------------------------------------------------------------------------

inline std::string_view view_of(const text* value) {
  return {VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)};
}
text* make_text(std::string_view value);

}  // namespace ducto::pg
