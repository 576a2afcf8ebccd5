-- The sweep (consumer-worker/src/sweep.rs) looks for jobs left open, oldest first, across every
-- organization: a small index of the open jobs alone serves it.
CREATE INDEX IF NOT EXISTS embedding_jobs_open_idx
  ON embedding_jobs (updated_at) WHERE status IN ('queued', 'processing');
