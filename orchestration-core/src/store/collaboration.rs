//! Collaboration use cases: handoffs, messages with acknowledgement, advisory locks with
//! deadlock detection, and team assembly.

use std::collections::{BTreeMap, BTreeSet};

use super::db::{Params, Tx, params};
use chrono::{DateTime, Duration, Utc};

use crate::agent::{AgentStatus, Candidate, Needs, Team, assemble_team, check};
use crate::clock::from_millis;
use crate::collaboration::{Lock, LockMode, Resource, conflicts, deadlock};
use crate::error::{Error, Result};
use crate::id::LeaseToken;
use crate::limits::{self, MAX_LOCK_TTL};
use crate::workflow::{TaskEvent, TaskState, check_argument_name};

use super::sql::{self, LEASED, query};

use super::agent::{candidates, registered};
use super::event::{EventKind, NewEvent, append};
use super::refs::task_skills;
use super::refs::{TaskRef, TaskRow, WorkflowRef, WorkflowRow, parse_column};
use super::task::check_length;
use super::transition::apply;
use super::view::{TaskView, view};
use super::{Store, millis};
use crate::workflow::Change;

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// One agent.
    Agent(String),
    /// Every agent holding a task of the workflow.
    Workflow(WorkflowRef),
    /// Every registered agent but the sender.
    Broadcast,
}

/// A message in an inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Its id, for acknowledging.
    pub id: i64,
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// Who sent it.
    pub sender: String,
    /// The workflow it was about, if any.
    pub workflow: Option<String>,
    /// What it says.
    pub body: String,
}

/// The result of asking for a lock.
#[derive(Debug, Clone, PartialEq)]
pub enum LockOutcome {
    /// The agent holds the lock now (or renewed it).
    Acquired(Lock),
    /// Others hold conflicting locks; the agent is recorded as waiting.
    Blocked(Vec<Lock>),
}

/// An agent waiting for a lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// Who waits.
    pub waiter: String,
    /// For what.
    pub resource: Resource,
    /// In which mode.
    pub mode: LockMode,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// The result of a handoff.
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    /// The task, now assigned to the new agent.
    pub task: TaskView,
    /// The message that carried the context note to the new agent.
    pub message: i64,
}

/// What reading an inbox does to the messages read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Only look: the messages stay unread.
    Peek,
    /// Take them: they are acknowledged in the same transaction, so each is handed out once.
    Acknowledge,
}

impl Store {
    /// Moves a task `from` holds (with its lease `token`) to `to`, with a context note: the
    /// lease moves to `to` (the task becomes assigned to it; its next claim starts it), the
    /// attempt is not counted against anyone, and `to` gets the note as a message.
    pub fn handoff(
        &self,
        task: &TaskRef,
        from: &str,
        token: LeaseToken,
        to: &str,
        note: &str,
    ) -> Result<Handoff> {
        check_argument_name("agent", "agent name", from)?;
        check_argument_name("to", "agent name", to)?;
        if from == to {
            return Err(Error::InvalidArgument {
                field: "to".into(),
                reason: format!("`{from}` cannot hand a task to itself; name another agent"),
            });
        }
        check_length("note", note, limits::MAX_MESSAGE_LEN)?;
        self.write(|tx, now| {
            registered(tx, from)?;
            let mut row = TaskRow::resolve(tx, task)?;
            let name = row.display();
            let lease = row.lease(&name);
            lease.check_not_foreign(from)?;
            // Only work an agent has started can be handed off, whatever the token says.
            if row.state != TaskState::Running {
                return Err(Error::IllegalTransition {
                    task: name,
                    state: row.state,
                    verb: "be handed off",
                });
            }
            lease.check(from, token, "be handed off", now)?;
            let profile = registered(tx, to)?;
            let held = super::task::in_flight(tx, to)? as u32;
            let candidate = Candidate {
                profile,
                active: held,
                record: Default::default(),
            };
            let needs = Needs {
                skills: task_skills(tx, row.id)?,
                estimate: row.estimate,
            };
            if let Err(reason) = check(&candidate, &needs) {
                return Err(Error::NotQualified {
                    agent: to.into(),
                    task: row.display(),
                    reason: reason.to_string(),
                });
            }
            let detail = format!("handoff from {from} to {to}");
            apply(
                tx,
                now,
                &mut row,
                TaskEvent::Release,
                Change {
                    detail: Some(&detail),
                    ..Change::default()
                },
            )?;
            apply(
                tx,
                now,
                &mut row,
                TaskEvent::Assign,
                Change {
                    agent: Some(to),
                    deadline: Some(now + super::task::DEFAULT_LEASE),
                    detail: Some(&detail),
                    ..Change::default()
                },
            )?;
            tx.prepare_cached("UPDATE tasks SET note = ?2 WHERE id = ?1")?
                .execute(params![row.id, note])?;
            let body = format!("handoff of `{}` from `{from}`: {note}", row.display());
            let message = insert_message(tx, now, from, to, Some(row.workflow), &body)?;
            Ok(Handoff {
                task: view(tx, &TaskRow::by_id(tx, row.id)?)?,
                message,
            })
        })
    }

