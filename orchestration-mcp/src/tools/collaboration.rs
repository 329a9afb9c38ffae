//! Collaboration tool: `agent_collaboration` (handoffs, messages, locks, teams).

use chrono::Duration;
use orchestration_core::{
    LeaseToken, LockMode, LockOutcome, Recipients, Resource, TaskRef, WorkflowRef,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::check_acting_as;
use crate::error::{ToolFailure, to_mcp};
use crate::output::{Structured, output_schema};
use crate::server::OrchestrationServer;
use crate::tools::task::TaskOut;
use crate::tools::{blocking, need, time};

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
    /// You
    agent: Option<String>,
    /// handoff: `workflow/key`
    task: Option<String>,
    /// handoff: your lease token
    token: Option<u64>,
    /// recipient agent
    to: Option<String>,
    /// handoff context, or message text
    note: Option<String>,
    /// message its agents; team
    workflow: Option<String>,
    /// message: everyone
    broadcast: Option<bool>,
    /// ack: message ids
    ids: Option<Vec<i64>>,
    /// inbox: acknowledge them
    ack: Option<bool>,
    /// e.g. a path
    resource: Option<String>,
    /// resource is a prefix
    prefix: Option<bool>,
    /// lock: default exclusive
    mode: Option<ModeIn>,
    /// lock: default 600
    ttl_seconds: Option<u32>,
    /// inbox: default 20
    limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct MessageOut {
    id: i64,
    at: String,
    from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<String>,
    body: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct LockOut {
    resource: String,
    prefix: bool,
    owner: String,
    mode: String,
    expires_at: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct WaitOut {
    waiter: String,
    resource: String,
    mode: String,
    since: String,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct CollaborationOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskOut>,
    /// message: inboxes reached
    #[serde(skip_serializing_if = "Option::is_none")]
    sent: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageOut>>,
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
}

fn lock_out(lock: &orchestration_core::Lock) -> LockOut {
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
    /// Handoff a task with context, message (to, workflow, broadcast), inbox, ack, lock/unlock resources (deadlocks refused), locks, team.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<CollaborationOut>()
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
        let resource = |name: Option<String>, prefix: Option<bool>, action: &str| {
            need(name, "resource", action).map(|name| {
                if prefix.unwrap_or(false) {
                    Resource::Prefix(name)
                } else {
                    Resource::Exact(name)
                }
            })
        };
        match input.action {
            CollaborationActionIn::Handoff => {
                let agent = need(input.agent, "agent", "handoff")?;
                let task: TaskRef = need(input.task, "task", "handoff")?
                    .parse()
                    .map_err(to_mcp)?;
                let token = LeaseToken(need(input.token, "token", "handoff")?);
                let to = need(input.to, "to", "handoff")?;
                let note = input.note.unwrap_or_default();
                let (agent2, to2) = (agent.clone(), to.clone());
                let done = blocking(self.store(), move |store| {
                    store.handoff(&task, &agent2, token, &to2, &note)
                })
                .await?;
                let summary = format!(
                    "handed `{}/{}` from `{agent}` to `{to}`; it claims it next",
                    done.task.workflow_name, done.task.key
                );
                Ok(Structured::new(
                    summary,
                    CollaborationOut {
                        task: Some(TaskOut::from_view(done.task, false)),
                        ..Default::default()
                    },
                ))
            }
            CollaborationActionIn::Message => {
                let agent = need(input.agent, "agent", "message")?;
                let body = need(input.note, "note", "message")?;
                let recipients = match (input.to, input.workflow, input.broadcast.unwrap_or(false))
                {
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
                let sent = blocking(self.store(), move |store| {
                    store.send_message(&agent, &recipients, &body)
                })
                .await?;
                Ok(Structured::new(
                    format!("sent to {sent} inbox(es)"),
                    CollaborationOut {
                        sent: Some(sent),
                        ..Default::default()
                    },
                ))
            }
            CollaborationActionIn::Inbox => {
                let agent = need(input.agent, "agent", "inbox")?;
                let limit = input.limit.unwrap_or(20);
                if !(1..=500).contains(&limit) {
                    return Err(ToolFailure::invalid(
                        "limit",
                        format!("{limit} is outside 1 to 500"),
                    ));
                }
                let ack = input.ack.unwrap_or(false);
                let messages = blocking(self.store(), move |store| {
                    store.inbox(&agent, limit as usize, ack)
                })
                .await?;
                let summary = format!(
                    "{} unread message(s){}",
                    messages.len(),
                    if ack { ", now acknowledged" } else { "" }
                );
                let messages = messages
                    .into_iter()
                    .map(|m| MessageOut {
                        id: m.id,
                        at: time(m.at),
                        from: m.sender,
                        workflow: m.workflow,
                        body: m.body,
                    })
                    .collect();
                Ok(Structured::new(
                    summary,
                    CollaborationOut {
                        messages: Some(messages),
                        ..Default::default()
                    },
                ))
            }
            CollaborationActionIn::Ack => {
                let agent = need(input.agent, "agent", "ack")?;
                let ids = need(input.ids, "ids", "ack")?;
                let count = blocking(self.store(), move |store| store.ack(&agent, &ids)).await?;
                Ok(Structured::new(
                    format!("acknowledged {count} message(s)"),
                    CollaborationOut {
                        acknowledged: Some(count),
                        ..Default::default()
                    },
                ))
            }
            CollaborationActionIn::Lock => {
                let agent = need(input.agent, "agent", "lock")?;
                let resource = resource(input.resource, input.prefix, "lock")?;
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
                let (acquired, locks, summary) = match outcome {
                    LockOutcome::Acquired(lock) => (
                        true,
                        vec![lock_out(&lock)],
                        format!("locked `{shown}` ({mode}) until {}", time(lock.expires_at)),
                    ),
                    LockOutcome::Blocked(holders) => {
                        let owners: Vec<&str> = holders.iter().map(|l| l.owner.as_str()).collect();
                        let summary = format!(
                            "`{shown}` is held by {}; you are queued as waiting, retry later",
                            owners.join(", ")
                        );
                        (false, holders.iter().map(lock_out).collect(), summary)
                    }
                };
                Ok(Structured::new(
                    summary,
                    CollaborationOut {
                        acquired: Some(acquired),
                        locks: Some(locks),
                        ..Default::default()
                    },
                ))
            }
            CollaborationActionIn::Unlock => {
                let agent = need(input.agent, "agent", "unlock")?;
                let resource = resource(input.resource, input.prefix, "unlock")?;
                let shown = resource.to_string();
                blocking(self.store(), move |store| store.unlock(&agent, &resource)).await?;
                Ok(Structured::new(
                    format!("released `{shown}`"),
                    CollaborationOut::default(),
                ))
            }
            CollaborationActionIn::Locks => {
                let (held, waits) = blocking(self.store(), |store| store.locks()).await?;
                let summary = format!("{} lock(s), {} waiting", held.len(), waits.len());
                Ok(Structured::new(
                    summary,
                    CollaborationOut {
                        locks: Some(held.iter().map(lock_out).collect()),
                        waits: Some(
                            waits
                                .into_iter()
                                .map(|w| WaitOut {
                                    waiter: w.waiter,
                                    resource: w.resource.to_string(),
                                    mode: w.mode.to_string(),
                                    since: time(w.since),
                                })
                                .collect(),
                        ),
                        ..Default::default()
                    },
                ))
            }
            CollaborationActionIn::Team => {
                let workflow =
                    WorkflowRef::from(need(input.workflow, "workflow", "team")?.as_str());
                let team = blocking(self.store(), move |store| store.team(&workflow)).await?;
                let summary = format!(
                    "team of {}: {} (capacity {}){}",
                    team.members.len(),
                    team.members.join(", "),
                    team.capacity,
                    if team.uncovered.is_empty() {
                        String::new()
                    } else {
                        format!("; nobody has {}", team.uncovered.join("; "))
                    }
                );
                Ok(Structured::new(
                    summary,
                    CollaborationOut {
                        team: Some(team.members),
                        capacity: Some(team.capacity),
                        uncovered: Some(team.uncovered),
                        ..Default::default()
                    },
                ))
            }
        }
    }
}
