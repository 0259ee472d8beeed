// src/pg/spi_util.cpp: saved SPI plans, the extension-owner switch and schema lookups (see spi_util.h).
#include "pg/spi_util.h"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

#include <cstring>

namespace ducto::pg {

namespace {

constexpr const char* kSchema = "ducto";

// Looked up once per backend and forgotten when pg_namespace changes (ALTER SCHEMA ... OWNER TO,
// DROP EXTENSION). Plain data: nothing to destroy at exit.
struct SchemaCache {
  Oid namespace_oid = InvalidOid;
  Oid owner = InvalidOid;
};
SchemaCache schema_cache;

void forget_schema(Datum, int, uint32) noexcept { schema_cache = SchemaCache{}; }

// The SQL script versions this library was built for (sql/ducto--<version>.sql). A library meeting an
// extension of another version (installed files updated, ALTER EXTENSION ducto UPDATE not yet run, or
// the reverse) refuses to run rather than read tables whose shape it does not know.
constexpr const char* kKnownSqlVersions[] = {"1.0"};

// The installed version of extension ducto (palloc'd), or nullptr when it is not installed.
char* installed_extension_version() noexcept {
  Relation catalog = table_open(ExtensionRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum(kSchema));
  SysScanDesc scan = systable_beginscan(catalog, ExtensionNameIndexId, true, nullptr, 1, &key);
  char* version = nullptr;
  if (HeapTuple tuple = systable_getnext(scan); HeapTupleIsValid(tuple)) {
    bool is_null = false;
    const Datum value = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(catalog), &is_null);
    if (!is_null) version = text_to_cstring(DatumGetTextPP(value));
  }
  systable_endscan(scan);
  table_close(catalog, AccessShareLock);
  return version;
}

void check_extension_version() noexcept {
  char* version = installed_extension_version();
  if (version == nullptr) return;  // not installed: the schema lookup reports it
  for (const char* known : kKnownSqlVersions) {
    if (std::strcmp(version, known) == 0) return;
  }
  ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                  errmsg("the ducto library does not know version \"%s\" of the extension's SQL", version),
                  errhint("Install the matching ducto build, or run ALTER EXTENSION ducto UPDATE.")));
}

void check_spi(int code, const char* what) noexcept {
  if (code < 0) elog(ERROR, "%s failed: %s", what, SPI_result_code_string(code));
}

}  // namespace

SPIPlanPtr SavedPlan::get() noexcept {
  if (plan_ == nullptr) {
    SPIPlanPtr plan = SPI_prepare(sql_, arg_count_, arg_types_);
    if (plan == nullptr) elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql_, SPI_result_code_string(SPI_result));
    check_spi(SPI_keepplan(plan), "SPI_keepplan");
    plan_ = plan;
  }
  return plan_;
}

void spi_connect() noexcept { check_spi(SPI_connect(), "SPI_connect"); }
void spi_finish() noexcept { check_spi(SPI_finish(), "SPI_finish"); }

std::uint64_t spi_run(SavedPlan& plan, Datum* values, const char* nulls, bool read_only, long max_rows) noexcept {
  check_spi(SPI_execute_plan(plan.get(), values, nulls, read_only, max_rows), "SPI_execute_plan");
  return SPI_processed;
}

std::uint64_t spi_run_with_snapshot(SavedPlan& plan, Datum* values, const char* nulls, Snapshot snapshot,
                                    long max_rows) noexcept {
  check_spi(SPI_execute_snapshot(plan.get(), values, nulls, snapshot, InvalidSnapshot, true, false, max_rows),
            "SPI_execute_snapshot");
  return SPI_processed;
}

Datum spi_value(std::uint64_t row, int column, bool* is_null) noexcept {
  return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, is_null);
}

Oid ducto_namespace() noexcept {
  if (!OidIsValid(schema_cache.namespace_oid)) {
    const Oid namespace_oid = get_namespace_oid(kSchema, false);
    HeapTuple tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(namespace_oid));
    if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for schema %u", namespace_oid);
    schema_cache.owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tuple))->nspowner;
    ReleaseSysCache(tuple);
    check_extension_version();
    schema_cache.namespace_oid = namespace_oid;
  }
  return schema_cache.namespace_oid;
}

Oid ducto_relation(const char* name) noexcept {
  const Oid relation = get_relname_relid(name, ducto_namespace());
  if (!OidIsValid(relation)) {
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation \"%s.%s\" does not exist", kSchema, name)));
  }
  return relation;
}

SecurityState become_extension_owner() noexcept {
  ducto_namespace();  // fills schema_cache.owner
  SecurityState saved;
  GetUserIdAndSecContext(&saved.user, &saved.context);
  SetUserIdAndSecContext(schema_cache.owner,
                         saved.context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  return saved;
}

void restore_security(SecurityState saved) noexcept { SetUserIdAndSecContext(saved.user, saved.context); }

void register_spi_callbacks() noexcept { CacheRegisterSyscacheCallback(NAMESPACEOID, forget_schema, 0); }

}  // namespace ducto::pg
