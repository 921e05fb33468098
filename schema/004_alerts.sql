-- ttfb-lab schema v4: the alert outbox (server/alerts/outbox.hpp, dispatcher.hpp; docs/alerts.md).
-- An alert is written in the same transaction as the verdict it reports, one row per channel and
-- target; the dispatcher delivers it later. Delivery is at most once: a row is marked 'sending'
-- and committed before anything is sent, and a row left in 'sending' by a server that died is
-- marked 'unknown', never sent again.

CREATE TABLE alerts (
  id               bigserial PRIMARY KEY,
  kind             text NOT NULL CHECK (kind IN ('presubmit_regression', 'culprit', 'release_blocked')),
  repo             text NOT NULL,
  change           text NOT NULL CHECK (change <> ''),   -- "experiment:12", "commit:<sha>", "release:v1.1"
  workflow         text NOT NULL DEFAULT '',
  channel          text NOT NULL CHECK (channel IN ('webhook', 'email')),
  -- Whom it goes to: the recipient's address for e-mail, the webhook URL with its path and query
  -- hidden for webhooks (they often hold a secret). URLs and credentials are taken from the
  -- configuration at delivery time and never stored.
  target           text NOT NULL,
  recipient_name   text NOT NULL DEFAULT '',
  recipient_email  text NOT NULL DEFAULT '',
  title            text NOT NULL,
  text             text NOT NULL,               -- Slack-compatible message text
  url              text NOT NULL DEFAULT '',    -- dashboard link
  fields           jsonb NOT NULL DEFAULT '{}', -- structured fields, copied into the webhook JSON
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'unknown')),
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
  last_error       text NOT NULL DEFAULT '',
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  claimed_at       timestamptz,                 -- when the attempt in flight began ('sending')
  timeout_seconds  integer NOT NULL DEFAULT 0,  -- that attempt's channel timeout: 'sending' longer than this + 30 s is 'unknown'
  created_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  CHECK (status <> 'sending' OR claimed_at IS NOT NULL),
  -- One alert per change, workflow and destination: a verdict analysed twice alerts once.
  CONSTRAINT alerts_dedup UNIQUE (kind, change, workflow, channel, target)
);
CREATE INDEX alerts_due_idx ON alerts (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX alerts_sending_idx ON alerts (claimed_at) WHERE status = 'sending';
CREATE INDEX alerts_repo_idx ON alerts (repo, id);
