-- sql/ducto--1.0.sql: the ducto extension, version 1.0 (schema ducto, from ducto.control).
-- Pricing: versioned configs, formula evaluation and the price of one usage record.
-- Functions are SECURITY INVOKER; the C code reads and writes ducto's tables as the extension owner
-- (src/pg/spi_util.h), so no table needs a grant to PUBLIC.

\echo Use "CREATE EXTENSION ducto" to load this file. \quit

GRANT USAGE ON SCHEMA ducto TO PUBLIC;

-- ---- pricing configs ---------------------------------------------------------------------------------

CREATE TABLE ducto.pricing_configs (
    version    integer PRIMARY KEY CHECK (version > 0),
    label      text,
    config     jsonb NOT NULL,
    active     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
-- Exactly one version is active at a time (set_pricing and activate_pricing keep it so).
CREATE UNIQUE INDEX pricing_configs_one_active ON ducto.pricing_configs (active) WHERE active;
COMMENT ON TABLE ducto.pricing_configs IS
    'Published pricing configs, one row per version; written only by ducto.set_pricing and ducto.activate_pricing.';
SELECT pg_catalog.pg_extension_config_dump('ducto.pricing_configs', '');
REVOKE ALL ON TABLE ducto.pricing_configs FROM PUBLIC;

-- ---- functions ---------------------------------------------------------------------------------------
-- Not STRICT: a NULL required argument raises 22004 instead of silently returning NULL.
-- eval, price and validate_pricing are STABLE, not IMMUTABLE: an expression index on them would go stale
-- after a fix of the engine.

CREATE FUNCTION ducto.eval(expression text, variables jsonb DEFAULT '{}')
RETURNS numeric
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_eval';
COMMENT ON FUNCTION ducto.eval(text, jsonb) IS
    'Evaluates a pricing formula with the given numeric variables; the result is rounded to 6 places. Errors: 22023.';

CREATE FUNCTION ducto.validate_pricing(config jsonb)
RETURNS SETOF text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_validate_pricing';
COMMENT ON FUNCTION ducto.validate_pricing(jsonb) IS
    'Every problem of a pricing config, each naming its path; no rows when the config is valid.';

CREATE FUNCTION ducto.set_pricing(config jsonb, label text DEFAULT NULL)
RETURNS integer
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_set_pricing';
COMMENT ON FUNCTION ducto.set_pricing(jsonb, text) IS
    'Validates a pricing config (22023 listing the problems), stores it as the next version, makes it the active one and returns the version.';

CREATE FUNCTION ducto.activate_pricing(version integer)
RETURNS integer
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_activate_pricing';
COMMENT ON FUNCTION ducto.activate_pricing(integer) IS
    'Makes a stored pricing version the active one (roll back or forward) and returns it; unknown version: 22023.';

CREATE FUNCTION ducto.pricing_history()
RETURNS TABLE (version integer, label text, active boolean, created_at timestamptz)
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_pricing_history';
COMMENT ON FUNCTION ducto.pricing_history() IS
    'Every stored pricing version, newest first.';

CREATE FUNCTION ducto.get_pricing(version integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_get_pricing';
COMMENT ON FUNCTION ducto.get_pricing(integer) IS
    'The stored pricing config of a version, or of the active one when version is NULL (NULL when none is active); unknown version: 22023.';

CREATE FUNCTION ducto.price(metrics jsonb, config jsonb DEFAULT NULL, plan text DEFAULT NULL)
RETURNS jsonb
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_price';
COMMENT ON FUNCTION ducto.price(jsonb, jsonb, text) IS
    'The credit breakdown of one usage record (model, model_credits, tool_credits, search_credits, cache_credits, fixed_credits, total), priced with config or the active version.';

-- Publishing changes what every charge costs: not for PUBLIC (an application role gets one GRANT).
REVOKE EXECUTE ON FUNCTION ducto.set_pricing(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ducto.activate_pricing(integer) FROM PUBLIC;

