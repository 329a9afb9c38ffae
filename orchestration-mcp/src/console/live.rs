//! `/live`: the event log as server-sent events, from a given position on. It tails the log
//! (a read of its last position every [`LOOK_EVERY`]), so it sees changes made by any process
//! on the database, not only by this one.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use orchestration_core::Store;
use serde::Deserialize;
use serde_json::json;

use super::{Console, PageError};
use crate::wait::Lookout;

/// What the stream carries from one event to the next: the store, the last position sent,
/// the events read and not sent yet (newest first), and when to read again.
type Tail = (Arc<Store>, i64, Vec<orchestration_core::Event>, Lookout);

/// How often the log is looked at when nothing new was found: the latency of a page update.
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Events read at one look; a page far behind catches up over several.
const EVENTS_PER_LOOK: usize = 200;

#[derive(Debug, Deserialize)]
pub(crate) struct From {
    /// Stream the events after this position; the newest when missing.
    after: Option<i64>,
}

/// Streams events after `after` (or the `Last-Event-ID` a reconnecting browser sends), each
/// with its position as the event's id, as `change` events whose data is the event as JSON.
pub(crate) async fn live(
    State(console): State<Arc<Console>>,
    Query(from): Query<From>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, PageError> {
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let after = match resumed.or(from.after) {
        Some(after) if after < 0 => {
            return Err(PageError::BadRequest(format!(
                "after={after}: a position in the log is 0 or more"
            )));
        }
        Some(after) => after,
        None => super::read(&console, |store| Ok(store.last_event_seq()?)).await?,
    };
    let store = Arc::clone(&console.store);
    let lookout = Lookout::new(&store);
    let events = stream::unfold(
        (store, after, Vec::new(), lookout),
        |(store, mut seen, mut queued, mut lookout): Tail| async move {
            loop {
                if let Some(event) = queued.pop() {
                    seen = event.seq;
                    return Some((Ok(to_sse(&event)), (store, seen, queued, lookout)));
                }
                // An empty batch was just read, or none yet: read again only when it is due.
                if !lookout.due(&store) {
                    tokio::time::sleep(LOOK_EVERY).await;
                    continue;
                }
                let reader = Arc::clone(&store);
                let read =
                    tokio::task::spawn_blocking(move || reader.events_since(seen, EVENTS_PER_LOOK))
                        .await;
                match read {
                    Ok(Ok(batch)) if !batch.is_empty() => {
                        queued = batch;
                        queued.reverse();
                    }
                    Ok(Ok(_)) => tokio::time::sleep(LOOK_EVERY).await,
                    Ok(Err(error)) => {
                        // A busy or briefly unreadable database is looked at again; the
                        // stream ends only when the browser goes away.
                        tracing::warn!(%error, "the live stream could not read the log");
                        tokio::time::sleep(LOOK_EVERY * 10).await;
                    }
                    Err(_) => return None,
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One event of the log as a server-sent event.
fn to_sse(event: &orchestration_core::Event) -> Event {
    let data = json!({
        "seq": event.seq,
        "at": orchestration_core::text::rfc3339(event.at),
        "kind": event.kind.as_str(),
        "workflow": event.workflow_name,
        "task": event.task_key,
        "sprint": event.sprint,
        "agent": event.agent,
        "from": event.from.map(|s| s.as_str()),
        "to": event.to.map(|s| s.as_str()),
        "detail": event.detail,
    });
    Event::default()
        .id(event.seq.to_string())
        .event("change")
        .data(data.to_string())
}
