//! What becomes of each queue message, decided here and applied in one place by the consumer.

/// How one delivery of a message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed and written; nothing more to do.
    Handled,
    /// Retrying cannot help (malformed message, record gone): the job is dead at once.
    Permanent(String),
    /// Worth another try (AI 429/5xx, timeout, D1 busy).
    Transient(String),
}

/// What the consumer does with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Ack,
    /// Redeliver after a delay; past the queue's `max_retries` it goes to the dead-letter queue.
    Retry {
        delay_seconds: u32,
    },
    /// Mark the job dead with this reason, then acknowledge.
    Dead {
        reason: String,
    },
}

/// First retry delay; each later one doubles, up to [`MAX_RETRY_DELAY_SECONDS`].
pub const BASE_RETRY_DELAY_SECONDS: u32 = 2;
/// Queues accept delays of up to 12 hours; a few minutes is plenty for AI or D1 to recover.
pub const MAX_RETRY_DELAY_SECONDS: u32 = 300;

/// Decides the disposition of a delivery; `attempt` counts the deliveries that failed before it.
pub fn decide(outcome: Outcome, attempt: u32) -> Disposition {
    match outcome {
        Outcome::Handled => Disposition::Ack,
        Outcome::Permanent(reason) => Disposition::Dead { reason },
        Outcome::Transient(_) => Disposition::Retry {
            delay_seconds: retry_delay_seconds(attempt),
        },
    }
}

/// Exponential backoff: 2, 4, 8, … seconds, capped at five minutes.
pub fn retry_delay_seconds(attempt: u32) -> u32 {
    BASE_RETRY_DELAY_SECONDS
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(MAX_RETRY_DELAY_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_dispositions() {
        assert_eq!(decide(Outcome::Handled, 3), Disposition::Ack);
        assert_eq!(
            decide(Outcome::Permanent("record gone".into()), 0),
            Disposition::Dead {
                reason: "record gone".into()
            }
        );
        assert_eq!(
            decide(Outcome::Transient("AI 429".into()), 1),
            Disposition::Retry { delay_seconds: 4 }
        );
    }

    #[test]
    fn backoff_grows_then_caps() {
        let delays: Vec<u32> = (0..10).map(retry_delay_seconds).collect();
        assert_eq!(delays, vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(retry_delay_seconds(40), 300);
    }
}
