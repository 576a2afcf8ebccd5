//! The local-vectorize server. `local-vectorize --help` lists the options.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use local_vectorize::{serve, Settings};

/// A native stand-in for Cloudflare Vectorize (v2).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 8791)]
    port: u16,
    /// Keep indexes and vectors in DIR across restarts [default: memory only]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// How long after it is accepted a mutation becomes visible to queries, getByIds and info,
    /// in milliseconds (Vectorize takes seconds)
    #[arg(long, default_value_t = 0)]
    visibility_delay_ms: u64,
}

fn main() {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("the async runtime starts");
    if let Err(e) = runtime.block_on(run(args)) {
        tracing::error!(error = %e, "local-vectorize stopped");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let settings = Settings {
        data_dir: args.data_dir,
        visibility_delay: Duration::from_millis(args.visibility_delay_ms),
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port)).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        data_dir = ?settings.data_dir,
        visibility_delay_ms = args.visibility_delay_ms,
        "local-vectorize listening"
    );
    serve(listener, settings, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
