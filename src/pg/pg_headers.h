// src/pg/pg_headers.h: the one place the glue includes Postgres' C headers.
//
// Every src/pg file includes this first. Three things have to happen in a fixed order:
//  1. The core's public headers come before any Postgres header: their firewall (core/no_postgres.h)
//     rejects a translation unit in which postgres.h was seen first, so the glue includes them here.
//  2. g++ has no __builtin_types_compatible_p, which a few c.h macros (unconstify, dlist_*) use; a
//     type-trait stands in for it (notes/postgres-cpp.md §2, pitfall 6).
//  3. Postgres headers have no C++ guards, so they are wrapped in extern "C". Standard headers included
//     after this file are fine; port.h's snprintf-style macros only break std:: qualified calls to them.
#pragma once

#include "core/decimal.h"
#include "core/error.h"
#include "core/expr/program.h"
#include "core/pricing/config.h"
#include "core/pricing/engine.h"

#include <type_traits>

#define __builtin_types_compatible_p(a, b) (std::is_same_v<std::remove_cv_t<a>, std::remove_cv_t<b>>)

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
}
