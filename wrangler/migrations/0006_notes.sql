-- The second example table of embeddings.toml: notes, embedded on title and body with the
-- 384-dimension bge-small model, `topic` as filterable metadata.

CREATE TABLE IF NOT EXISTS notes (
  id TEXT NOT NULL PRIMARY KEY,
  organization_id TEXT NOT NULL,
  topic TEXT,
  title TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL DEFAULT '',
  embedding TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS notes_org_idx ON notes (organization_id, id);
