-- Organization API keys, the second way in (`Authorization: Bearer emb_...`), and backfills.
--
-- Only a key's SHA-256 is kept; the key itself is shown once, when it is created. A key belongs
-- to one organization and acts with one role; a revoked key stays for the record.

CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT NOT NULL PRIMARY KEY,
  organization_id TEXT NOT NULL,
  name TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  created_by TEXT NOT NULL,               -- the user who created it
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);

CREATE INDEX IF NOT EXISTS api_keys_org_idx ON api_keys (organization_id, created_at);

-- The backfill a job was enqueued by, if any: GET /api/v1/embeddings/jobs?backfillId=... shows
-- a backfill's progress.
ALTER TABLE embedding_jobs ADD COLUMN backfill_id TEXT;
CREATE INDEX IF NOT EXISTS embedding_jobs_backfill_idx
  ON embedding_jobs (organization_id, backfill_id, created_at);
