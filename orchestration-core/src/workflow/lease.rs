//! The lease-holder check: whether an agent may act on a task as the holder of its lease.
//! Reports, handoffs and claims of a named task all ask it, so a stale, foreign or expired
//! lease gets the same answer whatever the call.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::LeaseToken;

use super::state::TaskState;

/// What the check needs to know of a task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseHolder<'a> {
    /// `workflow/key`, for messages.
    pub(crate) task: &'a str,
    /// The task's state.
    pub(crate) state: TaskState,
    /// The agent holding its lease, if any.
    pub(crate) holder: Option<&'a str>,
    /// Its current fencing token.
    pub(crate) token: LeaseToken,
    /// When its lease runs out.
    pub(crate) deadline: Option<DateTime<Utc>>,
}

impl LeaseHolder<'_> {
    /// Refuses `agent` when another agent holds the lease.
    pub(crate) fn check_not_foreign(&self, agent: &str) -> Result<()> {
        match self.holder {
            Some(holder) if holder != agent => Err(Error::NotLeaseHolder {
                task: self.task.to_owned(),
                agent: agent.to_owned(),
                holder: holder.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses `agent` acting on the running task with `token` at `now` (to do `verb`, for the
    /// message) unless it holds the task's live lease: another agent's lease, a task that is
    /// not running, an old token and a lease that ran out are each refused with their own
    /// error, checked in that order.
    pub(crate) fn check(
        &self,
        agent: &str,
        token: LeaseToken,
        verb: &'static str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.check_not_foreign(agent)?;
        if self.state != TaskState::Running {
            // A finished task says so: "stale lease" would send a caller that retried its own
            // completion off to claim it again.
            if token < self.token && !self.state.is_terminal() {
                return Err(self.stale(token));
            }
            return Err(Error::IllegalTransition {
                task: self.task.to_owned(),
                state: self.state,
                verb,
            });
        }
        if token != self.token {
            return Err(self.stale(token));
        }
        if let Some(deadline) = self.deadline
            && deadline <= now
        {
            return Err(Error::LeaseExpired {
                task: self.task.to_owned(),
                expired_at: deadline,
            });
        }
        Ok(())
    }

    fn stale(&self, presented: LeaseToken) -> Error {
        Error::StaleLease {
            task: self.task.to_owned(),
            presented: presented.0,
            current: self.token.0,
        }
    }
}
