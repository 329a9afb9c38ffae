//! Connections: a listener that caps how many are open, and how many one address holds, and
//! makes room for a newcomer by closing the connection that has waited longest without a
//! request in progress; each connection closes itself when its request head is slow to come,
//! when it idles too long between requests, or when its client stops reading.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// File descriptors kept back from connections for everything else the process opens: the
/// database and its journal on two connections, the listener, the runtime's own.
pub const RESERVED_FILES: u64 = 128;

/// The most connections allowed by default, however high the file limit: each holds some
/// tens of kilobytes, and a team's agents need far fewer.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;

/// How long connections may wait, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's head (request line and headers) must arrive within this long from the
    /// connection's opening or from its first byte.
    pub header_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A connection whose client has read nothing of what it was sent for this long is
    /// closed, and with it the stream it was reading.
    pub write_timeout: Duration,
    /// Connections open at once.
    pub max: usize,
    /// Connections open at once from one address.
    pub per_peer: usize,
}

impl ConnectionLimits {
    /// The defaults, with `max` connections of which one address may hold half.
    pub fn with_max(max: usize) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max,
            per_peer: max.div_ceil(2),
        }
    }
}

/// What a connection is doing, for its timeouts and for choosing whom to close.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's head since this instant (the opening, or its first byte).
    AwaitingHead(Instant),
    /// Serving this many requests.
    Busy(usize),
    /// Kept alive with nothing to do since this instant.
    Idle(Instant),
}

/// One open connection, as its IO, its requests and the listener see it.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    peer: IpAddr,
    phase: Mutex<Phase>,
    evicted: AtomicBool,
    waker: AtomicWaker,
}

