-- sql/policies_plans.sql: plans and features (set_user_plan, get_user_plan, check_feature), spend cap
-- definitions (set_spend_cap, remove_spend_cap, spend_caps) and per-user low-balance thresholds
-- (set_low_balance_thresholds): values, errors, events, and that reads never create accounts.
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

-- The month window of now, as get_user_plan reports it.
CREATE OR REPLACE FUNCTION this_month() RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'window_start', to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
    'window_end', to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month',
                          'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'))
$$;

-- ---- no active config --------------------------------------------------------------------------------

SELECT try($$SELECT ducto.set_user_plan('alice', 'pro')$$) AS no_config;
SELECT ducto.get_user_plan('alice') - 'window_start' - 'window_end' AS no_config_plan;
SELECT ducto.check_feature('alice', 'sso') IS NULL AS no_config_feature;
-- Removing a plan needs no config; it creates the account (a write).
SELECT ducto.set_user_plan('alice', NULL) - 'window_start' - 'window_end' AS removed;
SELECT count(*) AS accounts FROM ducto.accounts WHERE user_id = 'alice';

SELECT ducto.set_pricing($${
  "models": { "_default": "input_tokens * 0.001", "gpt-4": "input_tokens * 0.01" },
  "low_balance_thresholds": [100, 20],
  "plans": {
    "pro":  { "name": "Pro", "free_allowance": 50.5,
              "rate_overrides": { "gpt-4": "input_tokens * 0.008" },
              "features": { "priority_queue": true, "max_seats": 0, "label": "", "limits": {"rpm": 60} } },
    "free": { "name": "Free \"tier\"" }
  }
}$$, 'policies') AS version;

-- ---- set_user_plan / get_user_plan -------------------------------------------------------------------

SELECT ducto.set_user_plan('alice', 'pro') - 'window_start' - 'window_end' AS alice_pro;
SELECT (ducto.get_user_plan('alice') - 'plan' - 'name' - 'allowance' - 'used' - 'remaining' - 'features')
       = this_month() AS window_is_this_utc_month;
SELECT ducto.get_user_plan('alice') -> 'features' AS features;
SELECT policies FROM ducto.accounts WHERE user_id = 'alice';
-- Plans are keys of the config's plans; a name with quotes comes back escaped.
SELECT ducto.set_user_plan('bob', 'free') ->> 'name' AS bob_plan_name;
SELECT try($$SELECT ducto.set_user_plan('carol', 'enterprise')$$) AS unknown_plan,
       try($$SELECT ducto.set_user_plan('carol', 'Pro')$$) AS case_matters,
       try($$SELECT ducto.set_user_plan(NULL, 'pro')$$) AS null_user,
       try($$SELECT ducto.set_user_plan(' carol', 'pro')$$) AS bad_user;
SELECT count(*) AS carol_accounts FROM ducto.accounts WHERE user_id = 'carol';
-- Unknown users: plan null, zeros, no features; the read creates nothing.
SELECT ducto.get_user_plan('nobody') - 'window_start' - 'window_end' AS unknown_user;
SELECT count(*) AS nobody_accounts FROM ducto.accounts WHERE user_id = 'nobody';

-- Events: one credits.plan_changed per change, none when the plan stays the same.
SELECT ducto.set_user_plan('alice', 'pro') ->> 'plan' AS unchanged;
SELECT ducto.set_user_plan('alice', 'free') ->> 'plan' AS downgraded;
SELECT ducto.set_user_plan('alice', NULL) ->> 'plan' AS removed;
SELECT policies FROM ducto.accounts WHERE user_id = 'alice';
SELECT type, user_id, amount, data FROM ducto.events WHERE type = 'credits.plan_changed' ORDER BY id;

-- ---- check_feature -----------------------------------------------------------------------------------

SELECT ducto.set_user_plan('alice', 'pro') ->> 'plan' AS plan;
SELECT ducto.check_feature('alice', 'priority_queue') AS priority_queue,
       ducto.check_feature('alice', 'max_seats') AS max_seats,
       ducto.check_feature('alice', 'label') AS label,
       ducto.check_feature('alice', 'limits') AS limits,
       ducto.check_feature('alice', 'sso') AS sso,
       ducto.check_feature('bob', 'priority_queue') AS bob_priority,
       ducto.check_feature('nobody', 'priority_queue') AS nobody;
SELECT try($$SELECT ducto.check_feature('alice', NULL)$$) AS null_feature;

-- A plan the active config no longer has: kept, but worth nothing until a config has it again.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.001"}}', 'no plans') AS version;
SELECT ducto.get_user_plan('alice') - 'window_start' - 'window_end' AS orphaned_plan;
SELECT ducto.check_feature('alice', 'priority_queue') AS orphaned_feature;
SELECT ducto.activate_pricing(1) AS version;

-- ---- spend caps --------------------------------------------------------------------------------------