    /// Sends `body` from `sender` to `recipients`; returns how many inboxes it reached.
    pub fn send_message(&self, sender: &str, recipients: &Recipients, body: &str) -> Result<usize> {
        check_argument_name("agent", "agent name", sender)?;
        if let Recipients::Agent(to) = recipients {
            check_argument_name("to", "agent name", to)?;
            if to == sender {
                return Err(Error::InvalidArgument {
                    field: "to".into(),
                    reason: format!("`{sender}` cannot send a message to itself"),
                });
            }
        }
        if body.trim().is_empty() {
            return Err(Error::InvalidArgument {
                field: "body".into(),
                reason: "must not be empty".into(),
            });
        }
        check_length("note", body, limits::MAX_MESSAGE_LEN)?;
        self.write(|tx, now| {
            registered(tx, sender)?;
            let (names, workflow): (Vec<String>, Option<i64>) = match recipients {
                Recipients::Agent(name) => {
                    registered(tx, name)?;
                    (vec![name.clone()], None)
                }
                Recipients::Workflow(workflow) => {
                    let workflow = WorkflowRow::resolve(tx, workflow)?;
                    let names = strings(
                        tx,
                        query!(
                            "SELECT DISTINCT agent FROM tasks WHERE workflow = ?1 \
                             AND state IN {} AND agent IS NOT NULL ORDER BY agent",
                            sql::states(&LEASED)
                        ),
                        [workflow.id],
                    )?;
                    (names, Some(workflow.id))
                }
                Recipients::Broadcast => (
                    strings(tx, "SELECT name FROM agents ORDER BY name", [])?,
                    None,
                ),
            };
            let mut sent = 0;
            for name in names.iter().filter(|n| n.as_str() != sender) {
                insert_message(tx, now, sender, name, workflow, body)?;
                sent += 1;
            }
            Ok(sent)
        })
    }

