//! The store over D1.

use worker::{D1Database, Env};
use worker_kit::Fault;

use crate::ports::Store;

/// The D1 database shared by the three workers.
pub(crate) const DB: &str = "DB";

pub(crate) fn store(env: &Env) -> worker::Result<D1Store> {
    Ok(D1Store(env.d1(DB)?))
}

#[derive(Debug)]
pub(crate) struct D1Store(D1Database);

impl Store for D1Store {
    async fn ping(&self) -> Result<(), Fault> {
        self.0
            .prepare("SELECT 1 AS one")
            .first::<serde_json::Value>(None)
            .await?;
        Ok(())
    }
}
