// src/pg/convert.cpp: numeric, jsonb and text conversions (see convert.h).
#include "pg/convert.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string>

#include "pg/bridge.h"

namespace ducto::pg {

// ---- arguments -------------------------------------------------------------------------------------

namespace {

[[noreturn]] void throw_null_argument(std::string_view name) {
  throw Error(Errc::null_value, std::string(name) + " must not be NULL");
}

}  // namespace

Jsonb* jsonb_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return nullptr;
  return pg_call([&]() noexcept { return PG_GETARG_JSONB_P(n); });
}

Jsonb* required_jsonb_arg(FunctionCallInfo fcinfo, int n, std::string_view name) {
  Jsonb* value = jsonb_arg(fcinfo, n);
  if (value == nullptr) throw_null_argument(name);
  return value;
}

std::optional<std::string_view> text_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return view_of(pg_call([&]() noexcept { return PG_GETARG_TEXT_PP(n); }));
}

std::string_view required_text_arg(FunctionCallInfo fcinfo, int n, std::string_view name) {
  const std::optional<std::string_view> value = text_arg(fcinfo, n);
  if (!value) throw_null_argument(name);
  return *value;
}

// ---- numeric ---------------------------------------------------------------------------------------

namespace {

constexpr Decimal::Coefficient pow10(int exponent) {
  Decimal::Coefficient result = 1;
  for (int i = 0; i < exponent; ++i) result *= 10;
  return result;
}

// numeric's storage format (Postgres' numeric.c; it is the on-disk format, which pg_upgrade keeps, so it
// does not change between versions). After the varlena header comes a uint16 word:
//   0xC000 set           NaN or an infinity (rejected before this is called);
//   0x8000 set (short)   sign 0x2000, display scale in bits 7-12, weight in bits 0-6 (sign 0x0040);
//   otherwise (long)     sign 0x4000 and display scale 0x3FFF, then an int16 weight.
// Then base-10000 digits (int16), the first one worth 10000^weight, trailing zero digits omitted.
struct NumericParts {
  bool negative = false;
  int weight = 0;
  int display_scale = 0;
  const char* digits = nullptr;
  std::size_t digit_count = 0;
};

NumericParts parts_of(Numeric value) {
  const char* data = VARDATA_ANY(value);
  const std::size_t size = VARSIZE_ANY_EXHDR(value);
  std::uint16_t word = 0;
  std::memcpy(&word, data, sizeof word);
  NumericParts parts;
  std::size_t header_size = sizeof word;
  if ((word & 0x8000) != 0) {
    parts.negative = (word & 0x2000) != 0;
    parts.display_scale = (word & 0x1F80) >> 7;
    parts.weight = (word & 0x0040) != 0 ? static_cast<int>(word | ~0x003F) : (word & 0x003F);
  } else {
    std::int16_t weight = 0;
    std::memcpy(&weight, data + header_size, sizeof weight);
    header_size += sizeof weight;
    parts.negative = (word & 0x4000) != 0;
    parts.display_scale = word & 0x3FFF;
    parts.weight = weight;
  }
  parts.digits = data + header_size;
  parts.digit_count = (size - header_size) / sizeof(std::int16_t);
  return parts;
}

// The exact value of a finite numeric, with its display scale as exponent (so the same Decimal that
// Decimal::parse makes of numeric_out's text), or nullopt when that needs more than 36 digits or a scale
// beyond the Decimal's: the text path then decides, with the core's own errors.
std::optional<Decimal> decode_numeric(Numeric value) {
  constexpr std::size_t kMaxDigitGroups = 9;  // 36 decimal digits: no overflow while accumulating
  const NumericParts parts = parts_of(value);
  const int exponent = -parts.display_scale;
  if (exponent < Decimal::kMinExponent || parts.digit_count > kMaxDigitGroups) return std::nullopt;
  if (parts.digit_count == 0) return Decimal::from_parts(0, exponent);
  Decimal::Coefficient coefficient = 0;
  for (std::size_t i = 0; i < parts.digit_count; ++i) {
    std::int16_t digit = 0;
    std::memcpy(&digit, parts.digits + i * sizeof digit, sizeof digit);
    coefficient = coefficient * 10000 + digit;
  }
  // coefficient * 10^stored_exponent, brought to exponent -display_scale.
  const int stored_exponent = 4 * (parts.weight - static_cast<int>(parts.digit_count) + 1);
  if (stored_exponent < exponent) {
    const Decimal::Coefficient divisor = pow10(exponent - stored_exponent);
    if (exponent - stored_exponent > 3 || coefficient % divisor != 0) return std::nullopt;  // not numeric's invariant
    coefficient /= divisor;
  } else if (stored_exponent > exponent) {
    const int shift = stored_exponent - exponent;
    if (shift > Decimal::kMaxDigits || __builtin_mul_overflow(coefficient, pow10(shift), &coefficient)) return std::nullopt;
  }
  if (coefficient >= pow10(Decimal::kMaxDigits)) return std::nullopt;
  return Decimal::from_parts(parts.negative ? -coefficient : coefficient, exponent);
}

}  // namespace

