-- Where each stored vector is kept for search: `d1`, or `vectorize:` and the binding of the
-- Vectorize index. D1 now keeps a copy of every vector (Vectorize tables included), and it is
-- the truth a Vectorize index is brought in line with: when a table moves to another backend
-- or index, its vectors are copied there from D1 with no AI call, and a record deleted or
-- changed in D1 is deleted or changed in the index from the row here, whatever the order in
-- which concurrent writers reach Vectorize.
ALTER TABLE embedding_vectors ADD COLUMN location TEXT NOT NULL DEFAULT 'd1';

-- Vectorize answers with vector ids; search maps them to records (and their current metadata)
-- through this index.
CREATE INDEX IF NOT EXISTS embedding_vectors_vector_id_idx
  ON embedding_vectors (organization_id, table_name, vector_id);