    /// `agent`'s unacknowledged messages, oldest first: at most `limit`, and no more than
    /// `max_bytes` of bodies by [`text_weight`](crate::text::text_weight) (the first always, however
    /// long). With [`Delivery::Acknowledge`], they are acknowledged in the same transaction, so
    /// each is handed out exactly once. Returns them with the number still unread after them.
    pub fn inbox(
        &self,
        agent: &str,
        limit: usize,
        max_bytes: usize,
        delivery: Delivery,
    ) -> Result<(Vec<Message>, usize)> {
        let ack = delivery == Delivery::Acknowledge;
        check_argument_name("agent", "agent name", agent)?;
        // A look without acknowledging changes nothing, so it reads: it works on a read-only
        // handle and does not queue behind writers.
        let take = |tx: &Tx<'_>, now| {
            registered(tx, agent)?;
            let mut stmt = tx.prepare_cached(
                "SELECT m.id, m.at, m.sender, w.name, m.body FROM messages m \
                 LEFT JOIN workflows w ON w.id = m.workflow \
                 WHERE m.recipient = ?1 AND m.acked_at IS NULL ORDER BY m.id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![agent, limit as i64])?;
            let mut messages = Vec::new();
            let mut bytes = 0;
            while let Some(row) = rows.next()? {
                let body: String = row.get(4)?;
                let weight = crate::text::text_weight(&body);
                if !messages.is_empty() && bytes + weight > max_bytes {
                    break;
                }
                bytes += weight;
                messages.push(Message {
                    id: row.get(0)?,
                    at: from_millis(row.get(1)?),
                    sender: row.get(2)?,
                    workflow: row.get(3)?,
                    body,
                });
            }
            if ack {
                for message in &messages {
                    acknowledge(tx, now, agent, message.id)?;
                }
            }
            let unread: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM messages WHERE recipient = ?1 AND acked_at IS NULL",
                )?
                .query_row([agent], |r| r.get(0))?;
            let left = if ack {
                unread as usize
            } else {
                (unread as usize).saturating_sub(messages.len())
            };
            Ok((messages, left))
        };
        if ack {
            self.write(take)
        } else {
            self.read(take)
        }
    }

    /// Acknowledges messages of `agent`'s inbox; an id that is not there (someone else's, or
    /// already acknowledged) is an error and nothing is acknowledged.
    pub fn ack(&self, agent: &str, ids: &[i64]) -> Result<usize> {
        check_argument_name("agent", "agent name", agent)?;
        // One call holds the write lock for all its ids; a bound keeps it short.
        if ids.len() > limits::MAX_ACK_IDS {
            return Err(Error::InvalidArgument {
                field: "ids".into(),
                reason: format!(
                    "at most {} ids per call, got {}",
                    limits::MAX_ACK_IDS,
                    ids.len()
                ),
            });
        }
        self.write(|tx, now| {
            registered(tx, agent)?;
            for &id in ids {
                acknowledge(tx, now, agent, id)?;
            }
            Ok(ids.len())
        })
    }

    /// Takes or renews an advisory lock for `ttl`. When others hold a conflicting lock the
    /// agent is recorded as waiting and gets the holders back, unless waiting would close a
    /// cycle of waits, which is refused with the cycle named.
    pub fn lock(
        &self,
        agent: &str,
        resource: &Resource,
        mode: LockMode,
        ttl: Duration,
    ) -> Result<LockOutcome> {
        check_argument_name("agent", "agent name", agent)?;
        check_resource(resource)?;
        if ttl < Duration::seconds(1) || ttl > MAX_LOCK_TTL {
            return Err(Error::InvalidArgument {
                field: "ttl_seconds".into(),
                reason: format!(
                    "{} s is outside 1 to {} s",
                    ttl.num_seconds(),
                    MAX_LOCK_TTL.num_seconds()
                ),
            });
        }
        self.write(|tx, now| {
            registered(tx, agent)?;
            reclaim_expired(tx, now)?;
            let holders: Vec<Lock> =
                locks(tx)?.into_iter().filter(|held| conflicts(agent, resource, mode, held)).collect();
            if holders.is_empty() {
                tx.prepare_cached(
                    "INSERT INTO locks (resource, prefix, owner, mode, acquired_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (resource, prefix, owner) DO UPDATE SET \
                     mode = excluded.mode, expires_at = excluded.expires_at",
                )?
                .execute(params![resource.name(), resource.is_prefix(), agent, mode.as_str(), millis(now), millis(now + ttl)])?;
                tx.prepare_cached("DELETE FROM lock_waits WHERE waiter = ?1 AND resource = ?2 AND prefix = ?3")?
                    .execute(params![agent, resource.name(), resource.is_prefix()])?;
                return Ok(LockOutcome::Acquired(Lock {
                    resource: resource.clone(),
                    owner: agent.to_owned(),
                    mode,
                    expires_at: now + ttl,
                }));
            }
            let owners: BTreeSet<String> = holders.iter().map(|l| l.owner.clone()).collect();
            if let Some(cycle) = deadlock(agent, &owners, &wait_for_graph(tx)?) {
                return Err(Error::Deadlock { resource: resource.to_string(), cycle });
            }
            tx.prepare_cached(
                "INSERT INTO lock_waits (waiter, resource, prefix, mode, since, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (waiter, resource, prefix) DO UPDATE SET \
                 mode = excluded.mode, expires_at = excluded.expires_at",
            )?
            .execute(params![agent, resource.name(), resource.is_prefix(), mode.as_str(), millis(now), millis(now + ttl)])?;
            Ok(LockOutcome::Blocked(holders))
        })
    }

    /// Releases `agent`'s lock on `resource`; only the owner can.
    pub fn unlock(&self, agent: &str, resource: &Resource) -> Result<()> {
        check_argument_name("agent", "agent name", agent)?;
        self.write(|tx, now| {
            registered(tx, agent)?;
            reclaim_expired(tx, now)?;
            let removed = tx
                .prepare_cached(
                    "DELETE FROM locks WHERE resource = ?1 AND prefix = ?2 AND owner = ?3",
                )?
                .execute(params![resource.name(), resource.is_prefix(), agent])?;
            if removed == 0 {
                let owner = locks(tx)?
                    .into_iter()
                    .find(|l| &l.resource == resource)
                    .map(|l| l.owner);
                return Err(Error::LockNotHeld {
                    resource: resource.to_string(),
                    agent: agent.into(),
                    owner,
                });
            }
            Ok(())
        })
    }

    /// Locks held and agents waiting, without the expired ones.
    pub fn locks(&self) -> Result<(Vec<Lock>, Vec<Wait>)> {
        self.read(|tx, now| {
            let held = locks(tx)?
                .into_iter()
                .filter(|l| l.expires_at > now)
                .collect();
            let waits = waits(tx)?
                .into_iter()
                .filter(|(_, expires)| *expires > now)
                .map(|(w, _)| w)
                .collect();
            Ok((held, waits))
        })
    }

    /// The smallest team of active agents covering the skills of the workflow's unfinished
    /// tasks, with WIP limits adding up to its widest stage of unfinished tasks.
    pub fn team(&self, workflow: &WorkflowRef) -> Result<Team> {
        self.read(|tx, _| {
            let workflow = WorkflowRow::resolve(tx, workflow)?;
            let report_tasks = super::refs::workflow_tasks(tx, workflow.id)?;
            let mut requirements = Vec::new();
            for task in report_tasks.iter().filter(|t| !t.state.is_terminal()) {
                let skills = task_skills(tx, task.id)?;
                if !skills.is_empty() {
                    requirements.push(skills);
                }
            }
            let analysis = super::workflow::analysis_of(tx, workflow.id)?;
            let open: BTreeSet<&str> = report_tasks
                .iter()
                .filter(|t| !t.state.is_terminal())
                .map(|t| t.key.as_str())
                .collect();
            let widest = analysis
                .stages
                .iter()
                .map(|stage| stage.iter().filter(|k| open.contains(k.as_str())).count())
                .max()
                .unwrap_or(0) as u32;
            let everyone: Vec<Candidate> = candidates(tx)?
                .into_iter()
                .filter(|c| c.profile.status == AgentStatus::Active)
                .collect();
            Ok(assemble_team(&requirements, &everyone, widest))
        })
    }
}

