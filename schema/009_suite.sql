-- ttfb-lab schema v9: the suite summary of an experiment over several workflows, written when the
-- experiment finishes (server/stats/suite.hpp: each workflow's verdict, the geometric-mean effect
-- with its interval, the verdicts that survive Holm's correction, a certified improvement).
-- NULL for experiments of one workflow, cancelled ones, bisections, calibrations, and those
-- finished before.

ALTER TABLE experiments ADD COLUMN suite jsonb CHECK (suite IS NULL OR jsonb_typeof(suite) = 'object');
