//! The local-ai server. `local-ai --help` lists the options.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use local_ai::batcher::{BatchPolicy, Batcher};
use local_ai::catalogue::Catalogue;
use local_ai::faults::{FaultPlan, Faults};
use local_ai::server::{router, AppState};
use local_ai::stats::Stats;

// Every forward pass allocates and frees tensors of tens of megabytes; glibc returns those to the
// kernel each time, and the page faults of getting them back cost more than the arithmetic.
// mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A native stand-in for Workers AI text embeddings.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 8790)]
    port: u16,
    /// The default weights, which stand in for every @cf/baai/bge-* name [default: the directory
    /// scripts/setup fills]
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Serve MODEL with the real weights in DIR (BERT safetensors, config.json, tokenizer.json,
    /// `1_Pooling/config.json`); repeatable
    #[arg(long = "serve", value_name = "MODEL=DIR", value_parser = parse_serve)]
    serve: Vec<(String, PathBuf)>,
    /// Most texts in one forward pass
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    /// How long a request waits for others to share its forward pass, in milliseconds. At 0 it
    /// does not wait: what is queued when a pass starts shares it, and requests that arrive while
    /// it runs share the next, so batching under load costs an idle request nothing.
    #[arg(long, default_value_t = 0)]
    batch_window_ms: u64,
    /// Share of calls (0 to 1) answered with an injected failure
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Statuses of injected failures
    #[arg(long, value_delimiter = ',', default_value = "500,429")]
    fail_status: Vec<u16>,
    /// Delay added to a share of calls, in milliseconds
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Share of calls (0 to 1) that get the delay
    #[arg(long, default_value_t = 1.0)]
    delay_rate: f64,
    /// Seed of the fault draws, so that a run repeats
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_serve(value: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = value.split_once('=').ok_or("expected MODEL=DIR")?;
    Ok((name.to_owned(), PathBuf::from(dir)))
}

fn main() {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .init();
    tune_for_throughput();
    let runtime = tokio::runtime::Runtime::new().expect("the async runtime starts");
    runtime.block_on(run());
}

/// `mi_option_purge_delay` is the 16th option of `mi_option_e` in the mimalloc 3 that
/// libmimalloc-sys builds (mimalloc.h); the Rust bindings do not name it, so its default
/// (1000 ms) is checked before it is changed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// One rayon pool of every core, shared by passes and by the kernels inside them: the batcher
/// runs passes side by side on it, and each pass splits its products and kernels into one task
/// per core, which another core takes only when it is idle ([`local_ai::kernels`]). candle's own
/// ops (a few small element-wise ones) would split themselves by `RAYON_NUM_THREADS` too, which
/// on BERT's small tensors spends more time waking threads than computing: the pool is built with
/// every core first and the variable set to 1 after.
fn tune_for_throughput() {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build_global()
        .is_ok()
    {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    // Never hand freed memory back to the kernel: every forward pass reuses tens of megabytes.
    // SAFETY: reads and sets a mimalloc option; both calls take plain integers.
    #[allow(unsafe_code)]
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == 1000 {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        } else {
            let found = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
            tracing::warn!(
                found,
                "mimalloc purge delay option is not where expected; leaving it"
            );
        }
    }
}

async fn run() {
    let args = Args::parse();
    if let Err(e) = serve(args).await {
        tracing::error!(error = %e, "local-ai stopped");
        std::process::exit(1);
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(status) = args.fail_status.iter().find(|s| !(400..600).contains(*s)) {
        return Err(format!("--fail-status takes 4xx and 5xx statuses, not {status}").into());
    }
    for rate in [args.fail_rate, args.delay_rate] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("rates are shares from 0 to 1, not {rate}").into());
        }
    }
    let model_dir = args.model_dir.unwrap_or_else(local_ai::default_model_dir);
    let catalogue = Catalogue::load(&model_dir, &args.serve)
        .map_err(|e| format!("{e} (scripts/setup fetches the default model)"))?;
    for served in catalogue.iter() {
        match &served.stand_in {
            Some(note) => tracing::warn!(model = %served.name, "{note}"),
            None => {
                tracing::info!(model = %served.name, weights = %served.encoder.label, "served with its own weights");
            }
        }
    }
    let stats = Arc::new(Stats::default());
    let faults = Faults::new(
        FaultPlan {
            fail_rate: args.fail_rate,
            fail_statuses: args.fail_status,
            delay_rate: args.delay_rate,
            delay: Duration::from_millis(args.delay_ms),
        },
        args.seed,
    );
    if faults.is_active() {
        tracing::warn!(
            fail_rate = args.fail_rate,
            delay_ms = args.delay_ms,
            seed = args.seed,
            "fault injection on"
        );
    }
    let policy = BatchPolicy {
        max_batch: args.max_batch.max(1),
        window: Duration::from_millis(args.batch_window_ms),
    };
    let app = AppState {
        catalogue: Arc::new(catalogue),
        batcher: Batcher::start(policy, Arc::clone(&stats)),
        stats,
        faults: Arc::new(faults),
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "local-ai listening");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
