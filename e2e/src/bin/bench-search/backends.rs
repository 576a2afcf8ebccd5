//! The two backends benchmarked, the table of each, and the vectors written into it: D1's
//! rows, and for Vectorize the stand-in's index too, as a backfill would leave them.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use e2e::bench::Error;
use e2e::seed::VectorRow;
use e2e::{Client, Stack};
use serde_json::json;

/// A backend and the table benchmarked on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) table: &'static str,
    pub(crate) service: &'static str,
    pub(crate) model: &'static str,
    pub(crate) dims: usize,
    pub(crate) metadata_field: &'static str,
    /// The Vectorize index and its binding, for a table kept in Vectorize.
    pub(crate) index: Option<(&'static str, &'static str)>,
    /// How many vectors the organization holds in each run, in order.
    pub(crate) sizes: &'static [usize],
}

pub(crate) const BACKENDS: [Backend; 2] = [
    Backend {
        name: "D1",
        table: "notes",
        service: "noteSearch",
        model: "@cf/baai/bge-small-en-v1.5",
        dims: 384,
        metadata_field: "topic",
        index: None,
        sizes: &[1_000, 10_000, 50_000],
    },
    Backend {
        name: "Vectorize (stand-in)",
        table: "evidence",
        service: "evidenceSearch",
        model: "@cf/baai/bge-base-en-v1.5",
        dims: 768,
        metadata_field: "story_id",
        index: Some(("embeddings-768", "VECTORIZE_768")),
        sizes: &[1_000, 10_000],
    },
];

/// Writes vectors `from..` of `vectors` as `org`'s records of the backend's table: D1's rows,
/// and for Vectorize the index too, as the consumer leaves them.
pub(crate) fn seed(
    stack: &Stack,
    org: &str,
    backend: Backend,
    vectors: &[Vec<f32>],
    from: usize,
) -> Result<(), Error> {
    let location = location(backend);
    let (table, model, field) = (backend.table, backend.model, backend.metadata_field);
    let mut sql = String::new();
    let mut ndjson = String::new();
    for (i, vector) in vectors.iter().enumerate().skip(from) {
        let value = ["city", "weather", "crime", "sport"][i % 4];
        let record = format!("rec_{i:05}");
        let metadata = json!({ field: value }).to_string();
        let row = VectorRow {
            organization_id: org,
            table,
            model,
            location: &location,
            record_id: &record,
            vector: Some(vector),
            // The D1 backend's search copy, as the consumer writes it.
            codes: backend.index.is_none(),
            metadata: &metadata,
            seq: i as u64 + 1,
        };
        let _ = writeln!(sql, "{}", row.upsert_sql());
        let _ = writeln!(
            ndjson,
            "{}",
            json!({
                "id": format!("{org}:{table}:rec_{i:05}"),
                "values": vector,
                "namespace": org,
                "metadata": {field: value, "table": table, "recordId": format!("rec_{i:05}"), "organizationId": org},
            })
        );
    }
    stack.sql_script(&sql)?;
    if let Some((index, _)) = backend.index {
        let stand_in = Client::new(&stack.local_vectorize_url);
        for chunk in ndjson.lines().collect::<Vec<_>>().chunks(1000) {
            let reply = stand_in.call(
                "POST",
                &format!("/client/v4/accounts/local/vectorize/v2/indexes/{index}/upsert"),
                &[("content-type", "application/x-ndjson")],
                Some(&chunk.join("\n")),
            )?;
            if reply.status != 200 {
                return Err(format!("upsert answered {} {}", reply.status, reply.body).into());
            }
        }
        wait_visible(&stand_in)?;
    }
    Ok(())
}

/// Where the backend's vectors are, as `embedding_vectors.location` names it.
pub(crate) fn location(backend: Backend) -> String {
    backend.index.map_or_else(
        || "d1".to_owned(),
        |(_, binding)| format!("vectorize:{binding}"),
    )
}

/// Until the stand-in has applied every write it accepted.
fn wait_visible(stand_in: &Client) -> Result<(), Error> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_mins(2) {
        let stats = stand_in.get("/stats", None)?.body;
        let pending: u64 = stats["indexes"].as_object().map_or(0, |indexes| {
            indexes
                .values()
                .filter_map(|i| i["pendingMutations"].as_u64())
                .sum()
        });
        if pending == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the Vectorize stand-in did not apply its writes within 2 minutes".into())
}
