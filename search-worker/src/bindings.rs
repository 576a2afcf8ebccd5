//! The real implementations of the ports, over the worker's bindings.

use worker::{D1Database, Env};
use worker_kit::d1::{self, DB};
use worker_kit::embedder::AnyEmbedder;
use worker_kit::Fault;

use crate::ports::{App, Store};

pub(crate) fn app(env: &Env) -> Result<App<D1Store, AnyEmbedder>, Fault> {
    Ok(App {
        store: D1Store(
            env.d1(DB)
                .map_err(|e| Fault(format!("binding `{DB}` is missing: {e}")))?,
        ),
        embedder: AnyEmbedder::from_env(env)?,
        config: worker_kit::config::config(),
    })
}

#[derive(Debug)]
pub(crate) struct D1Store(D1Database);

impl Store for D1Store {
    async fn ping(&self) -> Result<(), Fault> {
        d1::ping(&self.0).await
    }
}
