-- The example embedding table of embeddings.toml: claims, embedded on `content`, with
-- `story_id` as filterable metadata. `embedding` holds the vector as a JSON array.

CREATE TABLE IF NOT EXISTS claims (
  id TEXT NOT NULL PRIMARY KEY,
  organization_id TEXT NOT NULL,
  story_id TEXT,
  content TEXT NOT NULL,
  embedding TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS claims_org_idx ON claims (organization_id, id);
CREATE INDEX IF NOT EXISTS claims_org_story_idx ON claims (organization_id, story_id);