impl Slot {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A request's head has arrived: until its response is sent, no timeout applies.
    pub(crate) fn begin_request(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::AwaitingHead(_) | Phase::Idle(_) => Phase::Busy(1),
        };
    }

    /// A response has been sent whole, or dropped.
    pub(crate) fn end_request(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
        drop(phase);
        // The connection's task may be waiting on a read with no deadline; wake it so that
        // it arms the idle one.
        self.waker.wake();
    }

    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::AwaitingHead(Instant::now());
        }
    }

    fn read_deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        match *self.phase() {
            Phase::AwaitingHead(since) => Some(since + limits.header_timeout),
            Phase::Idle(since) => Some(since + limits.idle_timeout),
            Phase::Busy(_) => None,
        }
    }

    /// When this connection started waiting, if it is not serving anything, and whether it
    /// waits in the middle of a request's head (the mark of a client that will never finish).
    fn waiting(&self) -> Option<(bool, Instant)> {
        match *self.phase() {
            Phase::AwaitingHead(since) => Some((true, since)),
            Phase::Idle(since) => Some((false, since)),
            Phase::Busy(_) => None,
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The open connections, by id, and how many each address holds.
#[derive(Debug, Default)]
struct Registry {
    slots: HashMap<u64, Arc<Slot>>,
    per_peer: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Registry {
    fn remove(&mut self, id: u64) {
        if let Some(slot) = self.slots.remove(&id)
            && let Some(count) = self.per_peer.get_mut(&slot.peer)
        {
            *count -= 1;
            if *count == 0 {
                self.per_peer.remove(&slot.peer);
            }
        }
    }

    /// The connection to close to make room: among those serving nothing (of `peer` only,
    /// when given), one of the address holding the most, one stuck in a request's head
    /// before one idle between requests, and the longest waiting.
    fn victim(&self, peer: Option<IpAddr>) -> Option<u64> {
        self.slots
            .values()
            .filter(|slot| peer.is_none_or(|p| slot.peer == p))
            .filter_map(|slot| {
                let (in_head, since) = slot.waiting()?;
                let held = self.per_peer.get(&slot.peer).copied().unwrap_or(0);
                Some(((held, in_head, std::cmp::Reverse(since)), slot.id))
            })
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, id)| id)
    }

    fn evict(&mut self, id: u64) {
        if let Some(slot) = self.slots.get(&id) {
            slot.evict();
        }
        self.remove(id);
    }
}

/// The connection table shared by the listener and its connections.
#[derive(Debug, Default)]
struct Table(Mutex<Registry>);

impl Table {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the listener does with a new connection.
enum Admission {
    Open(Arc<Slot>),
    /// Every slot is serving a request: the newcomer is told to come back.
    Refuse,
}

/// A TCP listener under [`ConnectionLimits`].
#[derive(Debug)]
pub(crate) struct Listener {
    listener: TcpListener,
    limits: ConnectionLimits,
    table: Arc<Table>,
}

/// The answer to a connection that finds every slot serving a request, written whole before
/// the connection is closed.
const SERVER_FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Type: text/plain\r\nContent-Length: 35\r\nConnection: close\r\n\r\n\
the server has no free connections\n";

impl Listener {
    pub(crate) fn new(listener: TcpListener, limits: ConnectionLimits) -> Listener {
        Listener {
            listener,
            limits,
            table: Arc::default(),
        }
    }

    fn admit(&self, peer: IpAddr) -> Admission {
        let mut registry = self.table.lock();
        let held = registry.per_peer.get(&peer).copied().unwrap_or(0);
        let room = if held >= self.limits.per_peer {
            registry.victim(Some(peer))
        } else if registry.slots.len() >= self.limits.max {
            registry.victim(None)
        } else {
            None
        };
        let full = held >= self.limits.per_peer || registry.slots.len() >= self.limits.max;
        match room {
            Some(victim) => registry.evict(victim),
            None if full => return Admission::Refuse,
            None => {}
        }
        let id = registry.next_id;
        registry.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            peer,
            phase: Mutex::new(Phase::AwaitingHead(Instant::now())),
            evicted: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        registry.slots.insert(id, Arc::clone(&slot));
        *registry.per_peer.entry(peer).or_default() += 1;
        Admission::Open(slot)
    }
}

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = Peer;

    async fn accept(&mut self) -> (Connection, Peer) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: close a waiting connection to
                    // free one, and let the kernel's queue hold the newcomer meanwhile.
                    tracing::warn!(%error, "accepting a connection failed");
                    {
                        let mut registry = self.table.lock();
                        if let Some(victim) = registry.victim(None) {
                            registry.evict(victim);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            match self.admit(addr.ip()) {
                Admission::Open(slot) => {
                    // Replies stream as server-sent events in several small writes; with
                    // Nagle's algorithm on, each waited for the client's delayed
                    // acknowledgement, about 40 ms per call.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "could not set TCP_NODELAY");
                    }
                    let connection = Connection {
                        stream,
                        slot: Arc::clone(&slot),
                        table: Arc::clone(&self.table),
                        limits: self.limits,
                        read_timer: None,
                        write_timer: None,
                        stalled_since: None,
                    };
                    return (
                        connection,
                        Peer {
                            addr,
                            slot: Some(slot),
                        },
                    );
                }
                Admission::Refuse => {
                    tracing::debug!(%addr, "no free connection: refused");
                    // A fresh socket's send buffer is empty: the short answer goes out
                    // whole or not at all, without waiting.
                    let _ = stream.try_write(SERVER_FULL);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer {
            addr: self.listener.local_addr()?,
            slot: None,
        })
    }
}

/// Where a request came from, and the connection that carries it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    slot: Option<Arc<Slot>>,
}

impl Peer {
    /// The connection this request came on; `None` only for the listener's own address.
    pub(crate) fn slot(&self) -> Option<&Arc<Slot>> {
        self.slot.as_ref()
    }
}

impl Connected<IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Peer {
        stream.remote_addr().clone()
    }
}

/// An accepted connection: a TCP stream that fails, and so is closed, once it has waited too
/// long or has been chosen to make room.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    slot: Arc<Slot>,
    table: Arc<Table>,
    limits: ConnectionLimits,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    stalled_since: Option<Instant>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.table.lock().remove(self.slot.id);
    }
}

/// Polls a timer set to `deadline`; ready once it has passed.
fn expired(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    if deadline <= Instant::now() {
        return true;
    }
    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut().poll(cx).is_ready()
}

