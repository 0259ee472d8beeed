// src/pg/direct_rows.cpp: index scans, the account lock, and single-row inserts and updates without a
// statement (see direct_rows.h).
#include "pg/direct_rows.h"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

namespace ducto::pg {

RowId row_id_of(const ItemPointerData& tid) noexcept {
  return (static_cast<RowId>(ItemPointerGetBlockNumberNoCheck(&tid)) << 16) | ItemPointerGetOffsetNumberNoCheck(&tid);
}

RowId row_id_of_datum(Datum tid) noexcept { return row_id_of(*reinterpret_cast<const ItemPointerData*>(DatumGetPointer(tid))); }

namespace {

ItemPointerData item_pointer_of(RowId row) noexcept {
  ItemPointerData tid;
  ItemPointerSet(&tid, static_cast<BlockNumber>(row >> 16), static_cast<OffsetNumber>(row & 0xFFFF));
  return tid;
}

}  // namespace

void resolve_columns(Relation relation, RowColumns& columns) noexcept {
  const TupleDesc desc = RelationGetDescr(relation);
  if (columns.relation == RelationGetRelid(relation)) {
    bool still_right = true;
    for (int i = 0; i < columns.count && still_right; ++i) {
      const AttrNumber attnum = columns.attnums[i];
      const Form_pg_attribute attribute = attnum <= desc->natts ? TupleDescAttr(desc, attnum - 1) : nullptr;
      still_right = attribute != nullptr && !attribute->attisdropped &&
                    strcmp(NameStr(attribute->attname), columns.names[i]) == 0;
    }
    if (still_right) return;
  }
  for (int i = 0; i < columns.count; ++i) {
    columns.attnums[i] = InvalidAttrNumber;
    for (int a = 0; a < desc->natts; ++a) {
      const Form_pg_attribute attribute = TupleDescAttr(desc, a);
      if (!attribute->attisdropped && strcmp(NameStr(attribute->attname), columns.names[i]) == 0) {
        columns.attnums[i] = static_cast<AttrNumber>(a + 1);
        break;
      }
    }
    if (columns.attnums[i] == InvalidAttrNumber) {
      elog(ERROR, "column \"%s\" of relation \"%s\" does not exist", columns.names[i], RelationGetRelationName(relation));
    }
  }
  columns.relation = RelationGetRelid(relation);
}

// ---- scans -------------------------------------------------------------------------------------------

namespace detail {

struct Scan {
  Relation relation;
  Relation index;
  Snapshot snapshot;
  IndexScanDesc scan;
  TupleTableSlot* slot;
  RowColumns* columns;
  ScanKeyData key;
  Datum values[RowColumns::kMax];
  bool nulls[RowColumns::kMax];
};

namespace {

// C zone. Opens the relation and index and starts an index scan for `key` (first index column equal
// to it, by `equality`), with the snapshot a statement that is not read-only gets: this transaction's
// earlier writes included, and under READ COMMITTED what others committed up to now.
Scan* start_scan(Oid relation, LOCKMODE mode, Oid index, Datum key, RegProcedure equality, RowColumns& columns) noexcept {
  auto* scan = static_cast<Scan*>(palloc0(sizeof(Scan)));
  scan->relation = table_open(relation, mode);
  scan->index = index_open(index, AccessShareLock);
  resolve_columns(scan->relation, columns);
  scan->columns = &columns;
  CommandCounterIncrement();
  scan->snapshot = RegisterSnapshot(GetTransactionSnapshot());
  ScanKeyInit(&scan->key, 1, BTEqualStrategyNumber, equality, key);
  scan->key.sk_collation = scan->index->rd_indcollation[0];
  scan->scan = index_beginscan(scan->relation, scan->index, scan->snapshot, 1, 0);
  index_rescan(scan->scan, &scan->key, 1, nullptr, 0);
  scan->slot = table_slot_create(scan->relation, nullptr);
  return scan;
}

// C zone. The named columns of the row in the scan's slot.
void take_row(Scan* scan, ScannedRow* row) noexcept {
  slot_getallattrs(scan->slot);
  const RowColumns& columns = *scan->columns;
  for (int i = 0; i < columns.count; ++i) {
    scan->values[i] = scan->slot->tts_values[columns.attnums[i] - 1];
    scan->nulls[i] = scan->slot->tts_isnull[columns.attnums[i] - 1];
  }
  *row = ScannedRow{scan->values, scan->nulls, row_id_of(scan->slot->tts_tid)};
}

[[noreturn]] void serialization_failure() noexcept {
  ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                  errmsg("could not serialize access due to concurrent update")));
}

}  // namespace

