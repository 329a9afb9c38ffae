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
pub(crate) const LOOK_ANYWAY_EVERY: Duration = Duration::from_secs(2);

/// How often a waiting call tells a client that asked for progress that it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One call's wait.
pub(crate) struct Wait {
    store: Arc<Store>,
    started: Instant,
    deadline: Instant,
    /// The log's position when the caller last looked.
    seen: i64,
    /// The server's count of change notices at the last look, and when that was: with
    /// notifications, the log is read only when the count moved (see
    /// [`Store::change_notices`]).
    notices: Option<u64>,
    looked: Instant,
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
        let notices = store.change_notices();
        let seen = blocking(store, Store::last_event_seq).await?;
        let started = Instant::now();
        Ok(Wait {
            store: Arc::clone(store),
            started,
            deadline: started + Duration::from_secs(seconds.into()),
            seen,
            notices,
            looked: started,
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
            let notices = self.store.change_notices();
            if notices.is_some()
                && notices == self.notices
                && self.looked.elapsed() < LOOK_ANYWAY_EVERY
            {
                continue;
            }
            self.notices = notices;
            self.looked = Instant::now();
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
