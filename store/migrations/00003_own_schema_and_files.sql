-- The product's tables live in a schema of their own (store.DefaultSchema, queue_operator, unless
-- DATABASE_SCHEMA says otherwise), so a database shared with the main app, whose public schema
-- may well have a properties table of its own, collides with nothing. store.Migrate runs every
-- migration with search_path set to that schema alone, so unqualified names land there.
--
-- An install from before this migration has its tables in public: store.Migrate has already moved
-- goose's version table into the schema (which is how this file runs at all), and this moves each
-- table after it, with its indexes, constraints and rows. On a fresh database 00001 created the
-- tables in the schema already, and a public table of the same name belongs to someone else: it is
-- left alone. Configured as public, there is nothing to move.
--
-- Then what the facade's upload routes (POST/PUT /api/files) keep of a file beside its rows: a
-- name, the currency of its prices, when it was last uploaded; and the enrichment status
-- "stale", for a file whose rows were replaced after an enrichment.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    tbl text;
BEGIN
    IF current_schema() = 'public' THEN
        RETURN;
    END IF;
    FOREACH tbl IN ARRAY ARRAY['properties', 'pricing_rows', 'competitor_prices', 'analytics_inputs',
                               'analytics_results', 'job_results'] LOOP
        IF to_regclass(format('public.%I', tbl)) IS NOT NULL
           AND to_regclass(format('%I.%I', current_schema(), tbl)) IS NULL THEN
            EXECUTE format('ALTER TABLE public.%I SET SCHEMA %I', tbl, current_schema());
        END IF;
    END LOOP;
END $$;
-- +goose StatementEnd

ALTER TABLE properties
    ADD COLUMN name        text,
    ADD COLUMN currency    text,
    ADD COLUMN uploaded_at timestamptz,
    ADD CONSTRAINT properties_name_length CHECK (char_length(name) BETWEEN 1 AND 255),
    ADD CONSTRAINT properties_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    DROP CONSTRAINT properties_enrichment_status_valid,
    ADD CONSTRAINT properties_enrichment_status_valid
        CHECK (enrichment_status IN ('pending', 'running', 'completed', 'failed', 'stale'));

-- +goose Down
UPDATE properties SET enrichment_status = 'pending' WHERE enrichment_status = 'stale';
ALTER TABLE properties
    DROP CONSTRAINT properties_enrichment_status_valid,
    ADD CONSTRAINT properties_enrichment_status_valid
        CHECK (enrichment_status IN ('pending', 'running', 'completed', 'failed')),
    DROP COLUMN uploaded_at,
    DROP COLUMN currency,
    DROP COLUMN name;
-- The tables stay in the schema: back in public they could meet another app's of the same name,
-- and 00001's Down drops them wherever they are.
