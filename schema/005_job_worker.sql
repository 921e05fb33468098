-- ttfb-lab schema v5: the worker that last held a job, kept after the job ends.
-- lease_owner is the live lease and is cleared when a job finishes, fails or is requeued; the
-- queue on the dashboard (GET /api/v1/jobs, field `worker`) still wants to say who ran a
-- finished job, and who held a failed one when it failed.

ALTER TABLE jobs ADD COLUMN last_worker text;

-- Jobs that ended before this migration: the worker that reported their last sample.
UPDATE jobs j SET last_worker = s.worker
FROM (SELECT DISTINCT ON (job_id) job_id, worker FROM samples ORDER BY job_id, id DESC) s
WHERE s.job_id = j.id;
