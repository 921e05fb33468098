-- ttfb-lab schema v7: CPU time to the first batch, and steal time, per run.
-- cpu_ms is the whole run's user + system time (its shutdown included); cpu_to_first_batch_ms is
-- the CPU time of all the workload's processes from its start to its first batch, read from the
-- run's cgroup as the first batch arrives: the second metric of a verdict. steal_ms is the time
-- the hypervisor ran something else on the run's CPUs during the run (/proc/stat), where the
-- kernel reports it. Both NULL for runs reported before, or by workers that cannot measure them.

ALTER TABLE samples ADD COLUMN cpu_to_first_batch_ms double precision CHECK (cpu_to_first_batch_ms >= 0);
ALTER TABLE samples ADD COLUMN steal_ms double precision CHECK (steal_ms >= 0);
