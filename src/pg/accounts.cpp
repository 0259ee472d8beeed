// src/pg/accounts.cpp: finding, creating and locking accounts, and the Operation of one call on one
// locked account: lazy expiry, ledger entry ids, events and the final account write (see ledger_store.h).
//
// An operation locks only its own account row (FOR NO KEY UPDATE: the later update changes no key), so
// two users never wait on each other and nothing global is written. Under READ COMMITTED a waiter gets
// the row as its previous holder committed it, and never a serialization failure; under REPEATABLE READ
// a row changed since the snapshot is a serialization failure (40001). lock_account (the hot path) locks
// and saves the row through direct_rows.h; the other lookups are saved SPI plans that return the row's
// address (ctid) for save().
#include "pg/ledger_store.h"

#include <algorithm>

#include "core/ledger/lots.h"
#include "pg/bridge.h"
#include "pg/convert.h"
#include "pg/direct_rows.h"
#include "pg/events.h"

namespace ducto::pg {

namespace {

// The account columns every lookup reads, in this order (the SPI lookups select them, then a.ctid).
RowColumns account_columns{"id", "balance", "reserved", "debt", "next_expiry_at", "last_entry_id", "kind", "policies"};
constexpr int kAccountColumns = 8;

// C zone. An account from the values of account_columns and the row's address.
Account account_from(const Datum* values, const bool* nulls, RowId row) noexcept {
  Account account;
  account.id = DatumGetInt64(values[0]);
  account.balance = DatumGetInt64(values[1]);
  account.reserved = DatumGetInt64(values[2]);
  account.debt = DatumGetInt64(values[3]);
  if (!nulls[4]) account.next_expiry_at = DatumGetTimestampTz(values[4]);
  if (!nulls[5]) account.last_entry_id = uuid_of(values[5]);
  account.team = view_of(DatumGetTextPP(values[6])) == "team";
  account.policies = DatumGetBool(values[7]);
  account.row = row;
  return account;
}

// C zone. The account in row `row` of the last SPI result: account_columns, then ctid.
Account account_at(std::uint64_t row) noexcept {
  Datum values[kAccountColumns];
  bool nulls[kAccountColumns];
  for (int column = 0; column < kAccountColumns; ++column) values[column] = spi_value(row, column + 1, &nulls[column]);
  bool is_null = false;
  return account_from(values, nulls, row_id_of_datum(spi_value(row, kAccountColumns + 1, &is_null)));
}

// C zone.
bool run_account_query(SavedPlan& plan, Datum key, bool read_only, Account* account) noexcept {
  Datum values[] = {key};
  if (spi_run(plan, values, nullptr, read_only, 1) != 1) return false;
  *account = account_at(0);
  return true;
}

std::optional<Account> account_query(SavedPlan& plan, std::string_view user_id, bool read_only) {
  Account account;
  const bool found = pg_call([&]() noexcept {
    return run_account_query(plan, text_datum(user_id), read_only, &account);
  });
  if (!found) return std::nullopt;
  return account;
}

}  // namespace

std::optional<Account> lock_account(std::string_view user_id) {
  // The hot path's lock: SELECT ... FOR NO KEY UPDATE done without a statement (direct_rows.h).
  Account account;
  const bool found = pg_call([&]() noexcept {
    return lock_row_by_text_key(ducto_relation("accounts"), ducto_relation("accounts_user_id_key"), text_datum(user_id),
                                account_columns, [&](const ScannedRow& row) noexcept {
                                  account = account_from(row.values, row.nulls, row.row);
                                });
  });
  if (!found) return std::nullopt;
  return account;
}

Account lock_or_create_account(std::string_view user_id) {
  static SavedPlan create(
      "INSERT INTO ducto.accounts AS a (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING "
      "RETURNING a.id, a.balance, a.reserved, a.debt, a.next_expiry_at, a.last_entry_id, a.kind, a.policies, a.ctid",
      {TEXTOID});
  if (std::optional<Account> account = lock_account(user_id)) return *account;
  // A row this transaction inserted is as good as locked. When a concurrent transaction inserted it
  // first, ON CONFLICT waited for it to commit; the locking read then finds the committed row.
  if (std::optional<Account> created = account_query(create, user_id, false)) return *created;
  if (std::optional<Account> account = lock_account(user_id)) return *account;
  throw Error(Errc::not_ready, "the account of user \"" + std::string(user_id) + "\" could not be created");
}

std::optional<Account> lock_account_by_id(std::int64_t id, std::string& user_id) {
  static SavedPlan lock_by_id(
      "SELECT a.id, a.balance, a.reserved, a.debt, a.next_expiry_at, a.last_entry_id, a.kind, a.policies, a.ctid, a.user_id "
      "FROM ducto.accounts AS a WHERE a.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
      {INT8OID});
  Account account;
  const bool found = pg_call([&]() noexcept { return run_account_query(lock_by_id, Int64GetDatum(id), false, &account); });
  if (!found) return std::nullopt;
  const text* name = pg_call([]() noexcept {
    bool is_null = false;
    return DatumGetTextPP(spi_value(0, 10, &is_null));
  });
  user_id.assign(view_of(name));
  return account;
}

std::optional<Account> read_account(std::string_view user_id) {
  static SavedPlan read(
      "SELECT a.id, a.balance, a.reserved, a.debt, a.next_expiry_at, a.last_entry_id, a.kind, a.policies, a.ctid FROM ducto.accounts AS a "
      "WHERE a.user_id OPERATOR(pg_catalog.=) $1",
      {TEXTOID});
  return account_query(read, user_id, true);
}

// ---- events ------------------------------------------------------------------------------------------

void emit_event(const char* type, std::string_view user_id, TimestampTz at, std::optional<Micros> amount,
                std::optional<Micros> balance_after, Jsonb* data) {
  Event event;
  event.type = type;
  event.user_id = user_id;
  event.has_amount = amount.has_value();
  event.amount_micros = amount.value_or(0);
  event.has_balance_after = balance_after.has_value();
  event.balance_after_micros = balance_after.value_or(0);
  event.data = data;
  event.created_at = at;
  pg_call([&]() noexcept { write_event(event); });
}

void emit_failure(const char* type, std::string_view user_id, TimestampTz at, ledger::Rejection error,
                  std::optional<Micros> amount, std::optional<Micros> balance, EventData data) {
  emit_event(type, user_id, at, amount, balance, data.text("error", ledger::code_of(error)).build());
}

std::vector<std::pair<Account, std::string>> lock_due_accounts(TimestampTz now, std::int64_t limit) {
  static SavedPlan due(
      "SELECT a.id, a.balance, a.reserved, a.debt, a.next_expiry_at, a.last_entry_id, a.kind, a.policies, a.ctid, a.user_id "
      "FROM ducto.accounts AS a WHERE a.next_expiry_at OPERATOR(pg_catalog.<=) $1 "
      "ORDER BY a.next_expiry_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED",
      {TIMESTAMPTZOID, INT8OID});
  const std::uint64_t rows = pg_call([&]() noexcept {
    Datum values[] = {TimestampTzGetDatum(now), Int64GetDatum(limit)};
    return spi_run(due, values, nullptr, false, 0);
  });
  std::vector<std::pair<Account, std::string>> accounts(rows);
  for (std::uint64_t row = 0; row < rows; ++row) {
    const text* user_id = pg_call([&]() noexcept {
      accounts[row].first = account_at(row);
      bool is_null = false;
      return DatumGetTextPP(spi_value(row, 10, &is_null));
    });
    accounts[row].second.assign(view_of(user_id));
  }
  return accounts;
}

// ---- Operation ---------------------------------------------------------------------------------------

ExpiryOutcome Operation::expire_due() {
  if (!account_.next_expiry_at || *account_.next_expiry_at > now_) return {};
  ExpiryOutcome outcome;
  const std::vector<Hold> holds = expire_holds(account_.id, now_);
  outcome.holds = static_cast<int>(holds.size());
  ledger::LotBook book;
  std::vector<std::int64_t> held_lots;
  for (const Hold& hold : holds) {
    for (const std::int64_t id : lot_ids(hold.parts)) held_lots.push_back(id);
  }
  for (const ledger::Lot& lot : lots_by_id(held_lots)) book.add(lot);
  for (const ledger::Lot& lot : expired_lots(account_.id, now_)) book.add(lot);
  for (const Hold& hold : holds) {
    ledger::release_hold(book, hold.parts);
    account_.reserved = ledger::checked_sub(account_.reserved, hold.amount);
    emit("credits.reservation_expired", hold.amount, account_.balance,
         EventData().uuid("reservation_id", hold.id).text("operation_type", hold.operation_type).build());
  }
  const std::vector<ledger::Part> expired = ledger::expire_due(book, now_);
  write_lots(book.changed());
  post_expiries(expired);
  outcome.expired = ledger::total_of(expired);
  account_.next_expiry_at = next_expiry_of(account_.id);
  return outcome;
}

Uuid Operation::next_entry_id() {
  const Uuid candidate = pg_call([&]() noexcept { return new_uuid(now_); });
  const Uuid id = account_.last_entry_id ? ledger::uuid_after(candidate, *account_.last_entry_id) : candidate;
  previous_entry_id_ = account_.last_entry_id;
  account_.last_entry_id = id;
  return id;
}

void Operation::append(const Uuid& id, const Entry& entry) {
  insert_entry(id, previous_entry_id_, account_.id, account_.balance, now_, entry);
}

void Operation::append_last(const Uuid& id, const Entry& entry, std::span<const ledger::Lot> changed_lots) {
  write_lots(changed_lots);
  append(id, entry);
  save();
}

void Operation::post_expiries(std::span<const ledger::Part> expired) {
  for (const ledger::Part& part : expired) {
    account_.balance = ledger::checked_sub(account_.balance, part.micros);
    const Uuid id = next_entry_id();
    Entry entry;
    entry.kind = ledger::EntryKind::expiry;
    entry.amount = -part.micros;
    entry.allocations = std::span<const ledger::Part>(&part, 1);
    entry.lot_id = part.lot_id;
    append(id, entry);
    emit("credits.expired", -part.micros, account_.balance, EventData().uuid("transaction_id", id).build());
  }
}

void Operation::expiry_at_most(std::optional<TimestampTz> candidate) {
  account_.next_expiry_at = ledger::earliest(account_.next_expiry_at, candidate);
}

void Operation::emit(const char* type, std::optional<Micros> amount, std::optional<Micros> balance_after,
                     Jsonb* data) {
  emit_event(type, user_id_, now_, amount, balance_after, data);
}

void Operation::save() {
  static RowColumns columns{"balance", "reserved", "debt", "last_entry_id", "next_expiry_at"};
  if (account_ == saved_) return;
  const Account& account = account_;
  // Written without a statement (direct_rows.h); next_expiry_at (indexed) usually keeps its value, so
  // the update is HOT.
  account_.row = pg_call([&]() noexcept {
    const Datum values[] = {Int64GetDatum(account.balance), Int64GetDatum(account.reserved),
                            Int64GetDatum(account.debt),
                            account.last_entry_id ? uuid_datum(*account.last_entry_id) : Datum(0),
                            TimestampTzGetDatum(account.next_expiry_at.value_or(0))};
    const bool nulls[] = {false, false, false, !account.last_entry_id, !account.next_expiry_at};
    return update_row(ducto_relation("accounts"), account.row, account.id, columns, values, nulls);
  });
  saved_ = account_;
}

}  // namespace ducto::pg
