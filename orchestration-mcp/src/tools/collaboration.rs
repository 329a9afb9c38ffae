//! Collaboration tool: `agent_collaboration` (handoffs, messages, locks, teams).

use chrono::Duration;
use orchestration_core::{
    LeaseToken, WorkflowRef, collaboration::Lock, collaboration::LockMode, collaboration::Resource,
    store::Delivery, store::LockOutcome, store::Message, store::Recipients, text::counted,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::args::Parameters;
use crate::auth::check_acting_as;
use crate::error::ToolFailure;
use crate::output::{Cut, SHOWN, SHOWN_FULL, Structured, output_schema, page};
use crate::server::OrchestrationServer;
use crate::tools::task::TaskOut;
use crate::tools::{blocking, need, task_arg, time, unused};
use crate::wait::Wait;

/// The bodies an inbox read hands out at most, by text weight: with the longest message it
/// still fits the result budget.
const INBOX_BYTES: usize = 24 * 1024;

// What to do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CollaborationActionIn {
    Handoff,
    Message,
    Inbox,
    Ack,
    Lock,
    Unlock,
    Locks,
    Team,
}

impl CollaborationActionIn {
    fn name(self) -> &'static str {
        match self {
            CollaborationActionIn::Handoff => "handoff",
            CollaborationActionIn::Message => "message",
            CollaborationActionIn::Inbox => "inbox",
            CollaborationActionIn::Ack => "ack",
            CollaborationActionIn::Lock => "lock",
            CollaborationActionIn::Unlock => "unlock",
            CollaborationActionIn::Locks => "locks",
            CollaborationActionIn::Team => "team",
        }
    }
}

