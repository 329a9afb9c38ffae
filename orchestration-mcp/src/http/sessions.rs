//! MCP sessions that end: rmcp's in-memory sessions behind a table that knows when each was
//! last used and whether a call or a stream is still open on it, closes the ones idle for
//! too long, and refuses new ones past a cap.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId,
};

/// How long sessions live and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session with no request for this long, and no call or stream open, is closed.
    pub idle: Duration,
    /// Past this many open sessions, `initialize` is refused with 503.
    pub max: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(30 * 60),
            max: 2_000,
        }
    }
}

/// Why a session could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("the server holds its maximum of {0} open sessions")]
    Full(usize),
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

/// The open sessions: rmcp's own, plus when each was last used.
#[derive(Debug)]
pub(crate) struct Sessions {
    inner: LocalSessionManager,
    table: Mutex<Table>,
    limits: SessionLimits,
}

#[derive(Debug, Default)]
struct Table {
    sessions: HashMap<SessionId, Activity>,
    /// Sessions being created: counted against the cap before they exist, so that concurrent
    /// `initialize` requests cannot overshoot it.
    reserved: usize,
}

#[derive(Debug)]
struct Activity {
    last: Instant,
    /// Calls waiting for their reply and notification streams: while any is open the session
    /// is in use, however long ago its last request came.
    open: usize,
}

/// How long a finished call's reply stays to be resumed by a client that lost it.
const REPLIES_KEPT_FOR_RESUMPTION: Duration = Duration::from_secs(10);

impl Sessions {
    /// Sessions under `limits`, with a task that closes the idle ones.
    pub(crate) fn start(limits: SessionLimits) -> Arc<Sessions> {
        let mut inner = LocalSessionManager::default();
        // rmcp's own idle timeout counts only messages, so it would close a session whose
        // client holds a notification stream open or waits on a long call; this table's
        // expiry counts those as use.
        inner.session_config.keep_alive = None;
        // rmcp keeps each finished call's reply stream, the reply in it, so that a client
        // whose connection broke before the reply arrived can resume it with
        // `Last-Event-ID`. It keeps them a minute by default: a minute of replies at whatever
        // rate the sessions call, the most of what 32 busy sessions held. A client is told to
        // come back after `sse_retry` (3 s), so ten seconds still serve the reconnect it makes.
        inner.session_config.completed_cache_ttl = REPLIES_KEPT_FOR_RESUMPTION;
        let sessions = Arc::new(Sessions {
            inner,
            table: Mutex::default(),
            limits,
        });
        tokio::spawn(expire(Arc::downgrade(&sessions)));
        sessions
    }

    /// The number of open sessions.
    pub(crate) fn len(&self) -> usize {
        self.table().sessions.len()
    }

    /// The cap on open sessions.
    pub(crate) fn max(&self) -> usize {
        self.limits.max
    }

    /// Whether an `initialize` now would be refused.
    pub(crate) fn is_full(&self) -> bool {
        let table = self.table();
        table.sessions.len() + table.reserved >= self.limits.max
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while holding the lock, and the table stays consistent if it did.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touch(&self, id: &SessionId) {
        if let Some(activity) = self.table().sessions.get_mut(id) {
            activity.last = Instant::now();
        }
    }

    /// Wraps `stream`, a reply or notification stream of session `id`, so that the session
    /// counts as in use until the stream ends or its client goes away.
    fn hold<S>(self: &Arc<Self>, id: &SessionId, stream: S) -> Held<S> {
        if let Some(activity) = self.table().sessions.get_mut(id) {
            activity.open += 1;
            activity.last = Instant::now();
        }
        Held {
            stream,
            _guard: StreamGuard {
                sessions: Arc::downgrade(self),
                id: id.clone(),
            },
        }
    }

    /// Closes the sessions idle for longer than the limit; returns how many.
    async fn close_idle(&self) -> usize {
        let now = Instant::now();
        let expired: Vec<SessionId> = {
            let mut table = self.table();
            let expired: Vec<SessionId> = table
                .sessions
                .iter()
                .filter(|(_, a)| a.open == 0 && now.duration_since(a.last) >= self.limits.idle)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                table.sessions.remove(id);
            }
            expired
        };
        for id in &expired {
            if let Err(error) = self.inner.close_session(id).await {
                tracing::warn!(session = %id, %error, "closing an idle session failed");
            }
        }
        expired.len()
    }
}

/// Closes idle sessions every so often, until the sessions are dropped.
async fn expire(sessions: Weak<Sessions>) {
    let Some(idle) = sessions.upgrade().map(|s| s.limits.idle) else {
        return;
    };
    // A session lives at most a quarter of its idle time past its limit.
    let period = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        let closed = sessions.close_idle().await;
        if closed > 0 {
            tracing::info!(
                closed,
                open = sessions.len(),
                idle_secs = idle.as_secs_f64(),
                "closed idle MCP sessions"
            );
        }
    }
}

/// A stream that keeps its session in use while it lives.
struct Held<S> {
    stream: S,
    _guard: StreamGuard,
}

struct StreamGuard {
    sessions: Weak<Sessions>,
    id: SessionId,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(sessions) = self.sessions.upgrade()
            && let Some(activity) = sessions.table().sessions.get_mut(&self.id)
        {
            activity.open = activity.open.saturating_sub(1);
            activity.last = Instant::now();
        }
    }
}

impl<S: Stream + Unpin> Stream for Held<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

/// The session table shared by the HTTP service and the layers that read it.
#[derive(Debug, Clone)]
pub(crate) struct SharedSessions(pub(crate) Arc<Sessions>);

impl SessionManager for SharedSessions {
    type Error = SessionError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), SessionError> {
        let sessions = &self.0;
        {
            let mut table = sessions.table();
            if table.sessions.len() + table.reserved >= sessions.limits.max {
                return Err(SessionError::Full(sessions.limits.max));
            }
            table.reserved += 1;
        }
        let created = sessions.inner.create_session().await;
        let mut table = sessions.table();
        table.reserved -= 1;
        let (id, transport) = created?;
        table.sessions.insert(
            id.clone(),
            Activity {
                last: Instant::now(),
                open: 0,
            },
        );
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, SessionError> {
        self.0.touch(id);
        Ok(self.0.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, SessionError> {
        // Every request naming a session asks this first: that is its use.
        self.0.touch(id);
        Ok(self.0.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), SessionError> {
        self.0.table().sessions.remove(id);
        Ok(self.0.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        let stream = self.0.inner.create_stream(id, message).await?;
        Ok(self.0.hold(id, Box::pin(stream)))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), SessionError> {
        self.0.touch(id);
        Ok(self.0.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        let stream = self.0.inner.create_standalone_stream(id).await?;
        Ok(self.0.hold(id, Box::pin(stream)))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        let stream = self.0.inner.resume(id, last_event_id).await?;
        Ok(self.0.hold(id, Box::pin(stream)))
    }

    async fn restore_session(
        &self,
        _id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, SessionError> {
        // Sessions live in this process only; there is nothing to restore them from.
        Ok(RestoreOutcome::NotSupported)
    }
}
