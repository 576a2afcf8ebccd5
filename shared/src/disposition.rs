//! What becomes of each queue message, decided here and applied in one place by the consumer.
//!
//! A transient failure is retried by sending the job again with its `attempt` raised and a
//! growing delay (queues do not tell a consumer how often a message was delivered, so the
//! message carries it); once [`MAX_RETRIES`] retries have failed, the job goes to the
//! dead-letter queue, whose consumer marks it `dead` with its last error.

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
    /// Deliver the job again, as its next attempt, after a delay.
    Retry {
        delay_seconds: u32,
    },
    /// Retries are spent: send the job to the dead-letter queue.
    DeadLetter {
        reason: String,
    },
    /// Mark the job dead with this reason, then acknowledge.
    Dead {
        reason: String,
    },
}

/// Retries of a job before it goes to the dead-letter queue; the consumer's `max_retries` in
/// `wrangler/consumer-worker.toml` says the same for deliveries the runtime retries itself.
pub const MAX_RETRIES: u32 = 5;

/// First retry delay; each later one doubles, up to [`MAX_RETRY_DELAY_SECONDS`].
pub const BASE_RETRY_DELAY_SECONDS: u32 = 2;
/// Queues accept delays of up to 12 hours; a few minutes is plenty for AI or D1 to recover.
pub const MAX_RETRY_DELAY_SECONDS: u32 = 300;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay; each later one doubles, up to [`MAX_RETRY_DELAY_SECONDS`].
    pub base_delay_seconds: u32,
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay_seconds: BASE_RETRY_DELAY_SECONDS,
            max_retries: MAX_RETRIES,
        }
    }
}

impl RetryPolicy {
    /// Decides the disposition of a delivery; `attempt` counts the deliveries that failed
    /// before it.
    pub fn decide(self, outcome: Outcome, attempt: u32) -> Disposition {
        match outcome {
            Outcome::Handled => Disposition::Ack,
            Outcome::Permanent(reason) => Disposition::Dead { reason },
            Outcome::Transient(reason) if attempt >= self.max_retries => {
                Disposition::DeadLetter { reason }
            }
            Outcome::Transient(_) => Disposition::Retry {
                delay_seconds: self.delay_seconds(attempt),
            },
        }
    }

    /// Exponential backoff: base, 2 × base, 4 × base, … capped at five minutes.
    pub fn delay_seconds(self, attempt: u32) -> u32 {
        self.base_delay_seconds
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .min(MAX_RETRY_DELAY_SECONDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(outcome: Outcome, attempt: u32) -> Disposition {
        RetryPolicy::default().decide(outcome, attempt)
    }

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
    fn a_transient_failure_past_the_retries_goes_to_the_dead_letter_queue() {
        let failing = || Outcome::Transient("AI 500".into());
        assert!(matches!(
            decide(failing(), MAX_RETRIES - 1),
            Disposition::Retry { .. }
        ));
        assert_eq!(
            decide(failing(), MAX_RETRIES),
            Disposition::DeadLetter {
                reason: "AI 500".into()
            }
        );
        assert_eq!(decide(Outcome::Handled, MAX_RETRIES + 3), Disposition::Ack);
    }

    #[test]
    fn backoff_grows_then_caps() {
        let policy = RetryPolicy::default();
        let delays: Vec<u32> = (0..10).map(|a| policy.delay_seconds(a)).collect();
        assert_eq!(delays, vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(policy.delay_seconds(40), 300);
        let quick = RetryPolicy {
            base_delay_seconds: 1,
            max_retries: 2,
        };
        assert_eq!(quick.delay_seconds(3), 8);
        assert!(matches!(
            quick.decide(Outcome::Transient("x".into()), 2),
            Disposition::DeadLetter { .. }
        ));
    }
}
