-- sql/price.sql: ducto.price, the breakdown of one usage record (design.md, Pricing config and Money).
-- Amounts are jsonb numbers with 6 places; errors show their SQLSTATE through try().
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto;
CREATE EXTENSION ducto;
RESET client_min_messages;
\pset null '(null)'

CREATE OR REPLACE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN result;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- price_case(metrics, plan): the active config's breakdown through try().
CREATE OR REPLACE FUNCTION price_case(metrics jsonb, plan text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$ SELECT try(format('SELECT ducto.price(%L, plan => %L)', metrics, plan)) $$;

-- price_brief(metrics, plan): 'model: total', or the error.
CREATE OR REPLACE FUNCTION price_brief(metrics jsonb, plan text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
  SELECT try(format($q$SELECT b ->> 'model' || ': ' || (b ->> 'total') FROM ducto.price(%L, plan => %L) AS b$q$,
                    metrics, plan))
$$;

-- No active config yet: 55000, whatever the metrics.
SELECT try($$SELECT ducto.price('{"input_tokens": 1}')$$) AS no_config,
       try($$SELECT ducto.price('{}', plan => 'pro')$$) AS no_config_with_plan;

SELECT ducto.set_pricing($${
  "models":  { "_default": "input_tokens * 0.001 + output_tokens * 0.003",
               "gpt-4":    "input_tokens * 0.01 + output_tokens * 0.03",
               "agent":    "tool_calls * 2 + images * 0.25",
               "strict":   "input_tokens / output_tokens",
               "rebate":   "input_tokens - 10" },
  "tools":   { "_default": "tool_calls * 0.1", "web_search": "tool_calls * 0.5", "refund": "0 - tool_calls" },
  "search":  { "costs": "search_queries * 0.5 + search_results * 0.05" },
  "cache":   { "discount": "0 - cache_read_tokens * 0.0045 + cache_write_tokens * 0.001" },
  "fixed":   { "roadmap_gen": 20, "tiny": 0.000001 },
  "measures": ["images"],
  "plans": { "pro":  { "name": "Pro", "free_allowance": 5000,
                       "rate_overrides": { "gpt-4": "input_tokens * 0.008",
                                           "_default": "input_tokens * 0.0005" } },
             "team": { "rate_overrides": { "gpt-4": "input_tokens * 0.009" } } }
}$$, 'price tests') AS version;

-- The breakdown: every key, every amount with 6 places; total = the sum of the components.
SELECT ducto.price('{"model": "gpt-4", "input_tokens": 1000, "output_tokens": 100}') AS breakdown;
SELECT ducto.price(metrics => '{}') AS empty_usage;

-- Models: the named formula, else _default; a missing or null model means _default.
SELECT metrics, price_brief(metrics) AS priced
FROM (VALUES
  ('{"model": "gpt-4", "input_tokens": 1000}'::jsonb),
  ('{"model": "gpt-3", "input_tokens": 1000}'),
  ('{"input_tokens": 1000, "output_tokens": 1000}'),
  ('{"model": null, "input_tokens": 1000}'),
  ('{"model": "", "input_tokens": 1000}'),
  ('{"model": "_default", "input_tokens": 1000}')
) AS t(metrics);

-- Plans: rate_overrides[model], models[model], rate_overrides._default, models._default.
SELECT plan, metrics, price_brief(metrics, plan) AS priced
FROM (VALUES
  ('pro', '{"model": "gpt-4", "input_tokens": 1000}'::jsonb),
  ('pro', '{"model": "agent", "tool_calls": 1}'),
  ('pro', '{"model": "gpt-3", "input_tokens": 1000}'),
  ('team', '{"model": "gpt-3", "input_tokens": 1000}'),
  ('team', '{"model": "gpt-4", "input_tokens": 1000}'),
  (NULL, '{"model": "gpt-4", "input_tokens": 1000}'),
  ('enterprise', '{"model": "gpt-4", "input_tokens": 1000}'),
  ('', '{}'),
  ('PRO', '{}')
) AS t(plan, metrics);

-- Tools: a count goes to _default; named tools with a formula are priced with their own count, the rest
-- together by _default. In model formulas tool_calls is the total.
SELECT metrics, price_case(metrics) AS breakdown
FROM (VALUES
  ('{"tool_calls": 3}'::jsonb),
  ('{"tool_calls": [{"name": "web_search"}, {"name": "web_search"}, {"name": "calc"}]}'),
  ('{"tool_calls": [{"name": "calc"}, {"name": "shell"}, {"name": "_default"}]}'),
  ('{"tool_calls": []}'),
  ('{"tool_calls": 0}'),
  ('{"model": "agent", "tool_calls": [{"name": "web_search"}, {"name": "calc"}], "images": 2}'),
  ('{"tool_calls": [{"name": "refund"}]}')
) AS t(metrics);

-- Bad tool lists: the element's index is in the path.
SELECT metrics, price_case(metrics) AS result
FROM (VALUES
  ('{"tool_calls": [1]}'::jsonb),
  ('{"tool_calls": [{"name": "a"}, {"name": 5}]}'),
  ('{"tool_calls": [{"name": "a"}, {"name": "b"}, {"nam": "c"}]}'),
  ('{"tool_calls": [{"name": "a", "extra": 1}]}'),
  ('{"tool_calls": [{}]}'),
  ('{"tool_calls": [[]]}'),
  ('{"tool_calls": [{"name": {"x": 1}}]}'),
  ('{"tool_calls": {"name": "web_search"}}'),
  ('{"tool_calls": "web_search"}'),
  ('{"tool_calls": -1}'),
  ('{"tool_calls": 1.5}')
) AS t(metrics);

-- Search, cache (may be negative, the total is clamped at zero) and fixed jobs.
SELECT metrics, price_case(metrics) AS breakdown
FROM (VALUES
  ('{"search_queries": 2, "search_results": 10}'::jsonb),
  ('{"input_tokens": 1000, "cache_read_tokens": 100}'),
  ('{"input_tokens": 1000, "cache_read_tokens": 1000}'),
  ('{"cache_write_tokens": 3}'),
  ('{"fixed_job": "roadmap_gen"}'),
  ('{"fixed_job": "tiny"}'),
  ('{"fixed_job": null, "input_tokens": 1}'),
  ('{"fixed_job": "unknown_job"}'),
  ('{"fixed_job": 5}')
) AS t(metrics);

-- Counts are non-negative integers (1.0 and 1e3 are integers); unknown keys and wrong types are errors.
SELECT metrics, price_brief(metrics) AS result
FROM (VALUES
  ('{"input_tokens": 1.0}'::jsonb),
  ('{"input_tokens": 1e3}'),
  ('{"images": 4, "model": "agent"}'),
  ('{"input_tokens": 1.5}'),
  ('{"input_tokens": -1}'),
  ('{"input_tokens": "5"}'),
  ('{"input_tokens": true}'),
  ('{"input_tokens": null}'),
  ('{"input_tokens": {"n": 1}}'),
  ('{"input_tokens": [1]}'),
  ('{"inputtokens": 1}'),
  ('{"model": 4}'),
  ('{"model": ["gpt-4"]}'),
  ('{"web_search_calls": 1, "code_exec_calls": 2}')
) AS t(metrics);

-- Huge and tiny numbers.
SELECT metrics, price_brief(metrics) AS result
FROM (VALUES
  ('{"input_tokens": 1000000000000}'::jsonb),
  ('{"input_tokens": 10000000000000000000000000000000000}'),
  ('{"input_tokens": 100000000000000000000000000000000000000}'),
  ('{"input_tokens": 1e100}'),
  ('{"input_tokens": 1e-100}'),
  ('{"input_tokens": 1}')
) AS t(metrics);
SELECT ducto.price('{"input_tokens": 100000000000000000000}') ->> 'total' AS beyond_int64_micros,
       ducto.price('{"input_tokens": 1}') ->> 'total' AS one_token;

-- A formula that fails, or a negative model price: 22023 naming the formula.
SELECT metrics, price_case(metrics) AS result
FROM (VALUES
  ('{"model": "strict", "input_tokens": 10, "output_tokens": 0}'::jsonb),
  ('{"model": "strict", "input_tokens": 10, "output_tokens": 4}'),
  ('{"model": "rebate", "input_tokens": 5}'),
  ('{"model": "rebate", "input_tokens": 10}')
) AS t(metrics);

-- Wrong shapes and NULLs.
SELECT try($$SELECT ducto.price(NULL)$$) AS null_metrics,
       try($$SELECT ducto.price('[]')$$) AS array_metrics,
       try($$SELECT ducto.price('5')$$) AS number_metrics,
       try($$SELECT ducto.price('null')$$) AS json_null_metrics;

-- An inline config is used instead of the active one (and compiled once per backend).
SELECT ducto.price('{"input_tokens": 1000}',
                   config => '{"models": {"_default": "input_tokens * 0.002"}}') ->> 'total' AS inline,
       ducto.price('{"input_tokens": 1000}') ->> 'total' AS active;
SELECT ducto.price('{"model": "gpt-4", "input_tokens": 1000}',
                   '{"models": {"_default": "input_tokens"}, "plans": {"p": {"rate_overrides": {"gpt-4": "2"}}}}',
                   'p') AS inline_with_plan;
SELECT try($$SELECT ducto.price('{"model": "gpt-4"}', '{"models": {"gpt-3": "1"}}')$$) AS unknown_model,
       try($$SELECT ducto.price('{}', '{"models": {"_default": "1 +"}, "bad": 1}')$$) AS invalid_inline,
       try($$SELECT ducto.price('{}', '[]')$$) AS array_inline,
       try($$SELECT ducto.price('{}', '{"models": {"_default": "1"}}', 'pro')$$) AS plan_not_in_inline;
SELECT sum((ducto.price(jsonb_build_object('input_tokens', g),
                        '{"models": {"_default": "input_tokens * 0.5"}}') ->> 'total')::numeric) AS inline_rows
FROM generate_series(1, 100) AS g;

-- ducto.price over many rows matches the same arithmetic written in SQL, to the micro-credit.
SELECT count(*) AS rows,
       sum((ducto.price(m) ->> 'total')::numeric) AS priced,
       sum(round((m ->> 'input_tokens')::numeric * 0.001 + (m ->> 'output_tokens')::numeric * 0.003, 6)) AS in_sql
FROM (SELECT jsonb_build_object('input_tokens', g * 7, 'output_tokens', g % 13) AS m
      FROM generate_series(1, 2000) AS g) AS usage;

-- In parallel workers too: each worker reads the active config once (from the query's snapshot), and an
-- error raised in a worker reaches the client with its SQLSTATE.
CREATE TABLE usage_rows AS
  SELECT jsonb_build_object('input_tokens', g * 7, 'output_tokens', g % 13) AS m FROM generate_series(1, 2000) AS g;
ANALYZE usage_rows;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT sum((ducto.price(m) ->> 'total')::numeric) FROM usage_rows;
SELECT sum((ducto.price(m) ->> 'total')::numeric) AS priced_in_parallel FROM usage_rows;
SELECT try($$SELECT count(ducto.price(m || '{"bad": 1}')) FROM usage_rows$$) AS error_in_worker;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE usage_rows;

-- The session survives every error above.
SELECT 1 AS still_alive;
