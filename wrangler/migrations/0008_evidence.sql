-- The third example table of embeddings.toml: evidence, shaped like claims but kept in
-- Vectorize (binding VECTORIZE_768), so that both search backends run side by side. Record ids
-- are unique within an organization (see 0009).

CREATE TABLE IF NOT EXISTS evidence (
  id TEXT NOT NULL,
  organization_id TEXT NOT NULL,
  story_id TEXT,
  content TEXT NOT NULL,
  embedding TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (organization_id, id)
);

CREATE INDEX IF NOT EXISTS evidence_org_story_idx ON evidence (organization_id, story_id);