fn check_resource(resource: &Resource) -> Result<()> {
    let name = resource.name();
    if name.is_empty() || name.chars().count() > 500 || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument {
            field: "resource".into(),
            reason: "must be 1 to 500 characters without control characters".into(),
        });
    }
    Ok(())
}

fn insert_message(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    sender: &str,
    recipient: &str,
    workflow: Option<i64>,
    body: &str,
) -> Result<i64> {
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO messages (at, sender, recipient, workflow, body) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )?
        .query_row(
            params![millis(now), sender, recipient, workflow, body],
            |r| r.get(0),
        )?;
    let detail = format!("message {id} to {recipient}");
    append(
        tx,
        now,
        EventKind::Message,
        NewEvent {
            workflow,
            agent: Some(sender),
            detail: Some(&detail),
            ..NewEvent::default()
        },
    )?;
    Ok(id)
}

fn acknowledge(tx: &Tx<'_>, now: DateTime<Utc>, agent: &str, id: i64) -> Result<()> {
    let changed = tx
        .prepare_cached("UPDATE messages SET acked_at = ?3 WHERE id = ?1 AND recipient = ?2 AND acked_at IS NULL")?
        .execute(params![id, agent, millis(now)])?;
    if changed == 0 {
        return Err(Error::UnknownMessage {
            id,
            agent: agent.into(),
        });
    }
    Ok(())
}

