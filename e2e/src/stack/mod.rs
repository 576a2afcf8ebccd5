//! The real local stack: local-ai and the Vectorize stand-in (its indexes created with
//! `scripts/local-indexes`, the way `scripts/deploy` creates them) on free ports, the wrangler
//! configs rendered for a local run (`scripts/local-config`), D1 migrations and seed data applied
//! with wrangler, then `wrangler dev` running api-worker, search-worker, consumer-worker and the
//! stand-in's binding worker in one process on free ports, with local D1 and Queues. Everything
//! lives in a temporary directory, and both process groups are stopped when the [`Stack`] is
//! dropped, whether the tests passed or not.
//!
//! [`Stack::restart_workers`] swaps the workers for ones built from another config (a
//! [`Variant`]) under the same state, the way a deploy of a config change meets live data.
//!
//! This module starts, restarts and stops the stack; its parts:
//! - `config`: the wrangler configs, rendered for a local run;
//! - `process`: commands run, process groups started, watched and stopped;
//! - `tenants`: the seeded users, organizations and sessions, and their cookies;
//! - `d1`: SQL against the stack's local D1;
//! - `logs`: what the processes printed, and the events the workers logged;
//! - `variant`: workers built from another embeddings config.

mod config;
mod d1;
mod logs;
mod process;
mod tenants;
mod variant;

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::client::Client;

use process::{free_port, path, repo_root, run_ok, stop, wrangler, wrangler_ok};
use tenants::seed_sql;
pub use tenants::Tenant;
pub use variant::Variant;

/// The Rust workers `wrangler dev` runs; a [`Variant`] replaces all three.
const WORKERS: [&str; 3] = ["api-worker", "search-worker", "consumer-worker"];

/// The log of the `wrangler dev` running the workers, which also names its process group.
const WORKERS_LOG: &str = "wrangler-dev.log";

/// The log of the `wrangler dev` running the platform's floor of the consumer's lines, which
/// also names its process group.
pub const FLOOR_PIPELINE_LOG: &str = "floor-pipeline.log";

/// How to start the stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Run the suite's custom pipeline (`e2e/pipeline`) in front of the gateway, so that tests
    /// can send queue messages of their own.
    pub pipeline: bool,
    /// The consumer's first retry delay, in seconds (its default is 2).
    pub retry_base_delay_seconds: Option<u32>,
    /// The consumer's `max_batch_size` on both lanes' queues (`embeddings-queue`,
    /// `embeddings-bulk`), instead of the config's 100.
    pub consumer_batch_size: Option<u32>,
    /// How long a Vectorize write takes to become visible, in milliseconds (production takes
    /// seconds; the stand-in's default is 0).
    pub vectorize_delay_ms: Option<u64>,
    /// Run the example application Worker (`example-app/`) too, in a second `wrangler dev` on
    /// its own port, bound to search-worker and the queue through the dev registry.
    pub example_app: bool,
    /// Run a platform's floor too (`bench/floor/`), in a `wrangler dev` of its own on the same
    /// local D1.
    pub floor: Option<Floor>,
}

/// A platform's floor: the least any implementation of this design does, in JavaScript, for
/// the benchmarks to time beside the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// Of a search: a minimal gateway and search worker (`gateway.js`, `search.js`).
    Search,
    /// Of the consumer's lines: a minimal producer and consumer on a queue of their own
    /// (`pipeline.js`).
    Pipeline,
}

/// A running local stack: its URLs, and what it needs to restart and stop its processes.
#[derive(Debug)]
pub struct Stack {
    /// The gateway (through the pipeline, when it runs).
    pub base_url: String,
    /// local-ai, for its `/stats` and `/faults`.
    pub local_ai_url: String,
    /// The Vectorize stand-in: its REST API and `/stats`.
    pub local_vectorize_url: String,
    /// The example app, when it runs.
    pub example_app_url: Option<String>,
    /// The platform's floor (`Options::floor`), when it runs.
    pub floor_url: Option<String>,
    dir: PathBuf,
    /// The rendered configs `wrangler dev` runs now (`config/`, or a variant's).
    config: Mutex<PathBuf>,
    /// The port `wrangler dev` serves on, kept across restarts.
    port: u16,
    options: Options,
    secret: String,
    /// Behind a lock, so that a test holding the stack by a shared handle can restart its
    /// workers (the suite runs one test at a time).
    processes: Mutex<Processes>,
}

/// The processes the stack started, in start order.
#[derive(Debug, Default)]
struct Processes {
    children: Vec<Child>,
    /// Each one's process group, by the log its output goes to.
    groups: Vec<(String, u32)>,
}

