//! Fault injection, off by default: fail a share of calls with 500 or 429, or delay them, drawn
//! from a seeded generator so that a run repeats. The plan is set at startup and can be changed
//! while the server runs (`PUT /faults`), so one test can break the model for a while.

use std::sync::Mutex;
use std::time::Duration;

/// What to inject. As JSON: `{"failRate": 0.3, "failStatuses": [500, 429], "delayRate": 0,
/// "delayMs": 0}`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultPlan {
    /// Share of calls, 0 to 1, that fail.
    #[serde(default)]
    pub fail_rate: f64,
    /// Statuses a failing call answers with, taken in turn at random.
    #[serde(default)]
    pub fail_statuses: Vec<u16>,
    /// Share of calls, 0 to 1, that are delayed.
    #[serde(default)]
    pub delay_rate: f64,
    #[serde(default, rename = "delayMs", with = "millis")]
    pub delay: Duration,
}

impl FaultPlan {
    /// Refuses shares outside 0..=1 and statuses that are not errors.
    pub fn check(&self) -> Result<(), String> {
        for (name, share) in [("failRate", self.fail_rate), ("delayRate", self.delay_rate)] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if let Some(status) = self
            .fail_statuses
            .iter()
            .find(|s| !(400..=599).contains(*s))
        {
            return Err(format!("failStatuses: {status} is not an error status"));
        }
        if self.fail_rate > 0.0 && self.fail_statuses.is_empty() {
            return Err("failStatuses must name at least one status when failRate > 0".into());
        }
        Ok(())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub delay: Option<Duration>,
    pub fail_with: Option<u16>,
}

#[derive(Debug)]
pub struct Faults {
    state: Mutex<(FaultPlan, SplitMix64)>,
}

impl Faults {
    pub fn new(plan: FaultPlan, seed: u64) -> Self {
        Faults {
            state: Mutex::new((plan, SplitMix64(seed))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (FaultPlan, SplitMix64)> {
        // A poisoned lock only means another request panicked mid-draw; the state is plain data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn plan(&self) -> FaultPlan {
        self.lock().0.clone()
    }

    /// Replaces the plan; the generator goes on from where it was.
    pub fn set_plan(&self, plan: FaultPlan) {
        self.lock().0 = plan;
    }

    pub fn is_active(&self) -> bool {
        is_active(&self.lock().0)
    }

    /// Draws the fate of the next call. Calls are drawn in arrival order, so one seed and one
    /// sequence of calls give one sequence of faults.
    pub fn next(&self) -> Verdict {
        let mut state = self.lock();
        let (plan, rng) = &mut *state;
        if !is_active(plan) {
            return Verdict {
                delay: None,
                fail_with: None,
            };
        }
        let delay = (rng.unit() < plan.delay_rate && !plan.delay.is_zero()).then_some(plan.delay);
        let fail = rng.unit() < plan.fail_rate;
        let pick = rng.next_u64();
        let fail_with = (fail && !plan.fail_statuses.is_empty()).then(|| {
            let len = plan.fail_statuses.len() as u64;
            plan.fail_statuses[usize::try_from(pick % len).unwrap_or(0)]
        });
        Verdict { delay, fail_with }
    }
}

fn is_active(plan: &FaultPlan) -> bool {
    plan.fail_rate > 0.0 || (plan.delay_rate > 0.0 && !plan.delay.is_zero())
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
    fn the_plan_can_change_while_running() {
        let faults = Faults::new(FaultPlan::default(), 5);
        faults.set_plan(FaultPlan {
            fail_rate: 1.0,
            fail_statuses: vec![400],
            ..FaultPlan::default()
        });
        assert_eq!(faults.next().fail_with, Some(400));
        faults.set_plan(FaultPlan::default());
        assert_eq!(faults.next().fail_with, None);
        let json: FaultPlan =
            serde_json::from_str(r#"{"failRate": 0.3, "failStatuses": [500, 429], "delayMs": 20}"#)
                .unwrap();
        assert_eq!(json.delay, Duration::from_millis(20));
        assert!(json.check().is_ok());
        assert!(FaultPlan {
            fail_rate: 2.0,
            ..json.clone()
        }
        .check()
        .is_err());
        assert!(FaultPlan {
            fail_statuses: vec![200],
            ..json
        }
        .check()
        .is_err());
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
