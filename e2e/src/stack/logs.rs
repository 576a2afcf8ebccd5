//! What the stack's processes printed: their logs, read whole or from a byte on, and the
//! structured events and consumer batches the workers log.

use std::fs;

use shared::lane::Lane;

use super::{Stack, FLOOR_PIPELINE_LOG, WORKERS_LOG};

impl Stack {
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
}