Scan* begin_scan(Oid relation, Oid index, std::int64_t key, RowColumns& columns) noexcept {
  return start_scan(relation, AccessShareLock, index, Int64GetDatum(key), F_INT8EQ, columns);
}

bool next_row(Scan* scan, ScannedRow* row) noexcept {
  if (!index_getnext_slot(scan->scan, ForwardScanDirection, scan->slot)) return false;
  take_row(scan, row);
  return true;
}

// What ExecLockRows does for one row of SELECT ... FOR NO KEY UPDATE.
Scan* lock_by_text_key(Oid relation, Oid unique_index, Datum key, RowColumns& columns, ScannedRow* row) noexcept {
  Scan* scan = start_scan(relation, RowShareLock, unique_index, key, F_TEXTEQ, columns);
  if (!index_getnext_slot(scan->scan, ForwardScanDirection, scan->slot)) {
    end_scan(scan);
    return nullptr;
  }
  const bool snapshot_per_transaction = IsolationUsesXactSnapshot();
  TM_FailureData failure;
  const TM_Result result = table_tuple_lock(
      scan->relation, &scan->slot->tts_tid, scan->snapshot, scan->slot, GetCurrentCommandId(true),
      LockTupleNoKeyExclusive, LockWaitBlock, snapshot_per_transaction ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
  switch (result) {
    case TM_Ok:
      break;
    case TM_Updated:
    case TM_Deleted:
      // Without FIND_LAST_VERSION (REPEATABLE READ, SERIALIZABLE) a newer version is a conflict; with it,
      // only a deleted row ends up here.
      if (snapshot_per_transaction) serialization_failure();
      end_scan(scan);
      return nullptr;
    default:
      elog(ERROR, "could not lock a row of \"%s\" (status %d)", RelationGetRelationName(scan->relation),
           static_cast<int>(result));
  }
  take_row(scan, row);
  // The newest version keeps the key (a locking read rechecks its condition the same way).
  const int key_column = scan->index->rd_index->indkey.values[0];
  bool key_null = false;
  const Datum locked_key = slot_getattr(scan->slot, key_column, &key_null);
  if (key_null || !DatumGetBool(DirectFunctionCall2Coll(texteq, scan->key.sk_collation, locked_key, key))) {
    end_scan(scan);
    return nullptr;
  }
  return scan;
}

void end_scan(Scan* scan) noexcept {
  ExecDropSingleTupleTableSlot(scan->slot);
  index_endscan(scan->scan);
  UnregisterSnapshot(scan->snapshot);
  index_close(scan->index, NoLock);
  table_close(scan->relation, NoLock);
  pfree(scan);
}

}  // namespace detail

namespace {

// What one write needs of the executor, set up the way the apply worker of logical replication sets
// it up for one change: a range table of the one relation, its ResultRelInfo with open indexes, and an
// AFTER-trigger query level.
struct Write {
  Relation relation;
  EState* estate;
  ResultRelInfo* result;
};

// C zone.
Write begin_write(Oid relation_id) noexcept {
  Write write;
  write.relation = table_open(relation_id, RowExclusiveLock);
  write.estate = CreateExecutorState();
  RangeTblEntry* rte = makeNode(RangeTblEntry);
  rte->rtekind = RTE_RELATION;
  rte->relid = relation_id;
  rte->relkind = write.relation->rd_rel->relkind;
  rte->rellockmode = RowExclusiveLock;
  ExecInitRangeTable(write.estate, list_make1(rte));
  write.result = makeNode(ResultRelInfo);
  InitResultRelInfo(write.result, write.relation, 1, nullptr, 0);
  write.estate->es_opened_result_relations = lappend(write.estate->es_opened_result_relations, write.result);
  write.estate->es_output_cid = GetCurrentCommandId(true);
  // Used only by BEFORE-trigger row locking; the statement's snapshot when there is one.
  write.estate->es_snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
  ExecOpenIndices(write.result, false);
  AfterTriggerBeginQuery();
  return write;
}

// C zone.
void end_write(const Write& write) noexcept {
  AfterTriggerEndQuery(write.estate);
  ExecCloseIndices(write.result);
  ExecResetTupleTable(write.estate->es_tupleTable, false);
  FreeExecutorState(write.estate);
  table_close(write.relation, NoLock);
}

// C zone. Sets the named columns of a cleared slot whose other columns are filled, and stores it.
void fill_slot(TupleTableSlot* slot, const RowColumns& columns, const Datum* values, const bool* nulls) noexcept {
  for (int i = 0; i < columns.count; ++i) {
    const int index = columns.attnums[i] - 1;
    slot->tts_values[index] = values[i];
    slot->tts_isnull[index] = nulls != nullptr && nulls[i];
  }
  ExecStoreVirtualTuple(slot);
}

}  // namespace

