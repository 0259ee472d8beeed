-- sql/eval.sql: ducto.eval, the expression language as SQL sees it (design.md, Expression language).
-- Every error shows its SQLSTATE through try(); the results are specifications, not snapshots.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto;
CREATE EXTENSION ducto;
RESET client_min_messages;
\pset null '(null)'

-- try(sql): the first column of a one-row statement as text, or 'SQLSTATE: message' when it fails.
CREATE OR REPLACE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN result;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- eval_case(expression, variables): ducto.eval through try().
CREATE OR REPLACE FUNCTION eval_case(expression text, variables jsonb DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$ SELECT try(format('SELECT ducto.eval(%L, %L)', expression, variables)) $$;

-- The result is numeric with exactly 6 places.
SELECT ducto.eval('2') AS two, pg_typeof(ducto.eval('2')) AS type, scale(ducto.eval('1/3')) AS scale;

-- Named notation and the default for variables.
SELECT ducto.eval(expression => 'x * 2 + y', variables => '{"x": 1.25, "y": 0.5}') AS named,
       ducto.eval(expression => '7') AS default_variables;

-- Operators and precedence, lowest first: if/else, or, and, not, comparisons, + -, * / // %, unary.
SELECT expression, eval_case(expression) AS result
FROM (VALUES
  ('1 + 2 * 3'), ('(1 + 2) * 3'), ('10 - 4 - 3'), ('2 * 3 / 4'), ('2 / 4 * 3'),
  ('7 // 2'), ('-7 // 2'), ('7 % 3'), ('-7 % 3'), ('7 % -3'), ('7.5 // 2'), ('7.5 % 2'),
  ('-2 * -3'), ('+5'), ('- - 5'), ('-2 * 3 + 1'),
  ('1 < 2'), ('2 <= 2'), ('3 > 4'), ('3 >= 4'), ('1 == 1.000'), ('1 != 1'),
  ('1 + 2 == 3'), ('2 * 3 > 5'),
  ('not 0'), ('not 5'), ('not 1 == 2'), ('not 0 and 0'),
  ('5 and 7'), ('0 and 7'), ('0 or 3'), ('2 or 3'), ('0 or 0'),
  ('1 or 0 and 0'), ('(1 or 0) and 0'),
  ('10 if 1 else 20'), ('10 if 0 else 20'), ('1 if 0 else 2 if 0 else 3'), ('1 + 1 if 0 else 5'),
  ('true + true'), ('false'), ('true and 4'),
  ('1e-3'), ('.5'), ('5.'), ('1.5E+3'), ('1/3'), ('2/3'), ('-2/3')
) AS t(expression);

-- and, or, if() and `if else` evaluate only what they need.
SELECT expression, eval_case(expression) AS result
FROM (VALUES
  ('0 and 1/0'), ('1 or 1/0'), ('if(1, 2, 1/0)'), ('if(0, 1/0, 3)'), ('4 if 1 else 1/0'),
  ('1/0 if 0 else 5'), ('1 and 1/0')
) AS t(expression);

-- Functions.
SELECT expression, eval_case(expression) AS result
FROM (VALUES
  ('min(3, 1, 2)'), ('max(3, 1, 2)'), ('max(5)'), ('min(-1.5, -1.25)'),
  ('abs(-2.5)'), ('abs(2)'), ('ceil(1.2)'), ('ceil(-1.2)'), ('floor(1.8)'), ('floor(-1.2)'),
  ('round(2.5)'), ('round(-2.5)'), ('round(2.4999)'), ('round(1.23456789, 3)'), ('round(-1.2345, 3)'),
  ('round(5, 0)'), ('round(0.5, 18)'),
  ('clamp(5, 0, 3)'), ('clamp(-1, 0, 3)'), ('clamp(2, 0, 3)'),
  ('if(0, 1, 2)'), ('if(3, 1, 2)'),
  ('tier(5, 10, 1, 20, 2, 3)'), ('tier(10, 10, 1, 20, 2, 3)'), ('tier(15, 10, 1, 20, 2, 3)'),
  ('tier(25, 10, 1, 20, 2, 3)'), ('tier(1, 2, 3, 4)'),
  ('percentile(50, 1, 2, 3, 4)'), ('percentile(0, 5, 1)'), ('percentile(100, 5, 1)'),
  ('percentile(25, 4, 1, 3, 2)'), ('percentile(50, 7)')
) AS t(expression);

-- Variables: the known names are exactly the keys of `variables`, in any order.
SELECT expression, variables, eval_case(expression, variables) AS result
FROM (VALUES
  ('input_tokens * 0.001 + output_tokens * 0.003', '{"input_tokens": 1000, "output_tokens": 500}'::jsonb),
  ('a - b', '{"b": 1, "a": 10}'),
  ('a', '{"a": 1.0}'),
  ('a', '{"b": 1}'),
  ('a + b', '{"a": 1}'),
  ('1 + 1', '{"unused": 5}'),
  ('tokens_2', '{"tokens_2": 3}'),
  ('x', '{"x": -4.5}'),
  ('x', '{"x": 1e3}')
) AS t(expression, variables);

-- The compiled program is cached by expression and variable names: the same text with other names is
-- compiled again, never confused with the cached one.
SELECT ducto.eval('a * 2', '{"a": 1}') AS first,
       ducto.eval('a * 2', '{"a": 1, "b": 5}') AS more_names,
       try($$SELECT ducto.eval('a * 2', '{"b": 1}')$$) AS other_names;
SELECT sum(ducto.eval('x * 2 + 1', jsonb_build_object('x', g))) AS repeated_calls
FROM generate_series(1, 1000) AS g;

-- Rounding to 6 places, half away from zero.
SELECT expression, variables, eval_case(expression, variables) AS result
FROM (VALUES
  ('1e-7', '{}'::jsonb), ('0.0000005', '{}'), ('-0.0000005', '{}'), ('0.0000004999', '{}'),
  ('x', '{"x": 1.0000005}'), ('x', '{"x": 0.0000001}'), ('x / 3', '{"x": 2}'), ('1.9999995', '{}')
) AS t(expression, variables);

-- Huge and tiny numbers: exact up to 38 significant digits, an overflow is an error.
SELECT expression, variables, eval_case(expression, variables) AS result
FROM (VALUES
  ('1e37', '{}'::jsonb),
  ('99999999999999999999999999999999999999', '{}'),
  ('-99999999999999999999999999999999999999', '{}'),
  ('12345678901234.5678901', '{}'),
  ('1e38', '{}'),
  ('1e37 * 10', '{}'),
  ('99999999999999999999999999999999999999 + 1', '{}'),
  ('x * x', '{"x": 1e18}'),
  ('x * x', '{"x": 1e19}'),
  ('x', '{"x": 1e37}'),
  ('x', '{"x": 1e38}'),
  ('x', '{"x": 1e-7}'),
  ('x', '{"x": 1e-100}'),
  ('x * 1000000', '{"x": 0.000000000001}')
) AS t(expression, variables);

-- Errors: 22023 with the message and the 1-based position.
SELECT expression, eval_case(expression) AS result
FROM (VALUES
  ('1 +'), ('(1 + 2'), ('1 + 2)'), (''), ('   '), ('1 2'), ('1 $ 2'), ('foo(1)'), ('x'), ('min()'),
  ('abs(1, 2)'), ('round(1, 2, 3)'), ('clamp(1, 2)'), ('if(1, 2)'), ('tier(1, 2, 3)'), ('tier(1, 2, 3, 4, 5)'),
  ('percentile(50)'), ('1 < 2 < 3'), ('1 == 1 == 1'), ('2 ** 3'), ('"a"'), ('''a'''), ('a.b'), ('x[1]'),
  ('x = 1'), ('1 if 1'), ('1/0'), ('5 % 0'), ('5 // 0'), ('1 + 2 / (3 - 3)'), ('round(1, 19)'),
  ('round(1, -1)'), ('round(1, 1.5)'), ('percentile(101, 1)'), ('percentile(-1, 1)'), ('clamp(1, 3, 2)'),
  ('max'), ('true()'), ('1..2'), ('1e'), ('0x10'), ('1_000')
) AS t(expression);

-- Limits on untrusted formulas: 4,096 characters, nesting depth 64, 1,000 nodes.
SELECT length(f) AS length, eval_case(f) AS result
FROM (VALUES
  (repeat(' ', 4091) || '1 + 1'),
  (repeat(' ', 4092) || '1 + 1'),
  (repeat('1 + ', 2500) || '1')
) AS t(f);
SELECT depth, eval_case(repeat('(', depth) || '1' || repeat(')', depth)) AS result
FROM (VALUES (63), (64), (65), (1000)) AS t(depth);
SELECT eval_case(repeat('-', 200) || '1') AS unary_chain,
       eval_case(repeat('abs(', 65) || '1' || repeat(')', 65)) AS nested_calls;
SELECT nodes, eval_case('1' || repeat(' + 1', (nodes - 1) / 2)) AS result
FROM (VALUES (999), (1001)) AS t(nodes);

-- NULLs: 22004, whichever argument.
SELECT try($$SELECT ducto.eval(NULL)$$) AS null_expression,
       try($$SELECT ducto.eval('1', NULL)$$) AS null_variables,
       try($$SELECT ducto.eval(NULL, NULL)$$) AS both_null;

-- Wrong JSON shapes and types for variables: 22023 naming the key.
SELECT variables, eval_case('1', variables) AS result
FROM (VALUES
  ('[1, 2]'::jsonb), ('5'), ('"x"'), ('null'), ('true'), ('[]'),
  ('{"x": "1"}'), ('{"x": true}'), ('{"x": null}'), ('{"x": {"a": 1}}'), ('{"x": [1]}'), ('{"ok": 1, "bad": "2"}')
) AS t(variables);

-- NaN and infinities: jsonb has no such numbers. to_jsonb turns them into strings, which are refused
-- like any string; as JSON text they are not even valid input.
SELECT to_jsonb('NaN'::numeric) AS nan_as_jsonb,
       try($$SELECT ducto.eval('x', jsonb_build_object('x', 'NaN'::numeric))$$) AS nan,
       try($$SELECT ducto.eval('x', jsonb_build_object('x', '-Infinity'::numeric))$$) AS minus_infinity,
       try($$SELECT ducto.eval('x', '{"x": NaN}')$$) AS nan_literal;

-- The session survives every error above.
SELECT 1 AS still_alive;
