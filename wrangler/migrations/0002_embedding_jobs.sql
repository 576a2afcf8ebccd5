-- One row per accepted embedding job. Every row reaches a final status (done, skipped, stale,
-- dead, failed); `queued` and `processing` are the only open ones. Times are Unix milliseconds.

CREATE TABLE IF NOT EXISTS embedding_jobs (
  id TEXT NOT NULL PRIMARY KEY,            -- UUID, also the queue message's jobId
  organization_id TEXT NOT NULL,           -- the tenant; every read is scoped by it
  table_name TEXT,                         -- embedding table, when the job is bound to a record
  record_id TEXT,
  model TEXT NOT NULL,
  content TEXT NOT NULL,                   -- kept so a dead job can be replayed as it was
  content_hash TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'skipped', 'stale', 'dead', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,     -- deliveries to the consumer
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  completed_at INTEGER,
  CHECK ((table_name IS NULL) = (record_id IS NULL))
);

CREATE INDEX IF NOT EXISTS embedding_jobs_org_status_idx
  ON embedding_jobs (organization_id, status, created_at);
CREATE INDEX IF NOT EXISTS embedding_jobs_record_idx
  ON embedding_jobs (organization_id, table_name, record_id);
