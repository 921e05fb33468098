-- ttfb-lab schema v10: each workflow's footprint, the files of its repository that a run opened
-- (worker/footprint.hpp: for a run that stops at its first batch, what its start-up loaded),
-- from the first measured baseline run of its latest job on a plain commit (no diff applied).
-- Kept current by every such job; read to tell which workflows a pre-submit's diff can touch.

CREATE TABLE workflow_footprints (
  workflow     text PRIMARY KEY,
  base_commit  text NOT NULL CHECK (base_commit ~ '^[0-9a-f]{40}$'),
  files        text[] NOT NULL,
  job_id       bigint,
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
