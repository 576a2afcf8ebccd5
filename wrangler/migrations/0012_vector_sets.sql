-- Model versions per table. A table's vectors are kept per *vector set*: one model's vectors
-- kept in one place (`d1`, or `vectorize:` and a binding). Each organization's table has one
-- `active` set, the one searches read whole, and while its model or index changes, one
-- `building` set that every write also goes to and a tracked backfill fills. The switch makes
-- the building set active in one transaction once it covers every live record of the active
-- one; the old set is then `retiring` until its rows are removed. A search never reads two sets.

CREATE TABLE IF NOT EXISTS embedding_sets (
  organization_id TEXT NOT NULL,
  table_name TEXT NOT NULL,
  model TEXT NOT NULL,
  location TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('active', 'building', 'retiring')),
  created_at INTEGER NOT NULL,           -- when the set was started (again): its generation
  updated_at INTEGER NOT NULL,           -- its last step (a backfill page, the switch, a clean-up)
  switched_at INTEGER,                   -- when it became active
  migration_id TEXT,                     -- the backfill id of the jobs that build it
  PRIMARY KEY (organization_id, table_name, model, location)
);

-- One active set, and at most one building, per organization and table: held by the database.
CREATE UNIQUE INDEX IF NOT EXISTS embedding_sets_active_idx
  ON embedding_sets (organization_id, table_name) WHERE role = 'active';
CREATE UNIQUE INDEX IF NOT EXISTS embedding_sets_building_idx
  ON embedding_sets (organization_id, table_name) WHERE role = 'building';

-- One row per record and set. SQLite cannot change a primary key in place, so the table is
-- rebuilt with its rows. Keyed by set first, so a set's rows are one range of the key.
CREATE TABLE embedding_vectors_by_set (
  organization_id TEXT NOT NULL,
  table_name TEXT NOT NULL,
  record_id TEXT NOT NULL,
  vector_id TEXT NOT NULL,
  model TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  vector BLOB,
  metadata TEXT NOT NULL DEFAULT '{}',
  job_id TEXT NOT NULL,
  job_created_at INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  location TEXT NOT NULL DEFAULT 'd1',
  PRIMARY KEY (organization_id, table_name, model, location, record_id)
);
INSERT INTO embedding_vectors_by_set (organization_id, table_name, record_id, vector_id, model,
    content_hash, vector, metadata, job_id, job_created_at, seq, updated_at, location)
  SELECT organization_id, table_name, record_id, vector_id, model, content_hash, vector, metadata,
      job_id, job_created_at, seq, updated_at, location
  FROM embedding_vectors;
DROP TABLE embedding_vectors;
ALTER TABLE embedding_vectors_by_set RENAME TO embedding_vectors;

-- `seq` grows with every write in an organization's table, across its sets.
CREATE INDEX IF NOT EXISTS embedding_vectors_seq_idx
  ON embedding_vectors (organization_id, table_name, seq);
-- A search's catch-up: one set's rows written since the cache last looked.
CREATE INDEX IF NOT EXISTS embedding_vectors_set_seq_idx
  ON embedding_vectors (organization_id, table_name, model, location, seq);
-- A record's rows in every set: a job's freshness, a delete's tombstones, a metadata edit.
CREATE INDEX IF NOT EXISTS embedding_vectors_record_idx
  ON embedding_vectors (organization_id, table_name, record_id);
CREATE INDEX IF NOT EXISTS embedding_vectors_vector_id_idx
  ON embedding_vectors (organization_id, table_name, vector_id);

-- The sets the stored vectors make up now: per organization and table, the set holding most
-- rows is active; any other (a table moved between backends before sets existed) is retiring.
INSERT INTO embedding_sets (organization_id, table_name, model, location, role, created_at,
    updated_at, switched_at)
  SELECT organization_id, table_name, model, location,
      CASE WHEN rank = 1 THEN 'active' ELSE 'retiring' END, first, last, first
  FROM (SELECT organization_id, table_name, model, location, MIN(updated_at) AS first,
            MAX(updated_at) AS last,
            ROW_NUMBER() OVER (PARTITION BY organization_id, table_name
                               ORDER BY COUNT(*) DESC, MAX(updated_at) DESC) AS rank
        FROM embedding_vectors GROUP BY organization_id, table_name, model, location)
  WHERE true
ON CONFLICT DO NOTHING;

-- The status route counts a table's jobs by status, and finds its oldest open job, from here.
CREATE INDEX IF NOT EXISTS embedding_jobs_table_status_idx
  ON embedding_jobs (organization_id, table_name, status, created_at);

-- The status route counts the records whose vector is current: those with no job still open.
CREATE INDEX IF NOT EXISTS embedding_jobs_open_record_idx
  ON embedding_jobs (organization_id, table_name, record_id)
  WHERE status IN ('queued', 'processing');
