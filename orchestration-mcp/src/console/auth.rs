//! Who is looking at the console, and whether they may act: the Host and Origin checks, the
//! token (a bearer header or the login cookie), and the single-use CSRF tokens of forms.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Console, PageError};
use crate::auth::{bearer_token, constant_time_eq};

/// The cookie the login form sets: it holds the token, is sent only to this server, never to
/// scripts, and never on requests from other sites.
pub(crate) const COOKIE: &str = "orchestration_console";

/// What the caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Look only: no token is needed, or an agent's token was given.
    Reader,
    /// Look and act: the shared token was given.
    Operator,
}

/// The caller of one request, as the pages need it.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// What the caller may do.
    pub(crate) role: Role,
    /// Whether the caller came in with the login cookie, so the page offers to log out.
    pub(crate) by_cookie: bool,
    /// Whether an operator token exists on this server, so the page can say how to act.
    pub(crate) operators_exist: bool,
    console: Arc<Console>,
}

impl Viewer {
    /// A fresh single-use CSRF token for one form.
    pub(crate) fn nonce(&self) -> String {
        self.console.nonces.issue()
    }

    /// Whether the caller may act.
    pub(crate) fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }
}

/// Checks the request's Host and Origin and its token, and notes the caller as a [`Viewer`]
/// in its extensions. The login page and the assets need no token; everything else does when
/// the server has tokens.
pub(crate) async fn check(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let access = &console.access;
    let headers = request.headers();
    let Some(host) = host_allowed(headers, &access.allowed_hosts) else {
        return (StatusCode::FORBIDDEN, "this Host is not served here").into_response();
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let own = format!("http://{host}");
        let allowed = origin == own
            || access
                .allowed_origins
                .iter()
                .any(|pattern| origin_matches(pattern, origin));
        if !allowed {
            return (StatusCode::FORBIDDEN, "this Origin is not served here").into_response();
        }
    }
    let (given, by_cookie) = match bearer(headers) {
        Some(token) => (Some(token.to_owned()), false),
        None => (cookie(headers, COOKIE).map(str::to_owned), true),
    };
    let shared = access.token.as_deref();
    let operator = match (&given, shared) {
        (Some(given), Some(shared)) => constant_time_eq(given.as_bytes(), shared.as_bytes()),
        _ => false,
    };
    let agent = given
        .as_deref()
        .is_some_and(|given| access.agent_tokens.agent_of(given).is_some());
    let needs_token = shared.is_some() || !access.agent_tokens.is_empty();
    let path = request.uri().path();
    let open = path == "/login" || path.starts_with("/assets/");
    if needs_token && !operator && !agent && !open {
        if given.is_some() {
            return PageError::Forbidden("that token is not valid here; log in again".into())
                .into_response();
        }
        // Pages send a browser to the login form; the stream and the metrics, read by
        // programs, are refused outright.
        if request.method() == Method::GET && path != "/live" && path != "/metrics" {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            return Redirect::to(&format!("/login?next={}", encode(&target))).into_response();
        }
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "log in at /login or send Authorization: Bearer TOKEN",
        )
            .into_response();
    }
    let viewer = Viewer {
        role: if operator {
            Role::Operator
        } else {
            Role::Reader
        },
        by_cookie: by_cookie && given.is_some(),
        operators_exist: shared.is_some(),
        console: Arc::clone(&console),
    };
    request.extensions_mut().insert(viewer);
    next.run(request).await
}

/// The request's Host when it is one of `allowed` (with or without its port).
fn host_allowed<'a>(headers: &'a HeaderMap, allowed: &[String]) -> Option<&'a str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = strip_port(host);
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name))
        .then_some(host)
}

/// `host` without a trailing `:port`; a bracketed IPv6 address keeps its brackets.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether `origin` matches `pattern`: equal, or for a pattern ending in `:*`, the same
/// scheme and host with any port.
pub(crate) fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.strip_suffix(":*") {
        Some(prefix) => origin
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())),
        None => pattern == origin,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Percent-encodes `text` for a query value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How long a form's CSRF token stays good: a page left open longer is reloaded by its
/// script on the next change anyway.
const NONCE_LIFE: Duration = Duration::from_secs(60 * 60);

/// The most CSRF tokens outstanding; past it the oldest are forgotten, so a client rendering
/// pages in a loop cannot make the server hold more.
const MAX_NONCES: usize = 20_000;

/// Single-use CSRF tokens: each form gets its own, random and unguessable, which one POST
/// spends. A forged form has none; a replayed one has a spent one.
#[derive(Debug, Default)]
pub(crate) struct Nonces {
    issued: Mutex<Issued>,
}

#[derive(Debug, Default)]
struct Issued {
    live: HashMap<String, Instant>,
    order: VecDeque<String>,
}

impl Nonces {
    /// A new token.
    pub(crate) fn issue(&self) -> String {
        let mut bytes = [0u8; 16];
        // The system's random source failing is not something a page can recover from; a
        // token of zeros would be guessable, so fail the request instead.
        getrandom::fill(&mut bytes).expect("the system's random source works");
        let nonce: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        while issued.order.len() >= MAX_NONCES {
            if let Some(old) = issued.order.pop_front() {
                issued.live.remove(&old);
            }
        }
        issued.live.insert(nonce.clone(), Instant::now());
        issued.order.push_back(nonce.clone());
        nonce
    }

    /// Spends `nonce`: true when it was issued, is unspent and has not expired.
    pub(crate) fn spend(&self, nonce: &str) -> bool {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        match issued.live.remove(nonce) {
            Some(at) => at.elapsed() < NONCE_LIFE,
            None => false,
        }
    }
}

impl Console {
    /// Spends the form's CSRF token, or refuses the action.
    pub(crate) fn spend(&self, nonce: &str) -> Result<(), PageError> {
        if self.nonces.spend(nonce) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "this form was already sent, has expired or did not come from this console; \
                 reload the page and try again"
                    .into(),
            ))
        }
    }
}
