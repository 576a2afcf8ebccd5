-- A search's catch-up reads a set's rows since a `seq`: their codes and metadata, and the exact
-- vector only of a row without codes. This index holds all a catch-up reads of the other rows,
-- so that SQLite reads its entries (about 650 bytes a row at 384 dimensions) and not the rows
-- themselves, each with a 1.5 KB vector beside them. It replaces the index of 0012 on the same
-- leading columns.
CREATE INDEX IF NOT EXISTS embedding_vectors_catch_up_idx
  ON embedding_vectors (organization_id, table_name, model, location, seq, record_id, codes,
      metadata);
DROP INDEX IF EXISTS embedding_vectors_set_seq_idx;
