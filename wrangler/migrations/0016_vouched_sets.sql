-- When a worker configured for a building set last vouched for it (`shared::sets::table`,
-- "Rolling deploys"): a worker of another config gives the change up only once nobody has for
-- a lease, so that old and new workers running side by side do not undo each other's changes.
-- Sets start unvouched: one a config no longer names is given up as soon as before.
ALTER TABLE embedding_sets ADD COLUMN vouched_at INTEGER NOT NULL DEFAULT 0;
