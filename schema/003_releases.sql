-- ttfb-lab schema v3: release gates and bisections (server/scheduler/releases.hpp, bisections.hpp).
-- A release gate measures base vs candidate over the repository's workflows (an experiment with
-- purpose 'release'); a blocked gate starts one bisection per regressed workflow. A bisection's
-- measurements are jobs of an experiment with purpose 'bisect' (stage 'probe': one commit per job).

ALTER TABLE jobs DROP CONSTRAINT jobs_stage_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_stage_check
  CHECK (stage IN ('block', 'confirmation', 'calibration', 'probe'));

CREATE TABLE releases (
  id                bigserial PRIMARY KEY,
  name              text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$'),
  repo              text NOT NULL,
  base_ref          text NOT NULL,
  base_commit       text NOT NULL CHECK (base_commit ~ '^[0-9a-f]{40}$'),
  candidate_ref     text NOT NULL,
  candidate_commit  text NOT NULL CHECK (candidate_commit ~ '^[0-9a-f]{40}$'),
  workflows         text[] NOT NULL,
  owner             text NOT NULL DEFAULT '',
  owner_email       text NOT NULL DEFAULT '',
  experiment_id     bigint NOT NULL REFERENCES experiments (id),
  status            text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'passed', 'blocked', 'error', 'cancelled')),
  reason            text NOT NULL DEFAULT '',
  created_by        text NOT NULL DEFAULT '',   -- the token's name
  created_at        timestamptz NOT NULL DEFAULT now(),
  decided_at        timestamptz
);
CREATE INDEX releases_pending_idx ON releases (id) WHERE status = 'pending';
CREATE INDEX releases_repo_idx ON releases (repo, id);

CREATE TABLE bisections (
  id                  bigserial PRIMARY KEY,
  repo                text NOT NULL,
  workflow            text NOT NULL,
  good_ref            text NOT NULL,
  good_commit         text NOT NULL CHECK (good_commit ~ '^[0-9a-f]{40}$'),
  bad_ref             text NOT NULL,
  bad_commit          text NOT NULL CHECK (bad_commit ~ '^[0-9a-f]{40}$'),
  release_id          bigint REFERENCES releases (id) ON DELETE SET NULL,
  experiment_id       bigint NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  -- The end points' runs are taken from this experiment's workflow (the release gate's own
  -- measurement of base vs candidate), so a gate's bisection does not measure its ends again.
  seed_experiment_id  bigint REFERENCES experiments (id),
  commits             jsonb NOT NULL,   -- [{sha, subject, author, email, date}], index 0 = good
  options             jsonb NOT NULL,   -- the search's options and design, frozen at creation
  status              text NOT NULL DEFAULT 'verifying'
                      CHECK (status IN ('verifying', 'searching', 'found', 'no_regression', 'broken', 'error', 'cancelled')),
  message             text NOT NULL DEFAULT '',
  -- One entry per round: {round, requests: [{commit, runs}], jobs: [{id, commit}], started_at,
  -- finished_at}. Replaying the rounds' runs through the search rebuilds its state exactly.
  steps               jsonb NOT NULL DEFAULT '[]',
  result              jsonb,
  requested_by        text NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL DEFAULT now(),
  finished_at         timestamptz
);
CREATE INDEX bisections_active_idx ON bisections (id) WHERE status IN ('verifying', 'searching');
CREATE INDEX bisections_repo_idx ON bisections (repo, id);
-- A gate bisects each regressed workflow once.
CREATE UNIQUE INDEX bisections_one_per_release_workflow ON bisections (release_id, workflow) WHERE release_id IS NOT NULL;