SELECT ducto.set_spend_cap('alice', 'monthly', 100);
SELECT ducto.set_spend_cap('alice', 'daily', 10.5, 'warn', 'gpt-4', 0.5);
SELECT ducto.set_spend_cap(user_id => 'alice', period => 'daily', cap => 7, action => 'notify');
SELECT period, model, cap, action, warn_at, spent,
       window_end = ((window_start AT TIME ZONE 'UTC')
                     + CASE period WHEN 'daily' THEN interval '1 day' ELSE interval '1 month' END) AT TIME ZONE 'UTC'
         AS window_length_ok
  FROM ducto.spend_caps('alice');
SELECT bool_and(window_start = date_trunc(CASE period WHEN 'daily' THEN 'day' ELSE 'month' END,
                                          now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS utc_windows
  FROM ducto.spend_caps('alice');
-- Upsert on (user, period, model).
SELECT ducto.set_spend_cap('alice', 'monthly', 200, 'warn', NULL, 1);
SELECT period, model, cap, action, warn_at FROM ducto.spend_caps('alice') WHERE period = 'monthly';
SELECT try($$SELECT ducto.set_spend_cap('alice', 'weekly', 1)$$) AS bad_period,
       try($$SELECT ducto.set_spend_cap('alice', NULL, 1)$$) AS null_period,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', 0)$$) AS zero_cap,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', -1)$$) AS negative_cap,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', 1.0000001)$$) AS fine_cap,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', NULL)$$) AS null_cap;
SELECT try($$SELECT ducto.set_spend_cap('alice', 'daily', 1, 'block')$$) AS bad_action,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', 1, NULL)$$) AS null_action,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', 1, 'deny', '')$$) AS empty_model,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', 1, 'deny', NULL, 0)$$) AS zero_warn,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', 1, 'deny', NULL, 1.5)$$) AS big_warn,
       try($$SELECT ducto.set_spend_cap('alice', 'daily', 1, 'deny', NULL, NULL)$$) AS null_warn;
SELECT ducto.remove_spend_cap('alice', 'daily', 'gpt-4') AS removed,
       ducto.remove_spend_cap('alice', 'daily', 'gpt-4') AS again,
       ducto.remove_spend_cap('alice', 'monthly', 'gpt-4') AS other_model,
       ducto.remove_spend_cap('nobody', 'daily') AS unknown_user;
SELECT try($$SELECT ducto.remove_spend_cap('alice', 'hourly')$$) AS bad_period;
SELECT period, model, cap FROM ducto.spend_caps('alice');
SELECT count(*) AS caps_of_unknown FROM ducto.spend_caps('nobody');
SELECT count(*) AS nobody_accounts FROM ducto.accounts WHERE user_id = 'nobody';
-- A cap set on a new user creates the account; removing every policy clears the flag.
SELECT ducto.set_spend_cap('dave', 'daily', 5);
SELECT policies FROM ducto.accounts WHERE user_id = 'dave';
SELECT ducto.remove_spend_cap('dave', 'daily') AS removed;
SELECT policies FROM ducto.accounts WHERE user_id = 'dave';

-- ---- low-balance thresholds --------------------------------------------------------------------------

SELECT ducto.set_low_balance_thresholds('erin', ARRAY[50, 5.5, 50.0, 0]);
SELECT low_balance_thresholds FROM ducto.account_policies AS p JOIN ducto.accounts AS a ON a.id = p.account_id
 WHERE a.user_id = 'erin';
SELECT policies FROM ducto.accounts WHERE user_id = 'erin';
SELECT ducto.set_low_balance_thresholds('erin', '{}');
SELECT low_balance_thresholds FROM ducto.account_policies AS p JOIN ducto.accounts AS a ON a.id = p.account_id
 WHERE a.user_id = 'erin';
SELECT ducto.set_low_balance_thresholds('erin', NULL);
SELECT policies FROM ducto.accounts WHERE user_id = 'erin';
SELECT try($$SELECT ducto.set_low_balance_thresholds('erin', ARRAY[-1])$$) AS negative,
       try($$SELECT ducto.set_low_balance_thresholds('erin', ARRAY[1.0000001])$$) AS fine,
       try($$SELECT ducto.set_low_balance_thresholds('erin', ARRAY[1, NULL])$$) AS null_element,
       try($$SELECT ducto.set_low_balance_thresholds('erin', ARRAY['NaN'::numeric])$$) AS nan,
       try($$SELECT ducto.set_low_balance_thresholds('erin', ARRAY[[1], [2]])$$) AS two_dimensions;

-- ---- privileges --------------------------------------------------------------------------------------

SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
 WHERE n.nspname = 'ducto' AND p.proname IN ('set_user_plan', 'get_user_plan', 'check_feature', 'set_spend_cap',
                                             'remove_spend_cap', 'spend_caps', 'set_low_balance_thresholds')
 ORDER BY 1;
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_select
  FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ducto' AND c.relname IN ('account_policies', 'caps', 'member_spend') ORDER BY 1;
SELECT p.proname, p.provolatile, p.proparallel, obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
 WHERE n.nspname = 'ducto' AND p.proname IN ('set_user_plan', 'get_user_plan', 'check_feature', 'set_spend_cap',
                                             'remove_spend_cap', 'spend_caps', 'set_low_balance_thresholds')
 ORDER BY 1;
