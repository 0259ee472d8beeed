-- scripts/demo.sql: what scripts/demo.sh shows once the extension is installed (run by psql in a
-- fresh database where CREATE EXTENSION ducto has been done).
-- It publishes a pricing config and prints the breakdown of a few usage records; scripts/demo.sh then
-- runs the events tutorial (examples/events_tutorial.py) for the ledger and its events.
\pset footer off

SELECT ducto.set_pricing($${
  "models": { "_default": "input_tokens * 0.001 + output_tokens * 0.003",
              "gpt-4":    "input_tokens * 0.01 + output_tokens * 0.03" },
  "tools":  { "_default": "tool_calls * 0", "web_search": "tool_calls * 0.5" },
  "fixed":  { "roadmap_gen": 20 }
}$$::jsonb, 'demo prices') AS published_version;

\x on
SELECT usage, ducto.price(usage) AS breakdown
FROM (VALUES
  ('{"model": "gpt-4", "input_tokens": 500, "output_tokens": 200}'::jsonb),
  ('{"input_tokens": 1200, "output_tokens": 300, "tool_calls": [{"name": "web_search"}, {"name": "calc"}]}'),
  ('{"model": "gpt-4", "fixed_job": "roadmap_gen"}')
) AS records(usage);
