-- Record ids are unique within an organization, not across them. With a global primary key,
-- organization B creating `clm_1` was told "a record `clm_1` already exists" when A owned it:
-- an existence oracle across tenants, and a way to squat ids another tenant has not used yet.
-- SQLite cannot change a primary key in place, so each example table is rebuilt with
-- (organization_id, id) as its key, its rows copied over. An app's own embedding tables should
-- be keyed the same way (docs/config.md).

CREATE TABLE claims_by_organization (
  id TEXT NOT NULL,
  organization_id TEXT NOT NULL,
  story_id TEXT,
  content TEXT NOT NULL,
  embedding TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (organization_id, id)
);
INSERT INTO claims_by_organization (id, organization_id, story_id, content, embedding, created_at, updated_at)
  SELECT id, organization_id, story_id, content, embedding, created_at, updated_at FROM claims;
DROP TABLE claims;
ALTER TABLE claims_by_organization RENAME TO claims;
CREATE INDEX IF NOT EXISTS claims_org_story_idx ON claims (organization_id, story_id);

CREATE TABLE notes_by_organization (
  id TEXT NOT NULL,
  organization_id TEXT NOT NULL,
  topic TEXT,
  title TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL DEFAULT '',
  embedding TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (organization_id, id)
);
INSERT INTO notes_by_organization (id, organization_id, topic, title, body, embedding, created_at, updated_at)
  SELECT id, organization_id, topic, title, body, embedding, created_at, updated_at FROM notes;
DROP TABLE notes;
ALTER TABLE notes_by_organization RENAME TO notes;
