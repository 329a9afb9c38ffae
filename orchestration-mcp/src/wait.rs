//! Waiting instead of polling: a call that found nothing to do waits, holding no database
//! lock, until the event log moves (a change by any process on the database), a time the
//! store named comes (a retry falling due), the deadline passes or the client cancels; then
//! the caller looks again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orchestration_core::Store;
use orchestration_core::limits::MAX_WAIT_SECONDS;
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use tokio::time::Instant;

use crate::error::ToolFailure;
use crate::tools::blocking;

/// How often the log is looked at: the latency of a wake-up by another process. One look is
/// a read of the log's last position.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How often the log is looked at even when the database server's notifications say nothing
/// changed: in case one was lost.
const LOOK_ANYWAY_EVERY: Duration = Duration::from_secs(2);

/// When a tailer of the event log (a waiting call, a subscription, the console's live stream)
/// should read it. Without the database server's notifications (SQLite), at every look; with
/// them (PostgreSQL), only when their count moved since the last read, and every
/// [`LOOK_ANYWAY_EVERY`] in case one was lost, so that idle tailers do not poll the server.
#[derive(Debug)]
pub(crate) struct Lookout {
    notices: Option<u64>,
    read_at: Instant,
}

impl Lookout {
    /// A lookout whose last read is now.
    pub(crate) fn new(store: &Store) -> Lookout {
        Lookout {
            notices: store.change_notices(),
            read_at: Instant::now(),
        }
    }

    /// Whether to read the log now; when it says so, the read counts as done.
    pub(crate) fn due(&mut self, store: &Store) -> bool {
        self.due_with(store.change_notices(), Instant::now())
    }

    fn due_with(&mut self, notices: Option<u64>, now: Instant) -> bool {
        if notices.is_some()
            && notices == self.notices
            && now.duration_since(self.read_at) < LOOK_ANYWAY_EVERY
        {
            return false;
        }
        self.notices = notices;
        self.read_at = now;
        true
    }
}

/// How often a waiting call tells a client that asked for progress that it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One call's wait.
pub(crate) struct Wait {
    store: Arc<Store>,
    started: Instant,
    deadline: Instant,
    /// The log's position when the caller last looked.
    seen: i64,
    /// When to look at the log again.
    lookout: Lookout,
    /// The call's context: its cancellation, and the peer that progress goes to.
    context: RequestContext<RoleServer>,
    progress: Option<ProgressToken>,
    next_progress: Instant,
}

impl Wait {
    /// Starts a wait of `seconds` for a call; more than
    /// [`MAX_WAIT_SECONDS`](orchestration_core::limits::MAX_WAIT_SECONDS) is refused, naming
    /// `field`. Reads the log's position first, so that a change
    /// made between now and the caller's first look is not missed.
    pub(crate) async fn start(
        store: &Arc<Store>,
        field: &str,
        seconds: u32,
        context: &RequestContext<RoleServer>,
    ) -> Result<Wait, ToolFailure> {
        if seconds > MAX_WAIT_SECONDS {
            return Err(ToolFailure::invalid(
                field,
                format!("{seconds} is more than {MAX_WAIT_SECONDS}; wait again after that"),
            ));
        }
        let lookout = Lookout::new(store);
        let seen = blocking(store, Store::last_event_seq).await?;
        let started = Instant::now();
        Ok(Wait {
            store: Arc::clone(store),
            started,
            deadline: started + Duration::from_secs(seconds.into()),
            seen,
            lookout,
            context: context.clone(),
            progress: context.meta.get_progress_token(),
            next_progress: started,
        })
    }

    /// How long the call has waited so far.
    pub(crate) fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until something may have changed: `true` means look again, `false` that the
    /// wait is over (the deadline passed or the client cancelled). `due` is a time, by the
    /// store's clock, when the answer changes without any event (a retry falling due);
    /// `why` says, in progress notifications, what the call waits for.
    pub(crate) async fn changed(
        &mut self,
        due: Option<DateTime<Utc>>,
        why: &str,
    ) -> Result<bool, ToolFailure> {
        let due = match due {
            Some(at) => {
                let from_now = blocking(&self.store, move |store| store.time_until(at)).await?;
                Some(Instant::now() + from_now)
            }
            None => None,
        };
        loop {
            let now = Instant::now();
            if self.context.ct.is_cancelled() || now >= self.deadline {
                return Ok(false);
            }
            if due.is_some_and(|due| now >= due) {
                return Ok(true);
            }
            self.tell_progress(why).await;
            let mut nap = LOOK_EVERY.min(self.deadline - now);
            if let Some(due) = due {
                nap = nap.min(due - now);
            }
            tokio::select! {
                () = self.context.ct.cancelled() => return Ok(false),
                () = tokio::time::sleep(nap) => {}
            }
            if !self.lookout.due(&self.store) {
                continue;
            }
            let head = blocking(&self.store, Store::last_event_seq).await?;
            if head != self.seen {
                self.seen = head;
                return Ok(true);
            }
        }
    }

    async fn tell_progress(&mut self, why: &str) {
        let Some(token) = &self.progress else {
            return;
        };
        if Instant::now() < self.next_progress {
            return;
        }
        self.next_progress = Instant::now() + PROGRESS_EVERY;
        let total = self.deadline - self.started;
        let param = ProgressNotificationParam::new(token.clone(), self.waited().as_secs_f64())
            .with_total(total.as_secs_f64())
            .with_message(format!("waiting: {why}"));
        // A client gone away is not this call's failure: the wait ends by the deadline or the
        // cancellation either way.
        if let Err(error) = self.context.peer.notify_progress(param).await {
            tracing::debug!(%error, "could not send a progress notification");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookout_reads_when_notices_move_or_are_missing_and_now_and_then_without_them() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // Without notifications, every look reads.
        let mut polling = Lookout {
            notices: None,
            read_at: start,
        };
        assert!(polling.due_with(None, at(100)));
        assert!(polling.due_with(None, at(200)));
        // With them, a look reads only when the count moved, or after LOOK_ANYWAY_EVERY.
        let mut notified = Lookout {
            notices: Some(3),
            read_at: start,
        };
        assert!(!notified.due_with(Some(3), at(100)));
        assert!(notified.due_with(Some(4), at(200)));
        assert!(!notified.due_with(Some(4), at(300)));
        assert!(notified.due_with(Some(4), at(2_300)));
        assert!(!notified.due_with(Some(4), at(2_400)));
        // Losing the listener falls back to reading at every look.
        assert!(notified.due_with(None, at(2_500)));
        assert!(notified.due_with(None, at(2_600)));
    }
}
