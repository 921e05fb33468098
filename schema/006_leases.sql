-- ttfb-lab schema v6: fenced leases.
-- A worker's identity is its token's name (the server no longer believes the name in a request
-- body), and each claim gets a random lease id that every later write of the job presents with
-- its attempt: a second process under the same name, or a stale worker whose lease expired and
-- was given to another, is refused (409) instead of writing samples into someone else's job.
-- The id is a secret between the server and the lease holder: no read endpoint shows it.

ALTER TABLE jobs ADD COLUMN lease_id text;

-- Jobs running during the upgrade were claimed without an id (NULL matches no presented id):
-- their workers' writes are refused and the jobs go back to the queue when their leases expire.
