// src/pg/ledger_store.h: the ledger's rows (accounts, lots, ledger entries, holds) as the credit
// operations read and write them, and the Operation that ties one call to one locked account (lazy
// expiry, entry ids, events, the final account write). Storage: sql/ducto--1.0.sql, "ledger".
// Reads go through SPI statements; the rows every debit writes (ledger entries, lots, the account) and
// the lots it reads go through direct_rows.h, which skips a statement's set-up cost.
//
// Every function here runs inside an open Session (ledger_common.h). Reads that decide a write use a
// fresh snapshot (read_only = false): under READ COMMITTED they see what the previous holder of the
// account lock committed. accounts.cpp holds accounts and Operation; ledger_rows.cpp the other rows.
#pragma once
#include "pg/pg_headers.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ledger/lots.h"
#include "core/ledger/rules.h"
#include "pg/ledger_common.h"
#include "pg/direct_rows.h"

namespace ducto::pg {

using Digest = std::array<std::uint8_t, 32>;  // SHA-256 of a request (ledger_idempotency.h)

// ---- accounts (accounts.cpp) -------------------------------------------------------------------------

struct Account {
  std::int64_t id = 0;
  Micros balance = 0;
  Micros reserved = 0;  // sum of active holds
  Micros debt = 0;      // debits beyond lot credit (negative floors only)
  std::optional<TimestampTz> next_expiry_at;  // nothing can expire before it
  std::optional<Uuid> last_entry_id;          // the newest ledger entry: new ones sort after it
  bool team = false;      // kind 'team': only add_credits, refunds and charge_team touch it
  bool policies = false;  // has a plan, own thresholds or caps (policies.h); never written by save()
  RowId row = 0;          // the address of the version this operation holds (direct_rows.h)
  friend bool operator==(const Account&, const Account&) = default;
};

// The account of `user_id`, locked until the transaction ends; nullopt when there is none.
std::optional<Account> lock_account(std::string_view user_id);
// The account of `user_id`, created if missing, locked.
Account lock_or_create_account(std::string_view user_id);
// The account `id`, locked; its user_id into `user_id`.
std::optional<Account> lock_account_by_id(std::int64_t id, std::string& user_id);
// The account of `user_id` without a lock (reads).
std::optional<Account> read_account(std::string_view user_id);

// ---- ledger entries (ledger_rows.cpp) ----------------------------------------------------------------

struct Entry {
  ledger::EntryKind kind = ledger::EntryKind::grant;
  Micros amount = 0;  // signed like the ledger
  std::span<const ledger::Part> allocations;
  std::optional<Uuid> reservation_id;
  std::optional<Uuid> original_id;  // refunds
  std::optional<std::int64_t> lot_id;  // expiries
  std::optional<std::string_view> source;
  std::optional<std::string_view> reason;
  std::optional<std::string_view> operation_type;
  std::optional<std::string_view> model;
  Jsonb* metrics = nullptr;
  Jsonb* breakdown = nullptr;
  std::optional<std::int32_t> config_version;
  std::optional<std::string_view> idempotency_key;
  std::optional<Digest> digest;
  Jsonb* metadata = nullptr;  // nullptr: {}
  std::optional<Micros> allowance_used;            // charges: what the plan's free allowance paid
  std::optional<std::string_view> member_user_id;  // charge_team: the member the debit is attributed to
};
// prev_id: the account's entry before this one (NULL for its first), the link ducto.transactions and
// spend windows walk back along through the primary key instead of an index on account_id.
void insert_entry(const Uuid& id, const std::optional<Uuid>& prev_id, std::int64_t account_id, Micros balance_after,
                  TimestampTz created_at, const Entry& entry);

// A ledger entry as a refund reads it.
struct StoredEntry {
  std::int64_t account_id = 0;
  ledger::EntryKind kind = ledger::EntryKind::grant;
  Micros amount = 0;
  std::vector<ledger::Part> parts;
};
std::optional<StoredEntry> read_entry(const Uuid& id);
// What earlier refunds of `original_id` gave back.
Micros refunded_so_far(const Uuid& original_id);

// ---- lots (ledger_rows.cpp) --------------------------------------------------------------------------

// The account's lots with free credit that are usable at `now`, in consumption order
// (expires_at NULLS LAST, created_at, id): enough of them to cover `needed` when they can.
std::vector<ledger::Lot> usable_lots(std::int64_t account_id, TimestampTz now, Micros needed);
// The lots of these ids. `read_only`: for reads (the statement's snapshot, no command counter step).
std::vector<ledger::Lot> lots_by_id(std::span<const std::int64_t> ids, bool read_only = false);
// The account's expired lots that still hold free credit.
std::vector<ledger::Lot> expired_lots(std::int64_t account_id, TimestampTz now, bool read_only = false);
// Writes remaining and earmarked of each lot.
void write_lots(std::span<const ledger::Lot> lots);
std::int64_t insert_lot(std::int64_t account_id, Micros granted, Micros remaining, std::optional<TimestampTz> expires_at,
                        TimestampTz created_at, const Uuid& transaction_id);
// The earliest expiry of the account's active holds and of its lots with free credit.
std::optional<TimestampTz> next_expiry_of(std::int64_t account_id);

// The lot ids of parts (overdraft parts left out) and of lots.
std::vector<std::int64_t> lot_ids(std::span<const ledger::Part> parts);
std::vector<std::int64_t> lot_ids(std::span<const ledger::Lot> lots);

// ---- holds (ledger_rows.cpp) -------------------------------------------------------------------------

struct Hold {
  Uuid id{};
  std::int64_t account_id = 0;
  Micros amount = 0;
  std::vector<ledger::Part> parts;
  ledger::HoldState state = ledger::HoldState::active;
  std::string operation_type;
  TimestampTz expires_at = 0;
  Micros available_after = 0;
  std::optional<Micros> finished_available_after;  // release_reservation's result
};
std::optional<Hold> read_hold(const Uuid& id);

struct NewHold {
  Uuid id{};
  std::int64_t account_id = 0;
  Micros amount = 0;
  std::span<const ledger::Part> parts;
  std::string_view operation_type;
  TimestampTz expires_at = 0;
  TimestampTz created_at = 0;
  Micros available_after = 0;
  std::optional<std::string_view> idempotency_key;
  std::optional<Digest> digest;
  Jsonb* metadata = nullptr;
};
void insert_hold(const NewHold& hold);
void finish_hold(const Uuid& id, ledger::HoldState state, TimestampTz at, std::optional<Uuid> settled_by,
                 std::optional<Micros> available_after);
// Marks the account's active holds past their expiry as expired and returns them.
std::vector<Hold> expire_holds(std::int64_t account_id, TimestampTz now);
// The account's active holds past their expiry, unchanged (get_balance's view of the clock).
std::vector<Hold> holds_past_expiry(std::int64_t account_id, TimestampTz now);

// ---- events ------------------------------------------------------------------------------------------

// Writes one event (events.h) for `user_id` (empty: none).
void emit_event(const char* type, std::string_view user_id, TimestampTz at, std::optional<Micros> amount,
                std::optional<Micros> balance_after, Jsonb* data);

// The failure event of a refused call (credits.deduct_failed, credits.refund_failed): `data` gets the
// error code.
void emit_failure(const char* type, std::string_view user_id, TimestampTz at, ledger::Rejection error,
                  std::optional<Micros> amount, std::optional<Micros> balance, EventData data);

// The accounts whose next_expiry_at has come, locked, skipping accounts other transactions hold
// (the expiry sweep); at most `limit`, each with its user_id.
std::vector<std::pair<Account, std::string>> lock_due_accounts(TimestampTz now, std::int64_t limit);

// ---- one operation -----------------------------------------------------------------------------------

// What lazy expiry did to an account.
struct ExpiryOutcome {
  Micros expired = 0;  // credit that left with expiry entries (positive)
  int holds = 0;       // holds that expired
};

// One call's work on one locked account: the clock reading, the account as it changes, entry ids in
// account order, events, and the account row written back by save().
class Operation {
 public:
  Operation(TimestampTz now, std::string_view user_id, const Account& account)
      : now_(now), user_id_(user_id), saved_(account), account_(account) {}

