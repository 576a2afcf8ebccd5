-- The D1 backend's search copy of each vector: eight bits a dimension with a bound on the error
-- (`shared::quantized`), as base64 text. An isolate loads a table from these, a quarter of the
-- exact vectors' bytes, and scores its shortlist with the exact ones. NULL where the vector is
-- (a tombstone) and on rows written before this column: search-worker then reads the exact
-- vector and makes the codes itself.
ALTER TABLE embedding_vectors ADD COLUMN codes TEXT;