RowId insert_row(Oid relation_id, RowColumns& columns, const Datum* values, const bool* nulls) noexcept {
  const Write write = begin_write(relation_id);
  resolve_columns(write.relation, columns);
  TupleTableSlot* slot = table_slot_create(write.relation, &write.estate->es_tupleTable);
  ExecClearTuple(slot);
  const int natts = RelationGetDescr(write.relation)->natts;
  for (int a = 0; a < natts; ++a) {
    slot->tts_values[a] = Datum(0);
    slot->tts_isnull[a] = true;
  }
  fill_slot(slot, columns, values, nulls);
  ExecSimpleRelationInsert(write.result, write.estate, slot);
  const RowId row = row_id_of(slot->tts_tid);
  end_write(write);
  return row;
}

RowId update_row(Oid relation_id, RowId row, std::int64_t id, RowColumns& columns, const Datum* values,
                 const bool* nulls) noexcept {
  // The row may have been written by an earlier statement of this command: make it the past, or the
  // update would find its own version invisible.
  CommandCounterIncrement();
  const Write write = begin_write(relation_id);
  resolve_columns(write.relation, columns);
  TupleTableSlot* old_slot = table_slot_create(write.relation, &write.estate->es_tupleTable);
  ItemPointerData tid = item_pointer_of(row);
  if (!table_tuple_fetch_row_version(write.relation, &tid, SnapshotAny, old_slot)) {
    elog(ERROR, "row (%u,%u) of relation \"%s\" not found", ItemPointerGetBlockNumberNoCheck(&tid),
         ItemPointerGetOffsetNumberNoCheck(&tid), RelationGetRelationName(write.relation));
  }
  slot_getallattrs(old_slot);
  const TupleDesc desc = RelationGetDescr(write.relation);
  const Form_pg_attribute first = TupleDescAttr(desc, 0);
  if (strcmp(NameStr(first->attname), "id") != 0 || first->atttypid != INT8OID || old_slot->tts_isnull[0] ||
      DatumGetInt64(old_slot->tts_values[0]) != id) {
    elog(ERROR, "row (%u,%u) of relation \"%s\" is not the row of id %lld", ItemPointerGetBlockNumberNoCheck(&tid),
         ItemPointerGetOffsetNumberNoCheck(&tid), RelationGetRelationName(write.relation), static_cast<long long>(id));
  }
  TupleTableSlot* new_slot = table_slot_create(write.relation, &write.estate->es_tupleTable);
  ExecClearTuple(new_slot);
  for (int a = 0; a < desc->natts; ++a) {
    new_slot->tts_values[a] = old_slot->tts_values[a];
    new_slot->tts_isnull[a] = old_slot->tts_isnull[a];
  }
  fill_slot(new_slot, columns, values, nulls);
  EPQState epq;
  EvalPlanQualInit(&epq, write.estate, nullptr, NIL, -1);
  ExecSimpleRelationUpdate(write.result, write.estate, &epq, old_slot, new_slot);
  EvalPlanQualEnd(&epq);
  const RowId new_row = row_id_of(new_slot->tts_tid);
  end_write(write);
  return new_row;
}

}  // namespace ducto::pg
