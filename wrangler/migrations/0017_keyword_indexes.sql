-- Rendered from embeddings.toml by `cargo run -p client-types`; do not edit.
-- Each embedding table's keyword index (shared::keywords): an FTS5 table over its
-- embedded fields, kept in step by triggers, and filled from the rows already there.

DROP TRIGGER IF EXISTS "claims_keywords_insert";
DROP TRIGGER IF EXISTS "claims_keywords_delete";
DROP TRIGGER IF EXISTS "claims_keywords_update";
DROP TABLE IF EXISTS "claims_keywords";
CREATE VIRTUAL TABLE "claims_keywords" USING fts5("content", content='claims', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER "claims_keywords_insert" AFTER INSERT ON "claims" BEGIN
  INSERT INTO "claims_keywords"(rowid, "content") VALUES (new.rowid, new."content");
END;
CREATE TRIGGER "claims_keywords_delete" AFTER DELETE ON "claims" BEGIN
  INSERT INTO "claims_keywords"("claims_keywords", rowid, "content") VALUES ('delete', old.rowid, old."content");
END;
CREATE TRIGGER "claims_keywords_update" AFTER UPDATE OF "content" ON "claims" BEGIN
  INSERT INTO "claims_keywords"("claims_keywords", rowid, "content") VALUES ('delete', old.rowid, old."content");
  INSERT INTO "claims_keywords"(rowid, "content") VALUES (new.rowid, new."content");
END;
INSERT INTO "claims_keywords"("claims_keywords") VALUES ('rebuild');

DROP TRIGGER IF EXISTS "notes_keywords_insert";
DROP TRIGGER IF EXISTS "notes_keywords_delete";
DROP TRIGGER IF EXISTS "notes_keywords_update";
DROP TABLE IF EXISTS "notes_keywords";
CREATE VIRTUAL TABLE "notes_keywords" USING fts5("title", "body", content='notes', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER "notes_keywords_insert" AFTER INSERT ON "notes" BEGIN
  INSERT INTO "notes_keywords"(rowid, "title", "body") VALUES (new.rowid, new."title", new."body");
END;
CREATE TRIGGER "notes_keywords_delete" AFTER DELETE ON "notes" BEGIN
  INSERT INTO "notes_keywords"("notes_keywords", rowid, "title", "body") VALUES ('delete', old.rowid, old."title", old."body");
END;
CREATE TRIGGER "notes_keywords_update" AFTER UPDATE OF "title", "body" ON "notes" BEGIN
  INSERT INTO "notes_keywords"("notes_keywords", rowid, "title", "body") VALUES ('delete', old.rowid, old."title", old."body");
  INSERT INTO "notes_keywords"(rowid, "title", "body") VALUES (new.rowid, new."title", new."body");
END;
INSERT INTO "notes_keywords"("notes_keywords") VALUES ('rebuild');

DROP TRIGGER IF EXISTS "evidence_keywords_insert";
DROP TRIGGER IF EXISTS "evidence_keywords_delete";
DROP TRIGGER IF EXISTS "evidence_keywords_update";
DROP TABLE IF EXISTS "evidence_keywords";
CREATE VIRTUAL TABLE "evidence_keywords" USING fts5("content", content='evidence', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER "evidence_keywords_insert" AFTER INSERT ON "evidence" BEGIN
  INSERT INTO "evidence_keywords"(rowid, "content") VALUES (new.rowid, new."content");
END;
CREATE TRIGGER "evidence_keywords_delete" AFTER DELETE ON "evidence" BEGIN
  INSERT INTO "evidence_keywords"("evidence_keywords", rowid, "content") VALUES ('delete', old.rowid, old."content");
END;
CREATE TRIGGER "evidence_keywords_update" AFTER UPDATE OF "content" ON "evidence" BEGIN
  INSERT INTO "evidence_keywords"("evidence_keywords", rowid, "content") VALUES ('delete', old.rowid, old."content");
  INSERT INTO "evidence_keywords"(rowid, "content") VALUES (new.rowid, new."content");
END;
INSERT INTO "evidence_keywords"("evidence_keywords") VALUES ('rebuild');
