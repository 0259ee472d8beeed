// src/pg/teams.cpp: team administration (issue 5, Teams): ducto.create_team, ducto.add_team_member,
// ducto.remove_team_member and ducto.team_members. Storage: sql/ducto--1.0.sql, "teams and analytics".
//
// A team is an account of kind 'team' plus a ducto.teams row; charge_team (policies) debits it and reads
// ducto.team_members under the team's account lock. These functions take no account lock: a membership
// change commits like any other row change and the next charge_team sees it. An id is either a team or
// a person: create_team refuses ids that have an account or a membership, add_team_member refuses teams
// as members, and both serialize on a transaction-level advisory lock of that id so that a concurrent
// create_team and add_team_member of the same id cannot both pass their check.
#include "pg/pg_headers.h"

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/ledger/validate.h"
#include "pg/bridge.h"
#include "pg/convert.h"
#include "pg/ledger_common.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_create_team);
PG_FUNCTION_INFO_V1(ducto_add_team_member);
PG_FUNCTION_INFO_V1(ducto_remove_team_member);
PG_FUNCTION_INFO_V1(ducto_team_members);
}

namespace ducto::pg {
namespace {

constexpr std::array<std::string_view, 3> kRoles = {"member", "admin", "owner"};
constexpr std::string_view kDefaultRole = "member";

// The first key of ducto's advisory locks on ids ("duct"); the second is hashtext(id).
constexpr std::int32_t kIdLockClass = 0x64756374;

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Runs a shared ledger check whose messages name `generic` (user_id, amount) and reports its failure
// under the argument's own name, so that a bad team_id says "team_id ...".
template <class Check>
void check_as(std::string_view name, std::string_view generic, Check&& check) {
  try {
    check();
  } catch (const Error& error) {
    std::string message = error.what();
    if (message.starts_with(generic)) message.replace(0, generic.size(), name);
    throw Error(error.code(), message);
  }
}

// ---- arguments ---------------------------------------------------------------------------------------

// A user or team id: the ledger's user id rules.
std::string_view id_arg(FunctionCallInfo fcinfo, int n, std::string_view name) {
  const std::string_view id = required_text_arg(fcinfo, n, name);
  check_as(name, "user_id", [&] { ledger::check_user_id(id); });
  return id;
}

std::string_view role_arg(FunctionCallInfo fcinfo, int n) {
  const std::string_view role = text_arg(fcinfo, n).value_or(kDefaultRole);
  for (const std::string_view known : kRoles) {
    if (role == known) return role;
  }
  throw Error(Errc::invalid_value, "role must be member, admin or owner");
}

std::optional<Micros> spend_cap_arg(FunctionCallInfo fcinfo, int n) {
  std::optional<Micros> cap;
  check_as("spend_cap", "amount", [&] { cap = optional_amount_arg(fcinfo, n); });
  return cap;
}

// ---- rows --------------------------------------------------------------------------------------------

enum class AccountKind { none, user, team };

struct AccountRef {
  AccountKind kind = AccountKind::none;
  std::int64_t id = 0;
};

// C zone. `read_only`: for the STABLE team_members (the statement's snapshot).
AccountRef find_account(std::string_view user_id, bool read_only = false) noexcept {
  static SavedPlan find(
      "SELECT a.id, a.kind OPERATOR(pg_catalog.=) 'team' FROM ducto.accounts AS a "
      "WHERE a.user_id OPERATOR(pg_catalog.=) $1",
      {TEXTOID});
  Datum key[] = {text_datum(user_id)};
  if (spi_run(find, key, nullptr, read_only, 1) != 1) return {};
  bool is_null = false;
  const std::int64_t id = DatumGetInt64(spi_value(0, 1, &is_null));
  const bool team = DatumGetBool(spi_value(0, 2, &is_null));
  return {team ? AccountKind::team : AccountKind::user, id};
}

// C zone. Until the transaction ends, no other create_team or add_team_member decides about `id`.
void lock_id(std::string_view id) noexcept {
  static SavedPlan lock("SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))", {INT4OID, TEXTOID});
  Datum values[] = {Int32GetDatum(kIdLockClass), text_datum(id)};
  spi_run(lock, values, nullptr, false, 0);
}

// The team's account id; 22023 when `team_id` is not a team.
std::int64_t team_account(std::string_view team_id, bool read_only = false) {
  const AccountRef account = pg_call([&]() noexcept { return find_account(team_id, read_only); });
  switch (account.kind) {
    case AccountKind::team:
      return account.id;
    case AccountKind::user:
      throw Error(Errc::invalid_value, quoted(team_id) + " is a personal account, not a team");
    case AccountKind::none:
      break;
  }
  throw Error(Errc::invalid_value, "unknown team " + quoted(team_id));
}

// ---- create_team -------------------------------------------------------------------------------------

// C zone. Whether `user_id` is a member of some team.
bool is_member_anywhere(std::string_view user_id) noexcept {
  static SavedPlan find("SELECT 1 FROM ducto.team_members AS m WHERE m.user_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
                        {TEXTOID});
  Datum key[] = {text_datum(user_id)};
  return spi_run(find, key, nullptr, false, 1) == 1;
}

// C zone. The new team account's id, or 0 when `team_id` already has an account.
std::int64_t insert_team_account(std::string_view team_id) noexcept {
  static SavedPlan create(
      "INSERT INTO ducto.accounts AS a (user_id, kind) VALUES ($1, 'team') ON CONFLICT (user_id) DO NOTHING "
      "RETURNING a.id",
      {TEXTOID});
  Datum key[] = {text_datum(team_id)};
  if (spi_run(create, key, nullptr, false, 0) != 1) return 0;
  bool is_null = false;
  return DatumGetInt64(spi_value(0, 1, &is_null));
}

// C zone.
void insert_team(std::int64_t account_id, std::string_view name, TimestampTz now) noexcept {
  static SavedPlan insert("INSERT INTO ducto.teams (account_id, name, created_at) VALUES ($1, $2, $3)",
                          {INT8OID, TEXTOID, TIMESTAMPTZOID});
  Datum values[] = {Int64GetDatum(account_id), text_datum(name), TimestampTzGetDatum(now)};
  spi_run(insert, values, nullptr, false, 0);
}

Datum create_team(FunctionCallInfo fcinfo) {
  const std::string_view team_id = id_arg(fcinfo, 0, "team_id");
  const std::string_view name = required_text_arg(fcinfo, 1, "name");
  ledger::check_label(name, "name");
  const TimestampTz now = clock_now();
  const Session session = open_session();
  pg_call([&]() noexcept { lock_id(team_id); });
  if (pg_call([&]() noexcept { return is_member_anywhere(team_id); })) {
    throw Error(Errc::invalid_value, quoted(team_id) + " is a team member and cannot be a team");
  }
  const std::int64_t account_id = pg_call([&]() noexcept { return insert_team_account(team_id); });
  if (account_id == 0) {
    const bool team = pg_call([&]() noexcept { return find_account(team_id).kind == AccountKind::team; });
    throw Error(Errc::invalid_value, team ? "team " + quoted(team_id) + " already exists"
                                          : quoted(team_id) + " already has a personal account");
  }
  pg_call([&]() noexcept { insert_team(account_id, name, now); });
  close_session(session);
  PG_RETURN_VOID();
}

// ---- add_team_member and remove_team_member ----------------------------------------------------------

// C zone. Inserts the member or updates its role and cap; true when inserted.
bool upsert_member(std::int64_t team, std::string_view user_id, std::string_view role, std::optional<Micros> cap,
                   TimestampTz now) noexcept {
  // xmax is 0 only in a row version this statement inserted (an update of a conflicting row sets it).
  static SavedPlan upsert(
      "INSERT INTO ducto.team_members AS m (team_id, user_id, role, spend_cap, added_at) "
      "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (team_id, user_id) "
      "DO UPDATE SET role = EXCLUDED.role, spend_cap = EXCLUDED.spend_cap "
      "RETURNING m.xmax OPERATOR(pg_catalog.=) 0",
      {INT8OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID});
  Datum values[] = {Int64GetDatum(team), text_datum(user_id), text_datum(role), Int64GetDatum(cap.value_or(0)),
                    TimestampTzGetDatum(now)};
  const char nulls[] = {' ', ' ', ' ', cap ? ' ' : 'n', ' ', '\0'};
  spi_run(upsert, values, nulls, false, 0);
  bool is_null = false;
  return DatumGetBool(spi_value(0, 1, &is_null));
}

Datum add_team_member(FunctionCallInfo fcinfo) {
  const std::string_view team_id = id_arg(fcinfo, 0, "team_id");
  const std::string_view user_id = id_arg(fcinfo, 1, "user_id");
  const std::string_view role = role_arg(fcinfo, 2);
  const std::optional<Micros> cap = spend_cap_arg(fcinfo, 3);
  const TimestampTz now = clock_now();
  const Session session = open_session();
  const std::int64_t team = team_account(team_id);
  pg_call([&]() noexcept { lock_id(user_id); });
  if (pg_call([&]() noexcept { return find_account(user_id).kind == AccountKind::team; })) {
    throw Error(Errc::invalid_value, quoted(user_id) + " is a team and cannot be a team member");
  }
  const bool added = pg_call([&]() noexcept { return upsert_member(team, user_id, role, cap, now); });
  close_session(session);
  return BoolGetDatum(added);
}

// C zone.
bool delete_member(std::int64_t team, std::string_view user_id) noexcept {
  static SavedPlan remove(
      "DELETE FROM ducto.team_members AS m "
      "WHERE m.team_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2",
      {INT8OID, TEXTOID});
  Datum values[] = {Int64GetDatum(team), text_datum(user_id)};
  return spi_run(remove, values, nullptr, false, 0) == 1;
}

Datum remove_team_member(FunctionCallInfo fcinfo) {
  const std::string_view team_id = id_arg(fcinfo, 0, "team_id");
  const std::string_view user_id = id_arg(fcinfo, 1, "user_id");
  const Session session = open_session();
  const std::int64_t team = team_account(team_id);
  const bool removed = pg_call([&]() noexcept { return delete_member(team, user_id); });
  close_session(session);
  return BoolGetDatum(removed);
}

// ---- team_members ------------------------------------------------------------------------------------

// C zone. Puts the team's members, by user_id, into the function's tuplestore.
void put_members(FunctionCallInfo fcinfo, std::int64_t team) noexcept {
  static SavedPlan members(
      "SELECT m.user_id, m.role, m.spend_cap, m.added_at FROM ducto.team_members AS m "
      "WHERE m.team_id OPERATOR(pg_catalog.=) $1 ORDER BY m.user_id",
      {INT8OID});
  Datum key[] = {Int64GetDatum(team)};
  const std::uint64_t rows = spi_run(members, key, nullptr, true, 0);
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  for (std::uint64_t row = 0; row < rows; ++row) {
    Datum values[4];
    bool nulls[4];
    for (int column = 0; column < 4; ++column) values[column] = spi_value(row, column + 1, &nulls[column]);
    if (!nulls[2]) values[2] = money_datum(DatumGetInt64(values[2]));
    tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
  }
}

Datum team_members(FunctionCallInfo fcinfo) {
  const std::string_view team_id = id_arg(fcinfo, 0, "team_id");
  pg_call([&]() noexcept { InitMaterializedSRF(fcinfo, 0); });
  const Session session = open_session();
  const std::int64_t team = team_account(team_id, true);
  pg_call([&]() noexcept { put_members(fcinfo, team); });
  close_session(session);
  return Datum(0);
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_create_team(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::create_team(fcinfo); });
}
Datum ducto_add_team_member(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::add_team_member(fcinfo); });
}
Datum ducto_remove_team_member(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::remove_team_member(fcinfo); });
}
Datum ducto_team_members(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::team_members(fcinfo); });
}
}
