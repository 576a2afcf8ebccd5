//! The queue message for an embedding job.
//!
//! api-worker sends it to `EMBEDDINGS_QUEUE`; a custom pipeline may send the same JSON itself.
//! It is versioned: a consumer refuses a version it does not know rather than guess at it.
//!
//! ```json
//! { "version": 1, "jobId": "…uuid…", "organizationId": "org_1",
//!   "model": "@cf/baai/bge-base-en-v1.5", "content": "text to embed",
//!   "contentHash": "…sha256 hex…", "table": "claims", "id": "clm_1",
//!   "recordHash": "…sha256 hex…", "attempt": 0 }
//! ```
//!
//! `recordHash` is the [`content_hash`] of the record's embedded fields when the job was made.
//! If the record has changed since, the job is stale: a newer job carries the new text. A custom
//! pipeline may leave it out; its job is then only held to the order of jobs.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::models;

/// The message version this code writes and reads.
pub const MESSAGE_VERSION: u32 = 1;

/// One embedding job on the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmbeddingJob {
    pub version: u32,
    pub job_id: Uuid,
    pub organization_id: String,
    pub model: String,
    pub content: String,
    /// [`content_hash`] of `model` and `content`; lets the consumer skip unchanged content.
    pub content_hash: String,
    /// The embedding table the vector belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The record within `table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// [`content_hash`] of the record's embedded fields when the job was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_hash: Option<String>,
    /// Deliveries that failed before this one; queues do not expose it, so the message carries it.
    #[serde(default)]
    pub attempt: u32,
    /// The content was cut to what the model reads ([`models::truncate`]) before it was sent.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

/// Why a queue message cannot be processed: permanent, retrying will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message is not an embedding job: {0}")]
    Malformed(String),
    #[error(
        "message version {0} is not supported (this consumer reads version {MESSAGE_VERSION})"
    )]
    UnsupportedVersion(u32),
    #[error("model `{0}` is not supported")]
    UnknownModel(String),
    #[error("`table` and `id` must be given together, and `recordHash` only with them")]
    PartialTarget,
    #[error("content is empty")]
    EmptyContent,
    #[error("contentHash does not match the content")]
    HashMismatch,
}

impl EmbeddingJob {
    /// A new job for `content`, first attempt.
    pub fn new(
        job_id: Uuid,
        organization_id: impl Into<String>,
        model: impl Into<String>,
        content: impl Into<String>,
        target: Option<(String, String)>,
    ) -> Self {
        let model = model.into();
        let content = content.into();
        // The message carries only what the model reads: a record of any length makes a
        // message well under the queue's 128 KB, and the same vector.
        let (read, truncated) = models::truncate(&content);
        let content = if truncated { read.to_owned() } else { content };
        let (table, id) = target.map_or((None, None), |(t, i)| (Some(t), Some(i)));
        EmbeddingJob {
            version: MESSAGE_VERSION,
            job_id,
            organization_id: organization_id.into(),
            content_hash: content_hash(&model, &content),
            model,
            content,
            table,
            id,
            record_hash: None,
            attempt: 0,
            truncated,
        }
    }

    /// Marks the job as made from its record's current text, `record_text`.
    #[must_use]
    pub fn with_record_text(mut self, record_text: &str) -> Self {
        self.record_hash = Some(content_hash(&self.model, record_text));
        self
    }

    /// The same job, to be delivered again after a failed attempt.
    #[must_use]
    pub fn next_attempt(&self) -> Self {
        EmbeddingJob {
            attempt: self.attempt.saturating_add(1),
            ..self.clone()
        }
    }

    /// Parses and checks a message body as it came off the queue.
    pub fn decode(body: serde_json::Value) -> Result<Self, MessageError> {
        let version = body.get("version").and_then(serde_json::Value::as_u64);
        match version {
            Some(v) if v == u64::from(MESSAGE_VERSION) => {}
            Some(v) => {
                return Err(MessageError::UnsupportedVersion(
                    u32::try_from(v).unwrap_or(u32::MAX),
                ))
            }
            None => return Err(MessageError::Malformed("`version` is missing".into())),
        }
        let job: EmbeddingJob =
            serde_json::from_value(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        job.check()?;
        Ok(job)
    }

    fn check(&self) -> Result<(), MessageError> {
        if models::model(&self.model).is_none() {
            return Err(MessageError::UnknownModel(self.model.clone()));
        }
        if self.table.is_some() != self.id.is_some()
            || (self.record_hash.is_some() && self.table.is_none())
        {
            return Err(MessageError::PartialTarget);
        }
        if self.content.trim().is_empty() {
            return Err(MessageError::EmptyContent);
        }
        if self.content_hash != content_hash(&self.model, &self.content) {
            return Err(MessageError::HashMismatch);
        }
        Ok(())
    }
}

/// Most messages one `sendBatch` takes.
pub const MAX_BATCH_MESSAGES: usize = 100;
/// Most bytes one `sendBatch` takes (256 KB), less room for the queue's own framing.
pub const MAX_BATCH_BYTES: usize = 240 * 1024;

/// Splits `items` into runs one `sendBatch` takes: at most [`MAX_BATCH_MESSAGES`] messages and
/// [`MAX_BATCH_BYTES`] of bodies, `size` giving each body's size. A job carries at most 2,048
/// characters of content, up to 12 KiB as JSON (a control character is escaped in 6 bytes), so
/// 100 of them can be far over a batch's bytes.
pub fn send_batches<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start == MAX_BATCH_MESSAGES || bytes + n > MAX_BATCH_BYTES) {
            batches.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        batches.push(&items[start..]);
    }
    batches
}