// Lock mode.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModeIn {
    Shared,
    Exclusive,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CollaborationIn {
    action: CollaborationActionIn,
    agent: Option<String>,
    task: Option<String>,
    /// Your lease token
    token: Option<u64>,
    to: Option<String>,
    /// Context, or the message
    #[schemars(length(max = 4000))]
    note: Option<String>,
    /// Its agents; team
    workflow: Option<String>,
    /// To everyone
    broadcast: Option<bool>,
    #[schemars(length(max = 500))]
    ids: Option<Vec<i64>>,
    /// Acknowledge what is read
    ack: Option<bool>,
    /// e.g. a path
    #[schemars(length(max = 500))]
    resource: Option<String>,
    /// Of resources
    prefix: Option<bool>,
    #[schemars(extend("default" = "exclusive"))]
    mode: Option<ModeIn>,
    #[schemars(range(min = 1, max = 86400), extend("default" = 600))]
    ttl_seconds: Option<u32>,
    /// inbox: default 20
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    cursor: Option<String>,
    // inbox only; named plainly enough to go without a description (tools/list's byte budget).
    #[schemars(range(max = 300))]
    wait_seconds: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MessageOut {
    id: i64,
    at: String,
    from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<String>,
    body: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LockOut {
    resource: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    prefix: bool,
    owner: String,
    mode: String,
    expires_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WaitOut {
    waiter: String,
    resource: String,
    mode: String,
    since: String,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct CollaborationOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskOut>,
    /// message: inboxes reached
    #[serde(skip_serializing_if = "Option::is_none")]
    sent: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageOut>>,
    /// inbox: messages still unread after these
    #[serde(skip_serializing_if = "Option::is_none")]
    unread: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged: Option<usize>,
    /// lock: false when others hold it; you are queued as waiting
    #[serde(skip_serializing_if = "Option::is_none")]
    acquired: Option<bool>,
    /// lock: yours, or the holders blocking you; locks: all
    #[serde(skip_serializing_if = "Option::is_none")]
    locks: Option<Vec<LockOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waits: Option<Vec<WaitOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<u32>,
    /// team: skill needs nobody active meets
    #[serde(skip_serializing_if = "Option::is_none")]
    uncovered: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        MessageOut {
            id: m.id,
            at: time(m.at),
            from: m.sender,
            workflow: m.workflow,
            body: m.body,
        }
    }
}

impl From<orchestration_core::store::Wait> for WaitOut {
    fn from(w: orchestration_core::store::Wait) -> Self {
        WaitOut {
            waiter: w.waiter,
            resource: w.resource.to_string(),
            mode: w.mode.to_string(),
            since: time(w.since),
        }
    }
}

fn lock_out(lock: &Lock) -> LockOut {
    LockOut {
        resource: lock.resource.name().to_owned(),
        prefix: lock.resource.is_prefix(),
        owner: lock.owner.clone(),
        mode: lock.mode.to_string(),
        expires_at: time(lock.expires_at),
    }
}

#[tool_router(router = collaboration_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Handoffs with context, messages (inbox: ack, wait), locks (deadlock-checked), a team.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn agent_collaboration(
        &self,
        Parameters(input): Parameters<CollaborationIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<CollaborationOut>, ToolFailure> {
        // Every action that names `agent` acts as that agent: hands off its task, sends as it,
        // reads or acknowledges its inbox, takes or releases its locks.
        if let Some(agent) = &input.agent {
            check_acting_as(&context, agent)?;
        }
        check_fields(&input)?;
        let mut out = CollaborationOut::default();
        let summary = match input.action {
            CollaborationActionIn::Handoff => self.handoff_action(input, &mut out).await?,
            CollaborationActionIn::Message => self.message_action(input, &mut out).await?,
            CollaborationActionIn::Inbox => self.inbox_action(input, &mut out, &context).await?,
            CollaborationActionIn::Ack => self.ack_action(input, &mut out).await?,
            CollaborationActionIn::Lock => self.lock_action(input, &mut out).await?,
            CollaborationActionIn::Unlock => self.unlock_action(input).await?,
            CollaborationActionIn::Locks => self.locks_action(input, &mut out).await?,
            CollaborationActionIn::Team => self.team_action(input, &mut out).await?,
        };
        Ok(Structured::new(summary, out))
    }
}

/// The actions of `agent_collaboration`, one each: decode the arguments, make one core call,
/// fill the output and return the summary line.
impl OrchestrationServer {
    /// Hands the agent's running task to another agent with a note.
    async fn handoff_action(
        &self,
        input: CollaborationIn,
        out: &mut CollaborationOut,
    ) -> Result<String, ToolFailure> {
        let action = input.action.name();
        let agent = need(input.agent, "agent", action)?;
        let task = task_arg("task", &need(input.task, "task", action)?, None)?;
        let token = LeaseToken(need(input.token, "token", action)?);
        let to = need(input.to, "to", action)?;
        let note = input.note.unwrap_or_default();
        let (from, recipient) = (agent.clone(), to.clone());
        let done = blocking(self.store(), move |store| {
            store.handoff(&task, &from, token, &recipient, &note)
        })
        .await?;
        let task = TaskOut::brief(&done.task);
        let summary = format!(
            "handed `{}/{}` from `{agent}` to `{to}`; its next claim starts it",
            done.task.workflow_name, done.task.key
        );
        out.task = Some(task);
        Ok(summary)
    }

    /// Sends a message to one agent, the agents of a workflow, or everyone.
    async fn message_action(
        &self,
        input: CollaborationIn,
        out: &mut CollaborationOut,
    ) -> Result<String, ToolFailure> {
        let action = input.action.name();
        let agent = need(input.agent, "agent", action)?;
        let body = need(input.note, "note", action)?;
        let recipients = match (input.to, input.workflow, input.broadcast.unwrap_or(false)) {
            (Some(to), None, false) => Recipients::Agent(to),
            (None, Some(workflow), false) => {
                Recipients::Workflow(WorkflowRef::from(workflow.as_str()))
            }
            (None, None, true) => Recipients::Broadcast,
            _ => {
                return Err(ToolFailure::invalid(
                    "recipients",
                    "give exactly one of `to`, `workflow`, `broadcast: true`",
                ));
            }
        };
        let whom = match &recipients {
            Recipients::Agent(to) => format!("`{to}`"),
            Recipients::Workflow(workflow) => {
                format!("the other agents holding tasks of `{workflow}`")
            }
            Recipients::Broadcast => "every other registered agent".to_owned(),
        };
        let sent = blocking(self.store(), move |store| {
            store.send_message(&agent, &recipients, &body)
        })
        .await?;
        out.sent = Some(sent);
        Ok(if sent == 0 {
            format!("sent to nobody: there are no {whom}")
        } else {
            format!("sent to {} ({whom})", counted(sent as u64, "inbox"))
        })
    }

    /// Reads the agent's inbox, acknowledging what it hands out when asked.
    async fn inbox_action(
        &self,
        input: CollaborationIn,
        out: &mut CollaborationOut,
        context: &RequestContext<RoleServer>,
    ) -> Result<String, ToolFailure> {
        let action = input.action.name();
        let agent = need(input.agent, "agent", action)?;
        let limit = input.limit.unwrap_or(20);
        let delivery = if input.ack.unwrap_or(false) {
            Delivery::Acknowledge
        } else {
            Delivery::Peek
        };
        let mut wait = match input.wait_seconds {
            Some(seconds) if seconds > 0 => {
                Some(Wait::start(self.store(), "wait_seconds", seconds, context).await?)
            }
            _ => None,
        };
        let (messages, unread) = loop {
            let agent = agent.clone();
            let inbox = blocking(self.store(), move |store| {
                store.inbox(&agent, limit as usize, INBOX_BYTES, delivery)
            })
            .await?;
            let Some(wait) = wait.as_mut().filter(|_| inbox.0.is_empty()) else {
                break inbox;
            };
            if !wait.changed(None, "no message yet").await? {
                break inbox;
            }
        };
        let summary = format!(
            "{}{}; {} unread after these",
            counted(messages.len() as u64, "message"),
            match delivery {
                Delivery::Acknowledge => ", now acknowledged",
                Delivery::Peek => "",
            },
            unread
        );
        out.messages = Some(messages.into_iter().map(MessageOut::from).collect());
        out.unread = Some(unread);
        Ok(summary)
    }

    /// Acknowledges messages of the agent's inbox.
    async fn ack_action(
        &self,
        input: CollaborationIn,
        out: &mut CollaborationOut,
    ) -> Result<String, ToolFailure> {
        let action = input.action.name();
        let agent = need(input.agent, "agent", action)?;
        let ids = need(input.ids, "ids", action)?;
        let count = blocking(self.store(), move |store| store.ack(&agent, &ids)).await?;
        out.acknowledged = Some(count);
        Ok(format!("acknowledged {}", counted(count as u64, "message")))
    }

    /// Takes a lock, or queues the agent as waiting for it.
    async fn lock_action(
        &self,
        input: CollaborationIn,
        out: &mut CollaborationOut,
    ) -> Result<String, ToolFailure> {
        let action = input.action.name();
        let agent = need(input.agent, "agent", action)?;
        let resource = resource(input.resource, input.prefix, action)?;
        let mode = match input.mode.unwrap_or(ModeIn::Exclusive) {
            ModeIn::Shared => LockMode::Shared,
            ModeIn::Exclusive => LockMode::Exclusive,
        };
        let ttl = Duration::seconds(input.ttl_seconds.unwrap_or(600).into());
        let shown = resource.to_string();
        let outcome = blocking(self.store(), move |store| {
            store.lock(&agent, &resource, mode, ttl)
        })
        .await?;
        Ok(match outcome {
            LockOutcome::Acquired(lock) => {
                out.acquired = Some(true);
                out.locks = Some(vec![lock_out(&lock)]);
                format!("locked `{shown}` ({mode}) until {}", time(lock.expires_at))
            }
            LockOutcome::Blocked(holders) => {
                let owners: Vec<String> = holders
                    .iter()
                    .take(SHOWN)
                    .map(|l| format!("`{}`", l.owner))
                    .collect();
                out.acquired = Some(false);
                out.locks = Some(
                    out.truncated
                        .take("locks", holders.iter().map(lock_out), SHOWN),
                );
                format!(
                    "`{shown}` is held by {}; you are queued as waiting, retry later",
                    owners.join(", ")
                )
            }
        })
    }

    /// Releases a lock.
    async fn unlock_action(&self, input: CollaborationIn) -> Result<String, ToolFailure> {
        let action = input.action.name();
        let agent = need(input.agent, "agent", action)?;
        let resource = resource(input.resource, input.prefix, action)?;
        let shown = resource.to_string();
        blocking(self.store(), move |store| store.unlock(&agent, &resource)).await?;
        Ok(format!("released `{shown}`"))
    }

    /// Lists the locks held and the waits, a page at a time.
    async fn locks_action(
        &self,
        input: CollaborationIn,
        out: &mut CollaborationOut,
    ) -> Result<String, ToolFailure> {
        let (held, waits) = blocking(self.store(), |store| store.locks()).await?;
        let all: Vec<LockOut> = held.iter().map(lock_out).collect();
        let (locks, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
        if locks.len() < all.len() {
            out.truncated.note("locks", all.len());
        }
        let summary = format!(
            "{}, {} waiting",
            counted(all.len() as u64, "lock"),
            waits.len()
        );
        out.locks = Some(locks);
        out.next_cursor = next_cursor;
        out.waits = Some(out.truncated.take(
            "waits",
            waits.into_iter().map(WaitOut::from),
            SHOWN_FULL,
        ));
        Ok(summary)
    }

    /// Assembles a team for a workflow.
    async fn team_action(
        &self,
        input: CollaborationIn,
        out: &mut CollaborationOut,
    ) -> Result<String, ToolFailure> {
        let action = input.action.name();
        let workflow = WorkflowRef::from(need(input.workflow, "workflow", action)?.as_str());
        let team = blocking(self.store(), move |store| store.team(&workflow)).await?;
        let members = out
            .truncated
            .take("team", team.members.iter().cloned(), SHOWN_FULL);
        let summary = format!(
            "team of {}: {} (capacity {}){}",
            team.members.len(),
            members
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            team.capacity,
            if team.uncovered.is_empty() {
                String::new()
            } else {
                format!("; nobody has {}", team.uncovered.join("; "))
            }
        );
        out.team = Some(members);
        out.capacity = Some(team.capacity);
        out.uncovered = Some(out.truncated.take("uncovered", team.uncovered, SHOWN));
        Ok(summary)
    }
}

/// The resource an action names: an exact name, or every name under a prefix.
fn resource(
    name: Option<String>,
    prefix: Option<bool>,
    action: &'static str,
) -> Result<Resource, ToolFailure> {
    need(name, "resource", action).map(|name| {
        if prefix.unwrap_or(false) {
            Resource::Prefix(name)
        } else {
            Resource::Exact(name)
        }
    })
}

/// Refuses the fields the action does not use, so that nothing a caller sends is silently
/// ignored.
fn check_fields(input: &CollaborationIn) -> Result<(), ToolFailure> {
    let fields = [
        ("agent", input.agent.is_some()),
        ("task", input.task.is_some()),
        ("token", input.token.is_some()),
        ("to", input.to.is_some()),
        ("note", input.note.is_some()),
        ("workflow", input.workflow.is_some()),
        ("broadcast", input.broadcast.is_some()),
        ("ids", input.ids.is_some()),
        ("ack", input.ack.is_some()),
        ("resource", input.resource.is_some()),
        ("prefix", input.prefix.is_some()),
        ("mode", input.mode.is_some()),
        ("ttl_seconds", input.ttl_seconds.is_some()),
        ("limit", input.limit.is_some()),
        ("cursor", input.cursor.is_some()),
        ("wait_seconds", input.wait_seconds.is_some()),
    ];
    let allowed: &[&str] = match input.action {
        CollaborationActionIn::Handoff => &["agent", "task", "token", "to", "note"],
        CollaborationActionIn::Message => &["agent", "to", "note", "workflow", "broadcast"],
        CollaborationActionIn::Inbox => &["agent", "ack", "limit", "wait_seconds"],
        CollaborationActionIn::Ack => &["agent", "ids"],
        CollaborationActionIn::Lock => &["agent", "resource", "prefix", "mode", "ttl_seconds"],
        CollaborationActionIn::Unlock => &["agent", "resource", "prefix"],
        CollaborationActionIn::Locks => &["limit", "cursor"],
        CollaborationActionIn::Team => &["workflow"],
    };
    let extra: Vec<(&str, bool)> = fields
        .into_iter()
        .filter(|(field, _)| !allowed.contains(field))
        .collect();
    unused(input.action.name(), &extra)
}
