//! The stack's local D1, read and written with wrangler beside the running `wrangler dev`.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::process::{path, repo_root, wrangler};
use super::Stack;

impl Stack {
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

    /// Exports the stack's local D1 whole into `out`, with `scripts/export`.
    pub fn export(&self, out: &Path) -> io::Result<()> {
        Self::script(
            Command::new(repo_root().join("scripts/export"))
                .arg(out)
                .arg("--local")
                .arg(self.dir.join("state")),
        )
    }

    /// Runs one of the project's scripts to its end; its error output when it fails.
    fn script(command: &mut Command) -> io::Result<()> {
        let output = command.stdin(Stdio::null()).output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "{} failed:\n{}",
                command.get_program().display(),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    /// Fills every keyword index of the local D1 kept in `state` anew, with
    /// `scripts/rebuild-keywords`.
    pub fn rebuild_keywords_at(&self, state: &Path) -> io::Result<()> {
        Self::script(
            Command::new(repo_root().join("scripts/rebuild-keywords"))
                .arg("--local")
                .arg(state),
        )
    }

    /// Runs the SQL file `file` against a local D1 of its own, kept in `state` (not the
    /// stack's), and returns the rows of its last statement: an import, then what it holds.
    pub fn sql_file_at(&self, state: &Path, file: &Path) -> io::Result<Vec<serde_json::Value>> {
        self.d1_execute_at(state, &["--file", path(file)])
    }

    fn d1_execute(&self, what: &[&str]) -> io::Result<Vec<serde_json::Value>> {
        self.d1_execute_at(&self.dir.join("state"), what)
    }

    fn d1_execute_at(&self, state: &Path, what: &[&str]) -> io::Result<Vec<serde_json::Value>> {
        let output = wrangler(&repo_root())
            .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
            .arg(state)
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
}
