//! The limits every spec and call is held to, in one place. They keep one bad request from
//! filling the database or the model's context, and one call from holding the writer for long.
//! The public ones are part of the contract (the adapter's schemas quote them); the others bound
//! the store's own work.

use chrono::Duration;

/// Characters in a workflow name, task key, agent name, sprint name or skill name.
pub const MAX_NAME_LEN: usize = 64;
/// The naming rule of every name, as a message says it.
pub const NAME_RULE: &str =
    "names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit";
/// The naming rule as a regular expression (ECMA-262, as JSON Schema uses), for schemas.
pub const NAME_PATTERN: &str = r"^[A-Za-z0-9][\w.-]{0,63}$";
/// Characters in a task title.
pub const MAX_TITLE_LEN: usize = 200;
/// Characters in a description or a note.
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
/// Characters in a message or a handoff note: a message is read whole, so it must fit in
/// one answer of a tool, whatever its characters.
pub const MAX_MESSAGE_LEN: usize = 4_000;
/// Characters in a task's result.
pub const MAX_RESULT_LEN: usize = 100_000;
/// Tasks in one workflow.
pub const MAX_TASKS: usize = 100_000;
/// Direct dependencies of one task.
pub const MAX_DEPENDENCIES: usize = 1_000;
/// Skills one task may require.
pub const MAX_SKILLS: usize = 32;
/// The largest estimate, in points.
pub const MAX_ESTIMATE: f64 = 10_000.0;
/// The largest `max_attempts`.
pub const MAX_ATTEMPTS: u32 = 100;
/// The longest lease, in seconds (one day).
pub const MAX_LEASE_SECONDS: i64 = 86_400;
/// Skills in one agent's profile.
pub const MAX_CAPABILITIES: usize = 100;
/// Messages acknowledged in one call.
pub const MAX_ACK_IDS: usize = 500;
/// The longest a call may wait for work or messages, in seconds. Clients commonly give up
/// on a request after a minute unless progress arrives, and waiting calls send progress.
pub const MAX_WAIT_SECONDS: u32 = 300;

/// Characters in an idempotency key.
pub(crate) const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
/// Ready tasks looked at, at most, for one claim, before giving up on finding one the agent
/// has the skills for.
pub(crate) const CLAIM_SCAN_LIMIT: usize = 10_000;
/// Tasks of one priority looked at, at most, for the best fit: among tasks of equal priority,
/// an agent with a profile gets the one its skills fit best.
pub(crate) const FIT_SCAN_LIMIT: usize = 200;
/// The longest sprint, in days.
pub(crate) const MAX_SPRINT_DAYS: i64 = 366;
/// The most Monte Carlo trials a caller may ask for.
pub(crate) const MAX_TRIALS: u32 = 100_000;
/// The most tasks one scope change may name.
pub(crate) const MAX_SCOPE_EDIT: usize = 10_000;
/// The longest a lock or a wait may last before it must be renewed: one day.
pub(crate) const MAX_LOCK_TTL: Duration = Duration::days(1);
/// The longest window of agent performance, in days (ten years).
pub const MAX_WINDOW_DAYS: u32 = 3_650;
