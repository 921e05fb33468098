-- ttfb-lab schema v2: the adaptive engine (server/stats/adaptive.hpp, calibration.hpp).
-- An experiment's workflow is now measured in blocks (one job each) until the sequential test
-- decides, then confirmed by an independent batch; A/A calibrations set each workflow's threshold.

-- Which part of a workflow's measurement a job is: a block of the adaptive test, the
-- confirmation rerun, or an A/A batch of a calibration. `analysed` marks jobs whose outcome the
-- scheduler has taken into account; `avoid_workers` asks that the job run elsewhere when another
-- live worker can take it (confirmation reruns on other workers).
ALTER TABLE jobs
  ADD COLUMN stage text NOT NULL DEFAULT 'block' CHECK (stage IN ('block', 'confirmation', 'calibration')),
  ADD COLUMN block integer NOT NULL DEFAULT 1 CHECK (block >= 1),
  ADD COLUMN avoid_workers text[] NOT NULL DEFAULT '{}',
  ADD COLUMN analysed boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_unanalysed_idx ON jobs (experiment_id, workflow) WHERE NOT analysed;

-- Where a workflow of an experiment stands: measuring (blocks), confirming (rerun queued or
-- running) or done (verdict final). `looks` keeps every look's decision, for people and the UI.
ALTER TABLE experiment_workflows
  ADD COLUMN state text NOT NULL DEFAULT 'measuring' CHECK (state IN ('measuring', 'confirming', 'done')),
  ADD COLUMN looks jsonb NOT NULL DEFAULT '[]';
UPDATE experiment_workflows SET state = 'done' WHERE verdict IS NOT NULL;

CREATE TABLE calibrations (
  id             bigserial PRIMARY KEY,
  workflow       text NOT NULL,
  experiment_id  bigint NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  trigger        text NOT NULL CHECK (trigger IN ('manual', 'stale')),
  requested_by   text NOT NULL DEFAULT '',
  status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'error', 'cancelled')),
  sigma_aa_pct   double precision,
  k              double precision,
  threshold_pct  double precision,
  result         jsonb,        -- stats::to_json(Calibration): FPR, power, ROC points, settings
  error          jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);
CREATE INDEX calibrations_workflow_idx ON calibrations (workflow, id DESC);
-- At most one calibration of a workflow runs at a time.
CREATE UNIQUE INDEX calibrations_one_running ON calibrations (workflow) WHERE status = 'running';
