-- Job ids are CR names, unique only within a namespace: analytics results are keyed by both, as
-- the job history is (00002), so two namespaces sharing this database never overwrite each
-- other's results. Rows written before this migration (there was no analytics worker) are
-- assigned to the namespace "default".

-- +goose Up
ALTER TABLE analytics_results ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE analytics_results ALTER COLUMN namespace DROP DEFAULT;
ALTER TABLE analytics_results ADD CONSTRAINT analytics_results_namespace_length
    CHECK (char_length(namespace) BETWEEN 1 AND 63);
ALTER TABLE analytics_results DROP CONSTRAINT analytics_results_pkey;
ALTER TABLE analytics_results ADD CONSTRAINT analytics_results_pkey PRIMARY KEY (namespace, job_id);

-- +goose Down
-- One row per job id survives: the first namespace's.
DELETE FROM analytics_results a USING analytics_results b WHERE a.job_id = b.job_id AND a.namespace > b.namespace;
ALTER TABLE analytics_results DROP CONSTRAINT analytics_results_pkey;
ALTER TABLE analytics_results ADD CONSTRAINT analytics_results_pkey PRIMARY KEY (job_id);
ALTER TABLE analytics_results DROP CONSTRAINT analytics_results_namespace_length;
ALTER TABLE analytics_results DROP COLUMN namespace;
