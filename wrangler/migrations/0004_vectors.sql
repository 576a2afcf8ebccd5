-- Where vectors are kept for search, and what the consumer needs to stay right under
-- at-least-once, out-of-order delivery.
--
-- One row per embedded record. For a table on the D1 backend, `vector` holds the vector as
-- little-endian f32s (4 bytes a dimension), searched exactly by search-worker; for a table on
-- Vectorize it is NULL and the row only records the version. `job_id` and `job_created_at` say
-- which job wrote it: an older job never replaces it. `seq` grows with every write within an
-- organization and table, so a search cache can fetch only what changed since it last looked.

CREATE TABLE IF NOT EXISTS embedding_vectors (
  organization_id TEXT NOT NULL,
  table_name TEXT NOT NULL,
  record_id TEXT NOT NULL,
  vector_id TEXT NOT NULL,                 -- the Vectorize id, at most 64 bytes
  model TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  vector BLOB,
  metadata TEXT NOT NULL DEFAULT '{}',     -- the configured metadata fields, as a JSON object
  job_id TEXT NOT NULL,
  job_created_at INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (organization_id, table_name, record_id)
);

CREATE INDEX IF NOT EXISTS embedding_vectors_seq_idx
  ON embedding_vectors (organization_id, table_name, seq);

-- A job whose content was cut to the model's input limit says so.
ALTER TABLE embedding_jobs ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
-- The vector of a job not bound to a record, compact like the above, for the job route.
ALTER TABLE embedding_jobs ADD COLUMN vector BLOB;
