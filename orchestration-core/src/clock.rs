//! Time as an input: the system clock in production, a manual clock in tests and simulations.
//!
//! Every use case reads the time once, from the store's clock, and passes it down to the pure
//! logic, so a test can move time forward by a day in a microsecond and get the same answer
//! every run.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};

/// Where the current time comes from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The operating system's clock.
    #[default]
    System,
    /// A clock that moves only when told to; clones share the same time.
    Manual(ManualClock),
}

impl Clock {
    /// A manual clock starting at `start`, and a handle to move it.
    pub fn manual(start: DateTime<Utc>) -> (Clock, ManualClock) {
        let handle = ManualClock::new(start);
        (Clock::Manual(handle.clone()), handle)
    }

    /// The current time, truncated to whole milliseconds (the store's resolution).
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => from_millis(Utc::now().timestamp_millis()),
            Clock::Manual(manual) => manual.now(),
        }
    }
}

/// A shared, manually driven time source.
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    fn new(start: DateTime<Utc>) -> Self {
        Self {
            millis: Arc::new(AtomicI64::new(start.timestamp_millis())),
        }
    }

    /// The clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        from_millis(self.millis.load(Ordering::SeqCst))
    }

    /// Moves the clock by `by`, which may be negative: tests use that to check that a clock
    /// jumping back does no harm.
    pub fn advance(&self, by: Duration) {
        self.millis
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        self.millis.store(to.timestamp_millis(), Ordering::SeqCst);
    }
}

pub(crate) fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
