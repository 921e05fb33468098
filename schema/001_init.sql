-- ttfb-lab schema v1: tokens, workers, experiments, their workflows, jobs with leases, samples.
-- Applied by the server at start-up in one transaction and recorded in schema_migrations.

CREATE TABLE tokens (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL,
  token_hash  text NOT NULL UNIQUE,            -- hex SHA-256 of the secret; the secret is never stored
  scopes      text[] NOT NULL CHECK (scopes <@ ARRAY['submit', 'worker', 'admin']::text[]),
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

CREATE TABLE workers (
  name        text PRIMARY KEY,
  host        text NOT NULL DEFAULT '',
  cpu_model   text NOT NULL DEFAULT '',
  kernel      text NOT NULL DEFAULT '',
  cores       integer NOT NULL DEFAULT 0,
  version     text NOT NULL DEFAULT '',
  first_seen  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE experiments (
  id                bigserial PRIMARY KEY,
  repo              text NOT NULL,
  purpose           text NOT NULL DEFAULT 'presubmit'
                    CHECK (purpose IN ('presubmit', 'release', 'bisect', 'calibration')),
  base_ref          text NOT NULL,
  base_commit       text NOT NULL CHECK (base_commit ~ '^[0-9a-f]{40}$'),
  candidate_ref     text,
  candidate_commit  text NOT NULL CHECK (candidate_commit ~ '^[0-9a-f]{40}$'),
  diff              text NOT NULL DEFAULT '',
  diff_sha256       text NOT NULL DEFAULT '',
  author            text NOT NULL DEFAULT '',
  title             text NOT NULL DEFAULT '',
  change_url        text NOT NULL DEFAULT '',
  submitted_by      text NOT NULL DEFAULT '',   -- the token's name
  status            text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'error', 'cancelled')),
  verdict           text CHECK (verdict IN ('regression', 'improvement', 'no_change', 'inconclusive', 'error')),
  error             jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz
);
CREATE INDEX experiments_status_idx ON experiments (status, id);
CREATE INDEX experiments_repo_idx ON experiments (repo, id);

-- One row per workflow of an experiment: the workflow as it was configured at submission (so a
-- later config change does not rewrite history) and its result once analysed.
CREATE TABLE experiment_workflows (
  experiment_id  bigint NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  workflow       text NOT NULL,
  config         jsonb NOT NULL,
  verdict        text CHECK (verdict IN ('regression', 'improvement', 'no_change', 'inconclusive', 'error')),
  result         jsonb,
  PRIMARY KEY (experiment_id, workflow)
);

CREATE TABLE jobs (
  id                bigserial PRIMARY KEY,
  experiment_id     bigint NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  workflow          text NOT NULL,
  state             text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  priority          integer NOT NULL DEFAULT 0,   -- higher first
  attempt           integer NOT NULL DEFAULT 0,   -- incremented by each claim
  max_attempts      integer NOT NULL DEFAULT 3,
  lease_owner       text,
  lease_expires_at  timestamptz,
  payload           jsonb NOT NULL,               -- repo, workflow, arms, schedule (docs/worker-protocol.md)
  runs_total        integer NOT NULL,             -- measured + warm-up runs in the schedule
  runs_done         integer NOT NULL DEFAULT 0,
  error             jsonb,
  history           jsonb NOT NULL DEFAULT '[]',  -- requeues and failures, for people debugging
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  CHECK ((state = 'running') = (lease_owner IS NOT NULL))
);
CREATE INDEX jobs_queue_idx ON jobs (priority DESC, id) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_experiment_idx ON jobs (experiment_id);

CREATE TABLE samples (
  id             bigserial PRIMARY KEY,
  job_id         bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  experiment_id  bigint NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  workflow       text NOT NULL,
  run_index      integer NOT NULL,
  arm            text NOT NULL CHECK (arm IN ('baseline', 'candidate')),
  warmup         boolean NOT NULL DEFAULT false,
  ttfb_ms        double precision NOT NULL CHECK (ttfb_ms > 0),
  phases         jsonb NOT NULL DEFAULT '[]',
  cpu_ms         double precision,
  max_rss_kb     bigint,
  wall_ms        double precision,
  exit_status    integer,
  signal         integer,
  worker         text NOT NULL,
  host           jsonb NOT NULL DEFAULT '{}',
  attempt        integer NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (job_id, run_index)                     -- a retried report never duplicates
);
CREATE INDEX samples_experiment_idx ON samples (experiment_id, workflow);
