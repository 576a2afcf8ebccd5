//! local-vectorize against Vectorize's rules, through its REST API: the stand-in runs in-process
//! on a free port. One test binary, a module per feature.

#[path = "local_vectorize/support.rs"]
mod support;

#[path = "local_vectorize/bodies.rs"]
mod bodies;
#[path = "local_vectorize/filters.rs"]
mod filters;
#[path = "local_vectorize/indexes.rs"]
mod indexes;
#[path = "local_vectorize/limits.rs"]
mod limits;
#[path = "local_vectorize/metadata_indexes.rs"]
mod metadata_indexes;
#[path = "local_vectorize/namespaces.rs"]
mod namespaces;
#[path = "local_vectorize/persistence.rs"]
mod persistence;
#[path = "local_vectorize/scores.rs"]
mod scores;
#[path = "local_vectorize/visibility.rs"]
mod visibility;
#[path = "local_vectorize/writes.rs"]
mod writes;