fn strings(conn: &Tx<'_>, sql: &str, params: impl Params) -> Result<Vec<String>> {
    conn.prepare_cached(sql)?
        .query_map(params, |row| row.get(0))?
        .collect::<Result<_>>()
}

fn resource_of(name: String, prefix: bool) -> Resource {
    if prefix {
        Resource::Prefix(name)
    } else {
        Resource::Exact(name)
    }
}

fn locks(conn: &Tx<'_>) -> Result<Vec<Lock>> {
    conn.prepare_cached(
        "SELECT resource, prefix, owner, mode, expires_at FROM locks ORDER BY resource, owner",
    )?
    .query_map([], |row| {
        Ok(Lock {
            resource: resource_of(row.get(0)?, row.get(1)?),
            owner: row.get(2)?,
            mode: parse_column(row, 3, LockMode::parse)?,
            expires_at: from_millis(row.get(4)?),
        })
    })?
    .collect::<Result<_>>()
}

fn waits(conn: &Tx<'_>) -> Result<Vec<(Wait, DateTime<Utc>)>> {
    conn.prepare_cached(
        "SELECT waiter, resource, prefix, mode, since, expires_at FROM lock_waits ORDER BY since",
    )?
    .query_map([], |row| {
        Ok((
            Wait {
                waiter: row.get(0)?,
                resource: resource_of(row.get(1)?, row.get(2)?),
                mode: parse_column(row, 3, LockMode::parse)?,
                since: from_millis(row.get(4)?),
            },
            from_millis(row.get(5)?),
        ))
    })?
    .collect::<Result<_>>()
}

/// Waiter → the owners of the locks it waits for.
fn wait_for_graph(conn: &Tx<'_>) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let held = locks(conn)?;
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (wait, _) in waits(conn)? {
        for lock in held
            .iter()
            .filter(|l| conflicts(&wait.waiter, &wait.resource, wait.mode, l))
        {
            graph
                .entry(wait.waiter.clone())
                .or_default()
                .insert(lock.owner.clone());
        }
    }
    Ok(graph)
}

/// Expired locks and waits are reclaimed before any lock decision.
fn reclaim_expired(tx: &Tx<'_>, now: DateTime<Utc>) -> Result<()> {
    // A lock ending more than the longest TTL ahead was taken before the clock jumped back;
    // capping it keeps a dead agent's lock from outliving the jump.
    tx.prepare_cached("UPDATE locks SET expires_at = ?1 WHERE expires_at > ?1")?
        .execute([millis(now + MAX_LOCK_TTL)])?;
    tx.prepare_cached("DELETE FROM locks WHERE expires_at <= ?1")?
        .execute([millis(now)])?;
    tx.prepare_cached("DELETE FROM lock_waits WHERE expires_at <= ?1")?
        .execute([millis(now)])?;
    Ok(())
}