  TimestampTz now() const { return now_; }
  std::string_view user_id() const { return user_id_; }
  Account& account() { return account_; }
  Micros available() const { return account_.balance - account_.reserved; }

  // Posts what is due: holds past their expiry end (their credit returns), then the free credit of
  // expired lots leaves as expiry entries. Runs when the account's next_expiry_at has come.
  ExpiryOutcome expire_due();

  // The id of the next ledger entry: a UUIDv7 that sorts after every entry of the account.
  Uuid next_entry_id();
  // Inserts an entry with the account's current balance as balance_after.
  void append(const Uuid& id, const Entry& entry);
  // The operation's last write: the lots that changed, the entry (see append) and the account row.
  void append_last(const Uuid& id, const Entry& entry, std::span<const ledger::Lot> changed_lots);
  // One expiry entry (and credits.expired event) per part; the balance drops by each.
  void post_expiries(std::span<const ledger::Part> expired);
  // Lowers next_expiry_at to `candidate` when that is earlier.
  void expiry_at_most(std::optional<TimestampTz> candidate);

  void emit(const char* type, std::optional<Micros> amount, std::optional<Micros> balance_after, Jsonb* data);

  // Writes the account row when it changed.
  void save();

 private:
  TimestampTz now_;
  std::string_view user_id_;
  Account saved_;
  Account account_;
  // The account's entry before the one next_entry_id issued last: each issued id is appended before
  // the next is issued, so this is the prev_id of the entry being appended.
  std::optional<Uuid> previous_entry_id_;
};

}  // namespace ducto::pg
