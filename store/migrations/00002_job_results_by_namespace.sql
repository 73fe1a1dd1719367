-- Job ids are CR names, unique only within a namespace: the history of finished jobs is keyed by
-- both, so two namespaces that share this database never overwrite each other's jobs.

-- +goose Up
ALTER TABLE job_results DROP CONSTRAINT job_results_pkey;
ALTER TABLE job_results ADD CONSTRAINT job_results_pkey PRIMARY KEY (namespace, job_id);

-- +goose Down
ALTER TABLE job_results DROP CONSTRAINT job_results_pkey;
ALTER TABLE job_results ADD CONSTRAINT job_results_pkey PRIMARY KEY (job_id);
