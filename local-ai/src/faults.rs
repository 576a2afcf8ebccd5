//! Fault injection, off by default: fail a share of calls with 500 or 429, or delay them, drawn
//! from a seeded generator so that a run repeats.

use std::sync::Mutex;
use std::time::Duration;

/// What to inject.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Share of calls, 0 to 1, that fail.
    pub fail_rate: f64,
    /// Statuses a failing call answers with, taken in turn at random.
    pub fail_statuses: Vec<u16>,
    /// Share of calls, 0 to 1, that are delayed.
    pub delay_rate: f64,
    pub delay: Duration,
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub delay: Option<Duration>,
    pub fail_with: Option<u16>,
}

#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    rng: Mutex<SplitMix64>,
}

impl Faults {
    pub fn new(plan: FaultPlan, seed: u64) -> Self {
        Faults {
            plan,
            rng: Mutex::new(SplitMix64(seed)),
        }
    }

    pub fn is_active(&self) -> bool {
        self.plan.fail_rate > 0.0 || (self.plan.delay_rate > 0.0 && !self.plan.delay.is_zero())
    }

    /// Draws the fate of the next call. Calls are drawn in arrival order, so one seed and one
    /// sequence of calls give one sequence of faults.
    pub fn next(&self) -> Verdict {
        if !self.is_active() {
            return Verdict {
                delay: None,
                fail_with: None,
            };
        }
        // A poisoned lock only means another request panicked mid-draw; the state is still a u64.
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let delay = (rng.unit() < self.plan.delay_rate && !self.plan.delay.is_zero())
            .then_some(self.plan.delay);
        let fail = rng.unit() < self.plan.fail_rate;
        let pick = rng.next_u64();
        let fail_with = (fail && !self.plan.fail_statuses.is_empty()).then(|| {
            let len = self.plan.fail_statuses.len() as u64;
            self.plan.fail_statuses[usize::try_from(pick % len).unwrap_or(0)]
        });
        Verdict { delay, fail_with }
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's `SplitMix64`).
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    #[allow(clippy::cast_precision_loss)]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(fail_rate: f64) -> FaultPlan {
        FaultPlan {
            fail_rate,
            fail_statuses: vec![500, 429],
            ..FaultPlan::default()
        }
    }

    #[test]
    fn off_by_default() {
        let faults = Faults::new(FaultPlan::default(), 1);
        assert!(!faults.is_active());
        assert!((0..100).all(|_| faults.next().fail_with.is_none()));
    }

    #[test]
    fn the_share_is_respected_and_a_seed_repeats() {
        let draw = |seed| {
            let faults = Faults::new(plan(0.3), seed);
            (0..2000)
                .map(|_| faults.next().fail_with)
                .collect::<Vec<_>>()
        };
        let run = draw(7);
        assert_eq!(run, draw(7), "same seed, same faults");
        assert_ne!(run, draw(8));
        let failed = run.iter().filter(|f| f.is_some()).count();
        assert!(
            (500..700).contains(&failed),
            "{failed} of 2000 failed at 30%"
        );
        assert!(run.contains(&Some(500)) && run.contains(&Some(429)));
    }

    #[test]
    fn delays_apply_to_their_share() {
        let faults = Faults::new(
            FaultPlan {
                delay_rate: 1.0,
                delay: Duration::from_millis(5),
                ..FaultPlan::default()
            },
            3,
        );
        let verdict = faults.next();
        assert_eq!(verdict.delay, Some(Duration::from_millis(5)));
        assert_eq!(verdict.fail_with, None);
    }
}
