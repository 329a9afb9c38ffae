//! Retry decisions: Temporal's retry policy with deterministic jitter.
//!
//! `max_attempts` counts the first attempt. The delay before attempt `n + 1` is
//! `min(max_interval, initial_interval * backoff_coefficient^(n - 1))`, stretched by a jitter of
//! up to a fifth of itself that is a hash of the task and the attempt, so that many tasks failing
//! together do not all come back at the same instant, and a test can predict every delay.

use chrono::{DateTime, Duration, Utc};

use crate::id::TaskId;

use super::state::FailureReason;

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The delay after the first failed attempt.
    pub initial_interval: Duration,
    /// The factor by which each further delay grows; at least 1.
    pub backoff_coefficient: f64,
    /// The longest delay.
    pub max_interval: Duration,
}

impl Default for RetryPolicy {
    /// Temporal's defaults: 1 s, doubling, at most 100 s.
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::seconds(1),
            backoff_coefficient: 2.0,
            max_interval: Duration::seconds(100),
        }
    }
}

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again, no earlier than `at`.
    RetryAt(DateTime<Utc>),
    /// Stop: the task fails for good.
    GiveUp(FailureReason),
}

impl RetryPolicy {
    /// The delay before the attempt after `attempt` (1-based), jitter included.
    pub fn delay(&self, task: TaskId, attempt: u32) -> Duration {
        let initial = self.initial_interval.num_milliseconds().max(0) as f64;
        let cap = self.max_interval.num_milliseconds().max(0) as f64;
        let exponent = attempt.saturating_sub(1).min(1_000) as i32;
        let base = (initial * self.backoff_coefficient.powi(exponent)).min(cap);
        let jitter = base * 0.2 * unit_hash(task, attempt);
        Duration::milliseconds((base + jitter).round() as i64)
    }

    /// Decides what follows the failure of `attempt` (1-based) of a task allowed `max_attempts`.
    pub fn after_failure(
        &self,
        task: TaskId,
        attempt: u32,
        max_attempts: u32,
        kind: FailureKind,
        now: DateTime<Utc>,
    ) -> AfterFailure {
        if kind == FailureKind::Permanent {
            return AfterFailure::GiveUp(FailureReason::NonRetryable);
        }
        if attempt >= max_attempts {
            return AfterFailure::GiveUp(FailureReason::Error);
        }
        AfterFailure::RetryAt(now + self.delay(task, attempt))
    }
}

/// Whether another attempt at a failed task could succeed: what the one who failed it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailureKind {
    /// Another attempt may succeed (a flaky test, a timeout): retried while attempts remain.
    #[default]
    Transient,
    /// No attempt will succeed (a missing input, a wrong spec): the task fails at once.
    Permanent,
}

/// A number in `[0, 1)` that depends only on the task and the attempt (splitmix64).
fn unit_hash(task: TaskId, attempt: u32) -> f64 {
    let bytes = task.as_bytes();
    let mut x = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
        ^ u64::from_le_bytes(bytes[8..].try_into().unwrap_or_default()).rotate_left(17)
        ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}
