// src/pg/pricing.h: the pieces of the SQL pricing functions (pricing.cpp) that ducto.charge reuses.
#pragma once
#include "pg/pg_headers.h"

namespace ducto::pg {

// Reads a metrics jsonb object into a usage record for `config`; a bad record throws Error(invalid_value)
// "invalid metrics: <key>: <problem>".
pricing::Usage read_usage(Jsonb* metrics, const pricing::Config& config);

// A breakdown as the jsonb object ducto.price returns (model, model_credits, ..., total).
Jsonb* breakdown_jsonb(const pricing::Breakdown& breakdown);

}  // namespace ducto::pg
