//! Who is calling. Over HTTP with per-agent tokens, each bearer token belongs to one agent; the
//! HTTP layer puts that agent's name into the request's extensions, and the tools that act for
//! an agent refuse to act for any other.
//!
//! Over stdio, and over HTTP with only the shared token, the caller is trusted to speak for any
//! agent: the process or the token holder is the trust boundary there.

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::error::ToolFailure;

/// The agent an HTTP request authenticated as, by its per-agent bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedAgent(pub String);

/// Per-agent bearer tokens: which token belongs to which agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentTokens(Vec<(String, String)>);

impl AgentTokens {
    /// Parses lines of `agent=token`; blank lines and lines starting with `#` are skipped.
    /// Agent names and tokens must be unique, and tokens at least 16 characters long, so that
    /// they cannot be guessed.
    pub fn parse(text: &str) -> Result<AgentTokens, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((agent, token)) = line.split_once('=') else {
                return Err(format!("line {number}: expected `agent=token`"));
            };
            let (agent, token) = (agent.trim(), token.trim());
            if agent.is_empty() {
                return Err(format!("line {number}: the agent name is empty"));
            }
            if token.chars().count() < 16 {
                return Err(format!(
                    "line {number}: the token of `{agent}` is shorter than 16 characters"
                ));
            }
            if pairs.iter().any(|(a, _)| a == agent) {
                return Err(format!("line {number}: `{agent}` has a second token"));
            }
            if pairs.iter().any(|(_, t)| t == token) {
                return Err(format!(
                    "line {number}: this token is already another agent's"
                ));
            }
            pairs.push((agent.to_owned(), token.to_owned()));
        }
        Ok(AgentTokens(pairs))
    }

    /// Whether no agent has a token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The agent `token` belongs to. Compares against every token in full, so the time taken
    /// reveals neither which agent nor how much of a token matched.
    pub(crate) fn agent_of(&self, token: &str) -> Option<&str> {
        let mut found = None;
        for (agent, known) in &self.0 {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(agent.as_str());
            }
        }
        found
    }
}

/// The token of an `Authorization` header value in the `Bearer` scheme, or `None` for another
/// scheme or no token. Auth schemes are case-insensitive (RFC 9110 §11.1), so `bearer` and
/// `BEARER` count too, and any run of spaces or tabs may separate the scheme from the token.
/// Only the scheme is compared here; the token, which is secret, is compared in constant time
/// by the caller.
pub(crate) fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once([' ', '\t'])?;
    let token = token.trim_matches([' ', '\t']);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares without returning early, so the time taken does not reveal how much matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The agent the request authenticated as, when it came over HTTP with a per-agent token.
pub(crate) fn authenticated(context: &RequestContext<RoleServer>) -> Option<&str> {
    context
        .extensions
        .get::<axum::http::request::Parts>()?
        .extensions
        .get::<AuthenticatedAgent>()
        .map(|agent| agent.0.as_str())
}

/// Refuses a call that acts as `agent` from a caller authenticated as someone else.
pub(crate) fn check_acting_as(
    context: &RequestContext<RoleServer>,
    agent: &str,
) -> Result<(), ToolFailure> {
    match authenticated(context) {
        Some(me) if me != agent => Err(ToolFailure::Tool(format!(
            "not authorised: you are authenticated as `{me}` and cannot act as `{agent}`"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a call only an operator may make (one that moves other agents' work) from a caller
/// authenticated as an agent.
pub(crate) fn check_operator(
    context: &RequestContext<RoleServer>,
    what: &str,
) -> Result<(), ToolFailure> {
    match authenticated(context) {
        Some(me) => Err(ToolFailure::Tool(format!(
            "not authorised: `{me}` authenticated as an agent and cannot {what}; use the \
             shared token"
        ))),
        None => Ok(()),
    }
}
