//! Structured logs: `tracing` events as one JSON line each on the Workers console, where
//! `wrangler dev` and `wrangler tail` show them.

use std::io;

use tracing_subscriber::fmt::MakeWriter;

/// Installs the JSON subscriber once per isolate; later calls do nothing.
pub fn init(worker_name: &'static str) {
    if tracing::subscriber::set_global_default(subscriber(ConsoleWriter)).is_ok() {
        tracing::info!(worker = worker_name, "tracing ready");
    }
}

/// The workers' subscriber, writing to `writer`: one JSON line per event at `info` and above.
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        // wasm32-unknown-unknown has no system clock; the runtime stamps each line instead.
        .without_time()
        .with_current_span(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(writer)
        .finish()
}

/// Writes each formatted event to `console.log`.
#[derive(Debug, Clone, Copy)]
struct ConsoleWriter;

impl io::Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        web_sys::console::log_1(&line.trim_end().into());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ConsoleWriter {
    type Writer = ConsoleWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}