Decimal to_decimal(Numeric value) {
  // Both tests read the header only: they cannot raise.
  if (numeric_is_nan(value)) throw Error(Errc::invalid_value, "NaN is not a valid amount");
  if (numeric_is_inf(value)) throw Error(Errc::invalid_value, "infinity is not a valid amount");
  // Reading the digits directly is the hot path (ducto.price reads every metric this way); the rare
  // values it declines go through numeric's text form, which the Decimal parses exactly.
  if (const std::optional<Decimal> decoded = decode_numeric(value)) return *decoded;
  const char* text = pg_call([&]() noexcept {
    return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)));
  });
  return Decimal::parse(text);
}

namespace {

// The value in micro-units when it has no digit past the 6th place and fits int64. Amounts quantized by
// the engine already carry exactly 6 places, so their coefficient is the answer.
std::optional<std::int64_t> micros_of(const Decimal& value) {
  constexpr Decimal::Coefficient kMin = std::numeric_limits<std::int64_t>::min();
  constexpr Decimal::Coefficient kMax = std::numeric_limits<std::int64_t>::max();
  if (value.exponent() == -Decimal::kMoneyScale && value.coefficient() >= kMin && value.coefficient() <= kMax) {
    return static_cast<std::int64_t>(value.coefficient());
  }
  return value.to_micros();
}

// numeric 0.000000, built once per backend in TopMemoryContext (plain pointer: nothing to destroy).
// Most breakdown components are zero; jsonb copies the value, so one shared instance is enough.
Numeric shared_money_zero() {
  static Numeric zero = nullptr;
  if (zero == nullptr) {
    zero = pg_call([]() noexcept {
      const MemoryContext caller_context = MemoryContextSwitchTo(TopMemoryContext);
      const Numeric value = int64_div_fast_to_numeric(0, Decimal::kMoneyScale);
      MemoryContextSwitchTo(caller_context);
      return value;
    });
  }
  return zero;
}

}  // namespace

Numeric to_money_numeric(const Decimal& value) {
  if (const std::optional<std::int64_t> micros = micros_of(value)) {
    return pg_call([&]() noexcept { return int64_div_fast_to_numeric(*micros, Decimal::kMoneyScale); });
  }
  // Beyond int64 micro-units (about 9.2e12): through text. The typmod numeric(1000, 6) gives the
  // result its 6 places (the value has no digit beyond them, so nothing is rounded).
  constexpr std::int32_t kMoneyTypmod = ((NUMERIC_MAX_PRECISION << 16) | Decimal::kMoneyScale) + VARHDRSZ;
  const std::string digits = value.to_string();
  return pg_call([&]() noexcept {
    return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(digits.c_str()),
                                               ObjectIdGetDatum(InvalidOid), Int32GetDatum(kMoneyTypmod)));
  });
}

JsonbValue jsonb_money(const Decimal& value) {
  if (value.is_zero()) return jsonb_numeric(shared_money_zero());
  return jsonb_numeric(to_money_numeric(value));
}

// ---- jsonb -----------------------------------------------------------------------------------------

bool is_object(const Jsonb* document) {
  return JB_ROOT_IS_OBJECT(document) && !JB_ROOT_IS_SCALAR(document);
}

bool is_object_container(const JsonbValue& value) {
  return value.type == jbvBinary && JsonContainerIsObject(value.val.binary.data);
}

