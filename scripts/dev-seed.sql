-- A demo user, organization, membership and session for scripts/dev (token `tok_dev`).
INSERT OR IGNORE INTO "user" VALUES ('dev', 'Dev', 'dev@example.com', 1, NULL, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
INSERT OR IGNORE INTO "organization" VALUES ('org_dev', 'Dev Org', 'dev-org', NULL, '2026-01-01T00:00:00.000Z', NULL);
INSERT OR IGNORE INTO "member" VALUES ('mem_dev', 'org_dev', 'dev', 'owner', '2026-01-01T00:00:00.000Z');
INSERT OR IGNORE INTO "session" VALUES ('ses_dev', '2099-01-01T00:00:00.000Z', 'tok_dev', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', NULL, NULL, 'dev', 'org_dev');
