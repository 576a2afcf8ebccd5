-- The third example table of embeddings.toml: evidence, shaped like claims but kept in
-- Vectorize (binding VECTORIZE_768), so that both search backends run side by side.

CREATE TABLE IF NOT EXISTS evidence (
  id TEXT NOT NULL PRIMARY KEY,
  organization_id TEXT NOT NULL,
  story_id TEXT,
  content TEXT NOT NULL,
  embedding TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS evidence_org_idx ON evidence (organization_id, id);
CREATE INDEX IF NOT EXISTS evidence_org_story_idx ON evidence (organization_id, story_id);