/// The size of a job as a queue message body: its JSON.
pub fn body_size(job: &EmbeddingJob) -> usize {
    serde_json::to_vec(job).map_or(0, |body| body.len())
}

/// SHA-256, in lowercase hex, of the model name, a NUL byte and the content: the same text under
/// another model is other content.
pub fn content_hash(model: &str, content: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(model.as_bytes());
    hasher.update([0]);
    hasher.update(content.as_bytes());
    crate::hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> EmbeddingJob {
        EmbeddingJob::new(
            Uuid::nil(),
            "org_1",
            models::DEFAULT_MODEL,
            "Police arrested three suspects",
            Some(("claims".into(), "clm_1".into())),
        )
    }

    #[test]
    fn round_trips_through_json() {
        let job = job().with_record_text("Police arrested three suspects");
        let value = serde_json::to_value(&job).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["jobId"], Uuid::nil().to_string());
        assert_eq!(value["recordHash"], value["contentHash"]);
        assert_eq!(EmbeddingJob::decode(value).unwrap(), job);
        let again = job.next_attempt();
        assert_eq!((again.attempt, again.job_id), (1, job.job_id));
    }

    #[test]
    fn send_batches_hold_at_most_100_messages_and_240_kib() {
        let small: Vec<usize> = vec![10; 250];
        let lens: Vec<usize> = send_batches(&small, |n| *n)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(lens, vec![100, 100, 50]);
        let big: Vec<usize> = vec![64 * 1024; 10];
        let lens: Vec<usize> = send_batches(&big, |n| *n).iter().map(|b| b.len()).collect();
        assert_eq!(
            lens,
            vec![3, 3, 3, 1],
            "three 64 KiB bodies fit in 240 KiB, four do not"
        );
        assert!(send_batches(&[] as &[usize], |n| *n).is_empty());
        // Bodies that add up to the limit exactly fit in one batch.
        let exact = [MAX_BATCH_BYTES / 2, MAX_BATCH_BYTES / 2];
        assert_eq!(send_batches(&exact, |n| *n).len(), 1);
        let over = [MAX_BATCH_BYTES / 2, MAX_BATCH_BYTES / 2 + 1];
        assert_eq!(send_batches(&over, |n| *n).len(), 2);
        // A body over the limit alone is a batch of its own, never an empty batch before it.
        let huge = [MAX_BATCH_BYTES + 1, 10];
        let lens: Vec<usize> = send_batches(&huge, |n| *n)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(lens, vec![1, 1]);
        let job = job();
        assert_eq!(body_size(&job), serde_json::to_vec(&job).unwrap().len());
    }

    #[test]
    fn hash_depends_on_model_and_content() {
        let a = content_hash("m1", "text");
        assert_eq!(a.len(), 64);
        assert_ne!(a, content_hash("m2", "text"));
        assert_ne!(a, content_hash("m1", "text!"));
        // Not a plain concatenation: moving bytes across the separator changes the hash.
        assert_ne!(content_hash("ab", "c"), content_hash("a", "bc"));
    }

    #[test]
    fn refuses_unknown_versions_and_bad_bodies() {
        let mut value = serde_json::to_value(job()).unwrap();
        value["version"] = json!(2);
        assert_eq!(
            EmbeddingJob::decode(value),
            Err(MessageError::UnsupportedVersion(2))
        );
        assert!(matches!(
            EmbeddingJob::decode(json!({"hello": 1})),
            Err(MessageError::Malformed(_))
        ));
        let mut value = serde_json::to_value(job()).unwrap();
        value["content"] = json!("changed after hashing");
        assert_eq!(EmbeddingJob::decode(value), Err(MessageError::HashMismatch));
        let mut value = serde_json::to_value(job()).unwrap();
        value.as_object_mut().unwrap().remove("id");
        assert_eq!(
            EmbeddingJob::decode(value),
            Err(MessageError::PartialTarget)
        );
        let mut value = serde_json::to_value(job()).unwrap();
        value["model"] = json!("@cf/unknown");
        assert!(matches!(
            EmbeddingJob::decode(value),
            Err(MessageError::UnknownModel(_))
        ));
    }

    #[test]
    fn a_message_carries_only_what_the_model_reads() {
        // Quotes double when JSON escapes them: 120,000 of them made a 240 KB message.
        let long = "\"".repeat(120_000);
        let long_job = EmbeddingJob::new(
            Uuid::nil(),
            "org_1",
            models::DEFAULT_MODEL,
            long.as_str(),
            None,
        );
        assert!(long_job.truncated);
        assert_eq!(long_job.content.chars().count(), models::MAX_INPUT_CHARS);
        assert!(
            body_size(&long_job) < 16 * 1024,
            "{} bytes",
            body_size(&long_job)
        );
        assert_eq!(
            long_job.content_hash,
            content_hash(models::DEFAULT_MODEL, &long_job.content)
        );
        let value = serde_json::to_value(&long_job).unwrap();
        assert_eq!(value["truncated"], true);
        assert_eq!(EmbeddingJob::decode(value).unwrap(), long_job);
        let short = job();
        assert!(!short.truncated);
        assert!(serde_json::to_value(&short)
            .unwrap()
            .get("truncated")
            .is_none());
    }
}
