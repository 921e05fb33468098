-- ttfb-lab schema v8: experiments whose candidate differs by its runtime, not (only) its code.
-- candidate_runtime holds what the candidate arm runs differently from the baseline on the same
-- workflow revision: {"env": {NAME: value | null}, "command_prefix": [...], "interpreter": [...]}
-- (server/scheduler/plan.hpp, CandidateRuntime); {} for an experiment of a diff or revision alone.

ALTER TABLE experiments ADD COLUMN candidate_runtime jsonb NOT NULL DEFAULT '{}'::jsonb
  CHECK (jsonb_typeof(candidate_runtime) = 'object');
