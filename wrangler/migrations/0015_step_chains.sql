-- One chain of model-change steps per vector set (`shared::sets`, "One chain per set").
-- `step_seq` is the set's fencing counter: a step message carries the value it was issued for,
-- and runs only if it moves the counter on from that value in one statement. Each value is
-- claimed once, so duplicate deliveries, and the steps of everything that (re)starts a change,
-- merge into the one chain that wins. Sets start at 0, as do step messages sent before it.
ALTER TABLE embedding_sets ADD COLUMN step_seq INTEGER NOT NULL DEFAULT 0;