namespace {

// Reading containers straight from jsonb's binary format (utils/jsonb.h, also the on-disk format), as
// jsonb_util.c's fillJsonbValue does: JEntries first (an object's keys, then its values), then the data,
// each child's bytes following the previous one's; a JEntry holds the child's length, or its end offset
// when JENTRY_HAS_OFF is set. Numerics and nested containers are int-aligned. This avoids a
// JsonbIterator (an allocation and a state machine per container) on the hot path.
template <class Visit>
void for_each_child(const JsonbContainer* container, std::uint32_t entry_count, Visit visit) {
  const char* data = reinterpret_cast<const char*>(&container->children[entry_count]);
  std::uint32_t offset = 0;
  for (std::uint32_t i = 0; i < entry_count; ++i) {
    const JEntry entry = container->children[i];
    const std::uint32_t end = (entry & JENTRY_HAS_OFF) != 0 ? JBE_OFFLENFLD(entry) : offset + JBE_OFFLENFLD(entry);
    visit(i, entry, data, offset, end - offset);
    offset = end;
  }
}

JsonbValue child_value(JEntry entry, const char* data, std::uint32_t offset, std::uint32_t length) {
  JsonbValue value;
  switch (entry & JENTRY_TYPEMASK) {
    case JENTRY_ISSTRING:
      value.type = jbvString;
      value.val.string.val = const_cast<char*>(data + offset);
      value.val.string.len = static_cast<int>(length);
      break;
    case JENTRY_ISNUMERIC:
      value.type = jbvNumeric;
      value.val.numeric = reinterpret_cast<Numeric>(const_cast<char*>(data + INTALIGN(offset)));
      break;
    case JENTRY_ISBOOL_TRUE:
    case JENTRY_ISBOOL_FALSE:
      value.type = jbvBool;
      value.val.boolean = (entry & JENTRY_TYPEMASK) == JENTRY_ISBOOL_TRUE;
      break;
    case JENTRY_ISNULL:
      value.type = jbvNull;
      break;
    default:  // JENTRY_ISCONTAINER
      value.type = jbvBinary;
      value.val.binary.data = reinterpret_cast<JsonbContainer*>(const_cast<char*>(data + INTALIGN(offset)));
      value.val.binary.len = static_cast<int>(length - (INTALIGN(offset) - offset));
      break;
  }
  return value;
}

template <class T>
T* allocate_array(std::size_t count) {
  return static_cast<T*>(pg_call([&]() noexcept { return palloc(count * sizeof(T)); }));
}

}  // namespace

std::span<const JsonbMember> object_members(JsonbContainer* object) {
  const std::uint32_t count = JsonContainerSize(object);
  if (count == 0) return {};
  auto* members = allocate_array<JsonbMember>(count);
  for_each_child(object, 2 * count, [&](std::uint32_t i, JEntry entry, const char* data, std::uint32_t offset,
                                        std::uint32_t length) {
    if (i < count) {
      members[i].key = {data + offset, length};
    } else {
      members[i - count].value = child_value(entry, data, offset, length);
    }
  });
  return {members, count};
}

std::span<const JsonbValue> array_elements(JsonbContainer* array) {
  const std::uint32_t count = JsonContainerSize(array);
  if (count == 0) return {};
  auto* elements = allocate_array<JsonbValue>(count);
  for_each_child(array, count, [&](std::uint32_t i, JEntry entry, const char* data, std::uint32_t offset,
                                   std::uint32_t length) { elements[i] = child_value(entry, data, offset, length); });
  return {elements, count};
}

JsonbValue jsonb_string(std::string_view text) {
  JsonbValue value;
  value.type = jbvString;
  value.val.string.len = static_cast<int>(text.size());
  value.val.string.val = const_cast<char*>(text.data());
  return value;
}

JsonbValue jsonb_numeric(Numeric number) {
  JsonbValue value;
  value.type = jbvNumeric;
  value.val.numeric = number;
  return value;
}

namespace {

// jsonb's key order: by length, then bytes (<0, 0, >0).
int key_order(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b);
}

// The bytes a scalar takes in a container (a numeric is int-aligned: `offset` is where it would start).
std::uint32_t scalar_size(const JsonbValue& value, std::uint32_t offset) {
  switch (value.type) {
    case jbvString: return static_cast<std::uint32_t>(value.val.string.len);
    case jbvNumeric: return INTALIGN(offset) - offset + VARSIZE_ANY(value.val.numeric);
    default: return 0;  // null and booleans live in their JEntry
  }
}

JEntry scalar_type(const JsonbValue& value) {
  switch (value.type) {
    case jbvString: return JENTRY_ISSTRING;
    case jbvNumeric: return JENTRY_ISNUMERIC;
    case jbvBool: return value.val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
    default: return JENTRY_ISNULL;
  }
}

}  // namespace

