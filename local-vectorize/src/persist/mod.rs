//! The data directory, so that indexes survive a restart as local D1 does. One directory per
//! index under `indexes/`:
//!
//! - `index.json`: the index as the API shows it, written when it is created.
//! - `log.ndjson`: every mutation, appended when it is accepted, before the answer, so that a
//!   stopped server loses nothing it said yes to (written to the OS, not synced: a process
//!   stop or kill loses nothing, a machine crash may lose the last ones).
//! - `snapshot.ndjson`: the index as of a mutation, written at start-up from the previous
//!   snapshot and the log, after which the log starts empty. Mutations carry their sequence
//!   number, so a log that outlives its compaction (a stop between the two) is not replayed twice.
//!
//! Values are base64 of little-endian f32, a third of the size of JSON numbers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::IndexRecord;
use crate::mutation::Mutation;
use crate::store::Store;

mod entry;
mod snapshot;

use entry::Entry;
use snapshot::{read_snapshot, write_snapshot};

const RECORD: &str = "index.json";
const LOG: &str = "log.ndjson";
const SNAPSHOT: &str = "snapshot.ndjson";

/// The last mutation applied to an index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub seq: u64,
    pub mutation: Option<String>,
    pub at_ms: Option<u64>,
}

/// An index read back from its directory, every accepted mutation applied.
#[derive(Debug)]
pub struct Loaded {
    pub record: IndexRecord,
    pub store: Store,
    pub applied: Applied,
    pub journal: Journal,
}

pub fn index_dirs(root: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = root.join("indexes");
    fs::create_dir_all(&dir)?;
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join(RECORD).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

pub fn index_dir(root: &Path, name: &str) -> PathBuf {
    root.join("indexes").join(name)
}

/// Makes the directory of a new index; a directory left by a deleted index of the name goes.
pub fn create(dir: &Path, record: &IndexRecord) -> io::Result<Journal> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    write_atomically(&dir.join(RECORD), &serde_json::to_vec_pretty(record)?)?;
    Journal::open(dir)
}

pub fn remove(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The append-only log of an index's accepted mutations.
#[derive(Debug)]
pub struct Journal {
    file: File,
}

impl Journal {
    fn open(dir: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG))?;
        Ok(Journal { file })
    }

    pub fn append(&mut self, mutation: &Mutation) -> io::Result<()> {
        let mut line = serde_json::to_vec(&Entry::from(mutation))?;
        line.push(b'\n');
        // One write per line, so that a stop mid-way leaves at most one torn last line.
        self.file.write_all(&line)
    }
}

/// Reads an index back: its snapshot, then the mutations logged after it, then writes the new
/// snapshot and starts an empty log. A mutation became visible `delay_ms` after it was accepted,
/// or now if the server stopped before that.
pub fn load(dir: &Path, delay_ms: u64, now_ms: u64) -> io::Result<Loaded> {
    let record: IndexRecord = serde_json::from_slice(&fs::read(dir.join(RECORD))?)?;
    let mut store = Store::new(record.config.dimensions);
    let mut applied = read_snapshot(&dir.join(SNAPSHOT), &mut store)?;
    if let Ok(log) = File::open(dir.join(LOG)) {
        for (n, line) in BufReader::new(log).lines().enumerate() {
            let line = line?;
            let entry = match serde_json::from_str::<Entry>(&line) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), line = n + 1, error = %e, "skipping an unreadable log line (a stop mid-write leaves one)");
                    continue;
                }
            };
            if entry.seq <= applied.seq {
                continue;
            }
            let mutation = entry.into_mutation(store.dimensions())?;
            mutation.change.apply(&mut store);
            applied = Applied {
                seq: mutation.seq,
                at_ms: Some(now_ms.min(mutation.accepted_ms.saturating_add(delay_ms))),
                mutation: Some(mutation.id),
            };
        }
    }
    write_snapshot(&dir.join(SNAPSHOT), &store, &applied)?;
    File::create(dir.join(LOG))?;
    Ok(Loaded {
        record,
        store,
        applied,
        journal: Journal::open(dir)?,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(tmp, path)
}