impl Connection {
    fn check_evicted(&self, cx: &mut Context<'_>) -> io::Result<()> {
        self.slot.waker.register(cx.waker());
        if self.slot.evicted.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room for another connection",
            ));
        }
        Ok(())
    }

    /// After a write that could not proceed: fails once the client has read nothing for the
    /// write timeout.
    fn write_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let since = *self.stalled_since.get_or_insert_with(Instant::now);
        if expired(&mut self.write_timer, since + self.limits.write_timeout, cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check_evicted(cx)?;
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.slot.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let this = &mut *self;
                match this.slot.read_deadline(&this.limits) {
                    Some(deadline) if expired(&mut this.read_timer, deadline, cx) => {
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no request in time",
                        )))
                    }
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check_evicted(cx)?;
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Pending => self.write_stalled(cx),
            done => {
                self.stalled_since = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_evicted(cx)?;
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.write_stalled(cx),
            done => {
                self.stalled_since = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The most connections the file limit leaves room for, after raising the soft limit to the
/// hard one as servers do: the limit, less [`RESERVED_FILES`].
pub fn connection_room() -> io::Result<(u64, usize)> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let room = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    Ok((limit, room))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use futures::task::AtomicWaker;
    use tokio::time::Instant;

    use super::{Phase, Registry, Slot};

    /// A registry holding connections of (peer, phase), with ids in that order.
    fn registry(connections: &[(&str, Phase)]) -> Registry {
        let mut registry = Registry::default();
        for (peer, phase) in connections {
            let peer: IpAddr = peer.parse().unwrap();
            let id = registry.next_id;
            registry.next_id += 1;
            let slot = Slot {
                id,
                peer,
                phase: Mutex::new(*phase),
                evicted: AtomicBool::new(false),
                waker: AtomicWaker::new(),
            };
            registry.slots.insert(id, Arc::new(slot));
            *registry.per_peer.entry(peer).or_default() += 1;
        }
        registry
    }

    #[test]
    fn room_is_made_by_closing_a_waiting_connection_of_the_biggest_holder() {
        let now = Instant::now();
        let ago = |secs| now - Duration::from_secs(secs);
        let (a, b) = ("10.0.0.1", "10.0.0.2");
        // The biggest holder's connection stuck in its headers goes first, even if younger.
        let registry = registry(&[
            (a, Phase::Idle(ago(50))),
            (b, Phase::AwaitingHead(ago(30))),
            (b, Phase::AwaitingHead(ago(5))),
            (b, Phase::Busy(1)),
        ]);
        assert_eq!(registry.victim(None), Some(1));
        // Of one holder: stuck in its headers before idle, then the longest waiting.
        let registry = registry_of_one(a, now);
        assert_eq!(registry.victim(None), Some(1));
        assert_eq!(registry.victim(Some(b.parse().unwrap())), None);
        // A connection serving a request is never chosen.
        let busy = registry_all_busy(a);
        assert_eq!(busy.victim(None), None);
    }

    fn registry_of_one(peer: &str, now: Instant) -> Registry {
        registry(&[
            (peer, Phase::Idle(now - Duration::from_secs(100))),
            (peer, Phase::AwaitingHead(now - Duration::from_secs(20))),
            (peer, Phase::AwaitingHead(now - Duration::from_secs(10))),
        ])
    }

    fn registry_all_busy(peer: &str) -> Registry {
        registry(&[(peer, Phase::Busy(1)), (peer, Phase::Busy(2))])
    }

    #[test]
    fn a_connection_is_busy_from_a_request_to_the_end_of_its_last_response() {
        let registry = registry(&[("10.0.0.1", Phase::AwaitingHead(Instant::now()))]);
        let slot = &registry.slots[&0];
        slot.begin_request();
        slot.begin_request();
        assert!(slot.waiting().is_none());
        slot.end_request();
        assert!(slot.waiting().is_none(), "one response is still going");
        slot.end_request();
        assert!(matches!(slot.waiting(), Some((false, _))), "idle");
        slot.bytes_read();
        assert!(
            matches!(slot.waiting(), Some((true, _))),
            "in a request's head"
        );
    }
}