// Writes jsonb's binary format directly (utils/jsonb.h; it is also the on-disk format). For the flat
// objects ducto returns this costs a fraction of pushJsonbValue + JsonbValueToJsonb, whose key sort and
// incremental buffer showed as the largest part of ducto.price in a profile. Layout, as convertToJsonb
// writes it: varlena header; container header (count | JB_FOBJECT); one JEntry per key, then one per
// value; the keys' bytes, then the values' (numerics int-aligned from the start of the datum, padding
// counted in their length). JEntries hold lengths, except every JB_OFFSET_STRIDE-th, which holds the end
// offset with JENTRY_HAS_OFF.
Jsonb* make_jsonb_object(std::span<const JsonbField> fields) {
  constexpr std::size_t kMaxFields = 32;
  if (fields.size() > kMaxFields) throw Error(Errc::invalid_value, "too many fields for a jsonb object");
  // Sorted (an insertion sort: callers pass a handful of fields, usually in order already).
  std::array<std::size_t, kMaxFields> order{};
  std::size_t count = 0;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    std::size_t at = count;
    int comparison = 1;
    while (at > 0 && (comparison = key_order(fields[i].key, fields[order[at - 1]].key)) < 0) --at;
    if (at > 0 && comparison == 0) throw Error(Errc::invalid_value, "duplicate jsonb key \"" + std::string(fields[i].key) + "\"");
    std::copy_backward(order.begin() + at, order.begin() + count, order.begin() + count + 1);
    order[at] = i;
    ++count;
  }

  const std::uint32_t data_start = VARHDRSZ + sizeof(std::uint32_t) + 2 * count * sizeof(JEntry);
  std::uint32_t end = data_start;
  for (std::size_t i = 0; i < count; ++i) end += fields[order[i]].key.size();
  for (std::size_t i = 0; i < count; ++i) end += scalar_size(fields[order[i]].value, end);
  if (end - data_start > JENTRY_OFFLENMASK) throw Error(Errc::invalid_value, "jsonb object too large");

  auto* bytes = static_cast<char*>(pg_call([&]() noexcept { return palloc0(end); }));
  const auto put_entry = [&](std::size_t slot, JEntry type, std::uint32_t length, std::uint32_t data_offset) {
    const JEntry entry = slot % JB_OFFSET_STRIDE == 0 ? type | JENTRY_HAS_OFF | (data_offset + length - data_start)
                                                       : type | length;
    std::memcpy(bytes + VARHDRSZ + sizeof(std::uint32_t) + slot * sizeof(JEntry), &entry, sizeof entry);
  };
  const std::uint32_t header = static_cast<std::uint32_t>(count) | JB_FOBJECT;
  std::memcpy(bytes + VARHDRSZ, &header, sizeof header);
  std::uint32_t offset = data_start;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string_view key = fields[order[i]].key;
    put_entry(i, JENTRY_ISSTRING, static_cast<std::uint32_t>(key.size()), offset);
    std::memcpy(bytes + offset, key.data(), key.size());
    offset += static_cast<std::uint32_t>(key.size());
  }
  for (std::size_t i = 0; i < count; ++i) {
    const JsonbValue& value = fields[order[i]].value;
    const std::uint32_t length = scalar_size(value, offset);
    put_entry(count + i, scalar_type(value), length, offset);
    if (value.type == jbvString) {
      std::memcpy(bytes + offset, value.val.string.val, length);
    } else if (value.type == jbvNumeric) {
      const std::uint32_t numeric_size = VARSIZE_ANY(value.val.numeric);
      std::memcpy(bytes + offset + length - numeric_size, value.val.numeric, numeric_size);
    }
    offset += length;
  }
  SET_VARSIZE(bytes, end);
  return reinterpret_cast<Jsonb*>(bytes);
}

std::string_view jsonb_text(Jsonb* document) {
  const char* text = pg_call([&]() noexcept {
    return JsonbToCString(nullptr, &document->root, static_cast<int>(VARSIZE(document)));
  });
  return text;
}

// ---- text ------------------------------------------------------------------------------------------

text* make_text(std::string_view value) {
  return pg_call([&]() noexcept { return cstring_to_text_with_len(value.data(), static_cast<int>(value.size())); });
}

}  // namespace ducto::pg