impl Stack {
    /// Applies the migrations, seeds users, organizations and sessions, starts `wrangler dev`
    /// and waits until the gateway reports itself healthy.
    pub fn start(options: Options) -> io::Result<Stack> {
        // Several stacks may run in one process (a test that restarts one starts its own).
        static STACKS: AtomicUsize = AtomicUsize::new(0);
        let root = repo_root();
        let dir = std::env::temp_dir().join(format!(
            "d1-embeddings-e2e-{}-{}",
            std::process::id(),
            STACKS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let mut stack = Stack {
            base_url: String::new(),
            local_ai_url: String::new(),
            local_vectorize_url: String::new(),
            example_app_url: None,
            floor_url: None,
            config: Mutex::new(dir.join("config")),
            dir,
            port: free_port()?,
            options,
            secret: format!("e2e-{}", uuid::Uuid::new_v4().simple()),
            processes: Mutex::default(),
        };

        stack.start_stand_ins(&root, options)?;
        let config = stack.config();
        stack.render_config(&root, &config, None)?;

        let persist = stack.dir.join("state");
        let api_config = config.join("api-worker.toml");
        let local = [
            "--local",
            "--persist-to",
            path(&persist),
            "-c",
            path(&api_config),
        ];
        wrangler_ok(&[&["d1", "migrations", "apply", "DB"][..], &local].concat())?;
        fs::write(stack.dir.join("seed.sql"), seed_sql())?;
        let seed = stack.dir.join("seed.sql");
        wrangler_ok(&[&["d1", "execute", "DB", "--file", path(&seed)][..], &local].concat())?;

        stack.base_url = format!("http://127.0.0.1:{}", stack.port);
        stack.start_workers(&root)?;
        if options.example_app {
            stack.start_example_app(&root)?;
        }
        if let Some(floor) = options.floor {
            stack.start_floor(&root, floor)?;
        }
        Ok(stack)
    }

    /// Starts a platform's floor (`bench/floor/`) in a `wrangler dev` of its own, on the same
    /// local D1 and its own dev registry (its workers are no one else's).
    fn start_floor(&mut self, root: &Path, floor: Floor) -> io::Result<()> {
        let dir = root.join("bench/floor");
        let (configs, log) = match floor {
            Floor::Search => (
                vec![
                    dir.join("floor-gateway.toml"),
                    dir.join("floor-search.toml"),
                ],
                "floor.log",
            ),
            Floor::Pipeline => (vec![dir.join("floor-pipeline.toml")], FLOOR_PIPELINE_LOG),
        };
        self.floor_url = Some(self.start_beside(root, "floor-registry", &configs, log)?);
        Ok(())
    }

    /// Starts the example app in a second `wrangler dev` on the same local D1, finding
    /// search-worker and the queue's consumer through the stack's dev registry.
    fn start_example_app(&mut self, root: &Path) -> io::Result<()> {
        let configs = [self.config().join("example-app.toml")];
        self.example_app_url =
            Some(self.start_beside(root, "registry", &configs, "example-app.log")?);
        Ok(())
    }

    /// Starts `configs` (the first one served) in a `wrangler dev` beside the workers', on a
    /// port of its own, the same local D1 and the dev registry `registry` of the stack's
    /// directory, and answers with its URL once it answers 200 at `/`.
    fn start_beside(
        &self,
        root: &Path,
        registry: &str,
        configs: &[PathBuf],
        log: &str,
    ) -> io::Result<String> {
        let port = free_port()?;
        let inspector = free_port()?;
        let mut dev = wrangler(root);
        dev.env("WRANGLER_REGISTRY_PATH", self.dir.join(registry))
            .args(["dev", "--ip", "127.0.0.1"])
            .args(["--show-interactive-dev-session=false"])
            .args(["--port", &port.to_string()])
            .args(["--inspector-port", &inspector.to_string()])
            .arg("--persist-to")
            .arg(self.dir.join("state"));
        for config in configs {
            dev.arg("-c").arg(config);
        }
        self.spawn(dev, log)?;
        let url = format!("http://127.0.0.1:{port}");
        self.wait_until_ready(&format!("{url}/"), log)?;
        Ok(url)
    }

    /// Restarts `wrangler dev` with the workers of `variant`, on the same port, local D1 state
    /// and dev registry, beside the same local-ai and Vectorize stand-in (whose indexes for the
    /// variant's config are created first). Its configs are rendered afresh with the same
    /// secret and URLs in `.dev.vars`, so that the seeded sessions' cookies still sign in.
    /// Nothing is migrated or seeded: the state is the one the old workers left. An example app
    /// keeps running, and finds the new workers through the registry.
    pub fn restart_workers(&self, variant: &Variant) -> io::Result<()> {
        let root = repo_root();
        let config = self.dir.join(format!("config-{}", variant.name()));
        self.render_config(&root, &config, Some(variant))?;
        run_ok(
            Command::new(root.join("scripts/local-indexes"))
                .arg(&self.local_vectorize_url)
                .env("EMBEDDINGS_CONFIG", &variant.config),
            "scripts/local-indexes (the variant's)",
        )?;

        let (mut old, group) = {
            let mut processes = self.processes();
            let at = processes
                .groups
                .iter()
                .position(|(log, _)| log == WORKERS_LOG)
                .ok_or_else(|| io::Error::other("the stack runs no workers to restart"))?;
            let (_, group) = processes.groups.remove(at);
            (processes.children.remove(at), group)
        };
        stop(&mut old);
        self.wait_until_stopped(group)?;

        let mut log = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join(WORKERS_LOG))?;
        writeln!(log, "--- restarted with {} ---", variant.config.display())?;
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
        self.start_workers(&root)
    }

    /// Starts `wrangler dev` with the workers of the current configs on the stack's port, and
    /// waits until the gateway reports itself healthy.
    fn start_workers(&self, root: &Path) -> io::Result<()> {
        let config = self.config();
        let inspector = free_port()?;
        let mut dev = wrangler(root);
        // This stack's own registry of `wrangler dev` sessions: the example app finds
        // search-worker and the queue's consumer in it, and another stack's never.
        dev.env("WRANGLER_REGISTRY_PATH", self.dir.join("registry"))
            .args([
                "dev",
                "--ip",
                "127.0.0.1",
                "--show-interactive-dev-session=false",
            ])
            .args([
                "--port",
                &self.port.to_string(),
                "--inspector-port",
                &inspector.to_string(),
            ])
            .arg("--persist-to")
            .arg(self.dir.join("state"));
        if self.options.pipeline {
            // First, so that it is the worker `wrangler dev` serves on its port.
            dev.arg("-c").arg(config.join("e2e-pipeline.toml"));
        }
        for worker in WORKERS.iter().chain(&["local-vectorize"]) {
            dev.arg("-c").arg(config.join(format!("{worker}.toml")));
        }
        self.spawn(dev, WORKERS_LOG)?;
        self.wait_until_ready(&format!("{}/api/v1/health", self.base_url), WORKERS_LOG)
    }

    /// Starts local-ai and the Vectorize stand-in, and creates the stand-in's indexes the way
    /// `scripts/deploy` creates Cloudflare's.
    fn start_stand_ins(&mut self, root: &Path, options: Options) -> io::Result<()> {
        for binary in ["local-ai", "local-vectorize"] {
            if !root.join("target/release").join(binary).exists() {
                return Err(io::Error::other(format!(
                    "target/release/{binary} is missing: run scripts/build"
                )));
            }
        }
        let port = free_port()?;
        let mut command = Command::new(root.join("target/release/local-ai"));
        command.args(["--port", &port.to_string()]);
        self.spawn(command, "local-ai.log")?;
        self.local_ai_url = format!("http://127.0.0.1:{port}");
        self.wait_until_ready(&format!("{}/health", self.local_ai_url), "local-ai.log")?;

        let port = free_port()?;
        let mut command = Command::new(root.join("target/release/local-vectorize"));
        command
            .args(["--port", &port.to_string(), "--data-dir"])
            .arg(self.dir.join("state/vectorize"));
        if let Some(delay) = options.vectorize_delay_ms {
            command.args(["--visibility-delay-ms", &delay.to_string()]);
        }
        self.spawn(command, "local-vectorize.log")?;
        self.local_vectorize_url = format!("http://127.0.0.1:{port}");
        self.wait_until_ready(
            &format!("{}/health", self.local_vectorize_url),
            "local-vectorize.log",
        )?;
        run_ok(
            Command::new(root.join("scripts/local-indexes")).arg(&self.local_vectorize_url),
            "scripts/local-indexes",
        )?;
        Ok(())
    }

    /// The processes the stack started, locked.
    fn processes(&self) -> MutexGuard<'_, Processes> {
        self.processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A client of the gateway.
    pub fn client(&self) -> Client {
        Client::new(&self.base_url)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The gateway first, then what it depends on.
        let processes = self
            .processes
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some(mut child) = processes.children.pop() {
            stop(&mut child);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
