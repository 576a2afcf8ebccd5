//! Serving: the router on a listener, and the ticker that applies mutations as they become
//! visible. The binary and the tests start the stand-in the same way, through [`serve`].

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::router;
use crate::catalog::{Catalog, Settings};

/// How often the ticker applies what became visible. Reads apply it too, so this only keeps the
/// logs and `/stats` current between reads.
const TICK: Duration = Duration::from_millis(10);

/// Opens the data directory and serves on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let delayed = !settings.visibility_delay.is_zero();
    // Reading an index back replays its log: blocking file work.
    let catalog = tokio::task::spawn_blocking(move || Catalog::open(settings))
        .await
        .map_err(io::Error::other)??;
    let catalog = Arc::new(catalog);
    let ticker = delayed.then(|| {
        let catalog = Arc::clone(&catalog);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            loop {
                interval.tick().await;
                let catalog = Arc::clone(&catalog);
                let _ = tokio::task::spawn_blocking(move || catalog.catch_up()).await;
            }
        })
    });
    let served = axum::serve(listener, router(catalog))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    served
}
