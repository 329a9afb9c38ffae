//! Request rates: a token bucket per caller (the agent of a per-agent token, otherwise the
//! address), so that one runaway client gets 429 with `Retry-After` instead of the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How many requests a caller may make: `per_second` on average, and up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `per_second` sustained, with bursts of two seconds' worth.
    pub fn per_second(per_second: NonZeroU32) -> RateLimit {
        RateLimit {
            per_second,
            burst: per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1)),
        }
    }
}

impl Default for RateLimit {
    /// 200 requests a second per caller: an agent's loop of claim, heartbeat and report
    /// makes a few a second at most, and even a scripted one that does no work between calls
    /// stays below it on one core.
    fn default() -> Self {
        RateLimit::per_second(NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN))
    }
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    /// The agent its per-agent token belongs to.
    Agent(String),
    /// The address it came from: without a per-agent token nothing tells callers apart
    /// better, since a shared token is shared.
    Address(IpAddr),
}

/// The callers' buckets.
#[derive(Debug)]
pub(crate) struct Buckets {
    limit: RateLimit,
    buckets: Mutex<HashMap<Caller, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Buckets {
    /// Buckets under `limit`, with a task that forgets callers whose bucket is full again.
    pub(crate) fn start(limit: RateLimit) -> Arc<Buckets> {
        let buckets = Arc::new(Buckets {
            limit,
            buckets: Mutex::default(),
        });
        tokio::spawn(forget_quiet_callers(Arc::downgrade(&buckets)));
        buckets
    }

    /// The limit each caller is held to.
    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<Caller, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one request from `caller`'s bucket, or says how long until there is one.
    pub(crate) fn take(&self, caller: Caller) -> Result<(), Duration> {
        let now = Instant::now();
        let rate = f64::from(self.limit.per_second.get());
        let burst = f64::from(self.limit.burst.get());
        let mut buckets = self.buckets();
        let bucket = buckets.entry(caller).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let refilled = bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate;
        bucket.tokens = refilled.min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Drops the buckets that have refilled: their callers are as if never seen.
    fn forget_full(&self) {
        let now = Instant::now();
        let rate = f64::from(self.limit.per_second.get());
        let burst = f64::from(self.limit.burst.get());
        self.buckets().retain(|_, bucket| {
            bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate < burst
        });
    }
}

/// Keeps the table to the callers seen lately, until the buckets are dropped.
async fn forget_quiet_callers(buckets: Weak<Buckets>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticks.tick().await;
        let Some(buckets) = buckets.upgrade() else {
            return;
        };
        buckets.forget_full();
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::{Buckets, Caller, RateLimit};

    #[tokio::test]
    async fn a_caller_gets_its_burst_then_waits_and_others_are_not_held_up() {
        let limit = RateLimit {
            per_second: NonZeroU32::new(10).unwrap(),
            burst: NonZeroU32::new(5).unwrap(),
        };
        let buckets = Buckets::start(limit);
        let ana = || Caller::Agent("ana".into());
        for _ in 0..5 {
            assert_eq!(buckets.take(ana()), Ok(()));
        }
        let wait = buckets.take(ana()).unwrap_err();
        assert!(wait.as_millis() > 0 && wait.as_millis() <= 100, "{wait:?}");
        assert_eq!(buckets.take(Caller::Agent("bo".into())), Ok(()));
        assert_eq!(
            buckets.take(Caller::Address("127.0.0.1".parse().unwrap())),
            Ok(())
        );
    }
}
