// src/pg/direct_rows.h: reading, locking, inserting and updating rows of ducto's own tables without a SQL
// statement (design.md, The hot path).
//
// A charge locks a row, reads a few and writes four. Through SPI each was a statement: plan-cache
// revalidation, a snapshot, executor start-up of a plan, RETURNING, executor shutdown; that set-up cost
// more than the rows themselves (test/bench ledger). The writes here do what the executor's ModifyTable
// does for one row, through the same executor routines logical replication's apply worker uses
// (ExecSimpleRelationInsert/Update): NOT NULL and CHECK constraints, the partition constraint, every
// index (unique checks and partial-index predicates included), row triggers, and ordinary WAL, so
// replicas and logical decoding see ordinary inserts and updates. What they skip: statement-level
// triggers, RLS and privilege checks (the functions run as the extension owner, who owns the tables),
// and column defaults (callers name every column they write; the others are NULL).
//
// Rows are found by their physical address (RowId), read by the locking SELECT that preceded the write:
// the caller holds the account lock, so nobody else can move the row, and after each update the caller
// keeps the address of the new version. A stale address fails loudly ("tuple already updated by self"),
// it never writes the wrong row: updates also check the row's id column.
//
// Everything here is a C-zone function (bridge.h): call it inside pg_call.
#pragma once
#include "pg/pg_headers.h"

#include <cstdint>
#include <initializer_list>

extern "C" {
#include "storage/itemptr.h"
}

namespace ducto::pg {

// A row version's physical address (ctid) packed into an integer, so that plain C++ structs (and the
// core's Lot, which carries it opaquely) can hold it. 0: not known.
using RowId = std::uint64_t;
RowId row_id_of(const ItemPointerData& tid) noexcept;
RowId row_id_of_datum(Datum tid) noexcept;  // a ctid column's value

// The columns a call site writes, by name. Attribute numbers are looked up once per relation and
// checked against the relation's current descriptor on every write (a name compare per column), so a
// relation recreated or altered by an upgrade script is never written through stale numbers.
struct RowColumns {
  static constexpr int kMax = 32;
  constexpr RowColumns(std::initializer_list<const char*> column_names) {
    for (const char* name : column_names) names[count++] = name;
  }
  const char* names[kMax] = {};
  int count = 0;
  // Cache: the relation the attribute numbers were found in, and the numbers.
  Oid relation = InvalidOid;
  AttrNumber attnums[kMax] = {};
};

// C zone. Finds (or checks) the attribute numbers of `columns` in `relation`.
void resolve_columns(Relation relation, RowColumns& columns) noexcept;

// One row as a scan returns it: the named columns (values valid until the scan moves on) and the row's
// address.
struct ScannedRow {
  const Datum* values;
  const bool* nulls;
  RowId row;
};

// C zone. Scans `index` of `relation` for the rows whose first index column equals the bigint `key`,
// in index order, with the snapshot a statement would get (after a command counter step, so this
// transaction's own writes are seen); hands each row's `columns` to visit(const ScannedRow&) until it
// returns false.
template <class Visit>
void scan_by_bigint_key(Oid relation, Oid index, std::int64_t key, RowColumns& columns, Visit&& visit) noexcept;

// C zone. SELECT ... FOR NO KEY UPDATE of the row whose `unique_index` (on one text column, such as
// accounts.user_id) holds `key`: finds it, locks it (waiting for the transaction that holds it), and
// hands the locked version's `columns` to visit(const ScannedRow&). Under READ COMMITTED the lock
// follows the row to its newest version, like the statement; under REPEATABLE READ and SERIALIZABLE a
// row changed since the snapshot raises 40001. Returns false when there is no such row.
template <class Visit>
bool lock_row_by_text_key(Oid relation, Oid unique_index, Datum key, RowColumns& columns, Visit&& visit) noexcept;

// C zone. Inserts one row into `relation` (a plain table or a partition): values[i] / nulls[i] belong to
// columns.names[i]. Returns the new row's address.
RowId insert_row(Oid relation, RowColumns& columns, const Datum* values, const bool* nulls) noexcept;

// C zone. Updates the row version at `row` of `relation`, whose bigint column "id" must equal `id`:
// the named columns get the new values, the others keep theirs. Returns the new version's address.
RowId update_row(Oid relation, RowId row, std::int64_t id, RowColumns& columns, const Datum* values,
                 const bool* nulls) noexcept;

namespace detail {
struct Scan;
Scan* begin_scan(Oid relation, Oid index, std::int64_t key, RowColumns& columns) noexcept;
bool next_row(Scan* scan, ScannedRow* row) noexcept;
void end_scan(Scan* scan) noexcept;
// The locked row (a scan positioned on it), or nullptr when there is none.
Scan* lock_by_text_key(Oid relation, Oid unique_index, Datum key, RowColumns& columns, ScannedRow* row) noexcept;
}  // namespace detail

template <class Visit>
void scan_by_bigint_key(Oid relation, Oid index, std::int64_t key, RowColumns& columns, Visit&& visit) noexcept {
  detail::Scan* scan = detail::begin_scan(relation, index, key, columns);
  ScannedRow row{};
  while (detail::next_row(scan, &row) && visit(static_cast<const ScannedRow&>(row))) {
  }
  detail::end_scan(scan);
}

template <class Visit>
bool lock_row_by_text_key(Oid relation, Oid unique_index, Datum key, RowColumns& columns, Visit&& visit) noexcept {
  ScannedRow row{};
  detail::Scan* scan = detail::lock_by_text_key(relation, unique_index, key, columns, &row);
  if (scan == nullptr) return false;
  visit(static_cast<const ScannedRow&>(row));
  detail::end_scan(scan);
  return true;
}

}  // namespace ducto::pg
