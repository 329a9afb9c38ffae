//! Delegation use cases: rank the agents for a task, hand a task to the best one, and assign
//! all ready tasks of a workflow at once, optimally. An assignment leases the task to the agent
//! (state `assigned`) exactly as a claim would, and the agent's next claim starts it.

use std::collections::{BTreeMap, HashMap};

use super::db::Tx;
use chrono::{DateTime, Duration, Utc};

use crate::agent::{
    Breakdown, Held, Move, Needs, Ranking, Weights, Workload, assign, rank, workload,
};
use crate::error::{Error, Result};
use crate::workflow::{TaskEvent, TaskState, WorkflowStatus};

use super::Store;
use super::agent::candidates;
use super::refs::{TaskRef, TaskRow, WorkflowRef, WorkflowRow};
use super::refs::{ids, task_skills};
use super::sql::{self, CLAIM_ORDER, LEASED, query};
use super::task::check_lease;
use super::transition::apply;
use super::view::{TaskView, view};
use crate::workflow::Change;

/// The result of ranking, and perhaps assigning, one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Delegation {
    /// The task, after the assignment if one was made.
    pub task: TaskView,
    /// Every profiled agent, ranked or rejected with the reason.
    pub ranking: Ranking,
    /// The agent the task went to, when assigning and someone qualified.
    pub assigned: Option<Assigned>,
}

/// A task leased to an agent by delegation.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    /// `workflow/key` of the task.
    pub task: String,
    /// The agent.
    pub agent: String,
    /// Why it won.
    pub breakdown: Breakdown,
    /// When the lease runs out unless the agent claims the task.
    pub lease_expires_at: DateTime<Utc>,
}

/// The result of assigning a workflow's ready tasks at once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchDelegation {
    /// Tasks given to agents (or proposed, in a dry run).
    pub assigned: Vec<Assigned>,
    /// Ready tasks nobody could take, with the reason.
    pub unassigned: Vec<(String, String)>,
    /// True when the greedy fallback replaced the optimal solver.
    pub greedy: bool,
}

/// Whether a delegation only ranks, or also leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DelegationMode {
    /// Rank and propose; nothing changes.
    Propose,
    /// Rank and lease the task (or each task) to the best agent, who then claims it.
    Assign,
}

impl Store {
    /// Ranks every profiled agent for `task`, and in [`DelegationMode::Assign`] leases the task
    /// to the best one.
    pub fn delegate(
        &self,
        task: &TaskRef,
        weights: &Weights,
        lease: Option<Duration>,
        mode: DelegationMode,
    ) -> Result<Delegation> {
        check_weights(weights)?;
        let lease = check_lease(lease)?;
        self.write(|tx, now| {
            let mut row = TaskRow::resolve(tx, task)?;
            let needs = Needs {
                skills: task_skills(tx, row.id)?,
                estimate: row.estimate,
            };
            let ranking = rank(&candidates(tx)?, &needs, weights);
            let mut assigned = None;
            if mode == DelegationMode::Assign {
                check_assignable(tx, &row)?;
                if let Some(best) = ranking.ranked.first() {
                    apply(
                        tx,
                        now,
                        &mut row,
                        TaskEvent::Assign,
                        Change {
                            agent: Some(&best.agent),
                            deadline: Some(now + lease),
                            detail: Some("delegated"),
                            ..Change::default()
                        },
                    )?;
                    assigned = Some(Assigned {
                        task: row.display(),
                        agent: best.agent.clone(),
                        breakdown: best.breakdown,
                        lease_expires_at: now + lease,
                    });
                }
            }
            Ok(Delegation {
                task: view(tx, &row)?,
                ranking,
                assigned,
            })
        })
    }

    /// Assigns every ready task of `workflow` to agents at once, maximising first how many are
    /// assigned and then their total score. In [`DelegationMode::Propose`] it only proposes.
    pub fn delegate_workflow(
        &self,
        workflow: &WorkflowRef,
        weights: &Weights,
        lease: Option<Duration>,
        mode: DelegationMode,
    ) -> Result<BatchDelegation> {
        check_weights(weights)?;
        let lease = check_lease(lease)?;
        self.write(|tx, now| {
            let workflow = WorkflowRow::resolve(tx, workflow)?;
            let ready = ids(
                tx,
                query!(
                    "SELECT id FROM tasks WHERE workflow = ?1 AND state = {} ORDER BY {CLAIM_ORDER}",
                    sql::state(TaskState::Ready)
                ),
                workflow.id,
            )?;
            let mut rows = Vec::with_capacity(ready.len());
            let mut needs = Vec::with_capacity(ready.len());
            for id in ready {
                let row = TaskRow::by_id(tx, id)?;
                needs.push(Needs {
                    skills: task_skills(tx, id)?,
                    estimate: row.estimate,
                });
                rows.push(row);
            }
            let candidates = candidates(tx)?;
            let result = assign(&needs, &candidates, weights);
            let mut batch = BatchDelegation {
                greedy: result.greedy,
                ..BatchDelegation::default()
            };
            if mode == DelegationMode::Assign && workflow.status != WorkflowStatus::Running && !result.assigned.is_empty() {
                return Err(Error::WorkflowNotRunning {
                    workflow: workflow.name.clone(),
                    status: workflow.status,
                    verb: TaskEvent::Assign.verb(),
                });
            }
            for (index, agent, breakdown) in result.assigned {
                let row = &mut rows[index];
                if mode == DelegationMode::Assign {
                    apply(
                        tx,
                        now,
                        row,
                        TaskEvent::Assign,
                        Change {
                            agent: Some(&agent),
                            deadline: Some(now + lease),
                            detail: Some("delegated"),
                            ..Change::default()
                        },
                    )?;
                }
                batch.assigned.push(Assigned {
                    task: row.display(),
                    agent,
                    breakdown,
                    lease_expires_at: now + lease,
                });
            }
            batch.unassigned = result
                .unassigned
                .into_iter()
                .map(|(index, why)| (rows[index].display(), why))
                .collect();
            Ok(batch)
        })
    }
}

fn check_weights(weights: &Weights) -> Result<()> {
    weights.check().map_err(|reason| Error::InvalidArgument {
        field: "weights".into(),
        reason,
    })
}

/// Only a ready task of a running workflow can be handed out.
fn check_assignable(tx: &Tx<'_>, row: &TaskRow) -> Result<()> {
    let workflow = WorkflowRow::by_id(tx, row.workflow)?;
    if workflow.status != WorkflowStatus::Running {
        return Err(Error::WorkflowNotRunning {
            workflow: workflow.name,
            status: workflow.status,
            verb: TaskEvent::Assign.verb(),
        });
    }
    if row.state != TaskState::Ready {
        return Err(Error::IllegalTransition {
            task: row.display(),
            state: row.state,
            verb: TaskEvent::Assign.verb(),
        });
    }
    Ok(())
}

/// The result of carrying out a rebalance.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebalanced {
    /// The moves made.
    pub moved: Vec<Move>,
    /// The fleet's load after them.
    pub after: Workload,
}

impl Store {
    /// Each agent's load, the overloaded and idle agents, and moves that would relieve the
    /// overloaded ones. Changes nothing; [`Store::rebalance`] makes the moves.
    pub fn workload(&self, weights: &Weights) -> Result<Workload> {
        check_weights(weights)?;
        self.read(|tx, _| Ok(measure(tx, weights)?.0))
    }

    /// Makes the moves [`Store::workload`] proposes, all in one transaction: each task is
    /// released by its holder and assigned to the proposed agent under a fresh lease. Returns
    /// the moves and the load as it is after them.
    pub fn rebalance(&self, weights: &Weights, lease: Option<Duration>) -> Result<Rebalanced> {
        check_weights(weights)?;
        let lease = check_lease(lease)?;
        self.write(|tx, now| {
            let (before, mut rows) = measure(tx, weights)?;
            for proposal in &before.proposals {
                let Some(row) = rows.get_mut(&proposal.task) else {
                    continue;
                };
                apply(
                    tx,
                    now,
                    row,
                    TaskEvent::Release,
                    Change {
                        detail: Some("rebalanced"),
                        ..Change::default()
                    },
                )?;
                apply(
                    tx,
                    now,
                    row,
                    TaskEvent::Assign,
                    Change {
                        agent: Some(&proposal.to),
                        deadline: Some(now + lease),
                        detail: Some("rebalanced"),
                        ..Change::default()
                    },
                )?;
            }
            let (after, _) = measure(tx, weights)?;
            Ok(Rebalanced {
                moved: before.proposals,
                after,
            })
        })
    }
}

/// The fleet's load as stored, with the rows of the tasks it holds by `workflow/key`.
fn measure(tx: &Tx<'_>, weights: &Weights) -> Result<(Workload, HashMap<String, TaskRow>)> {
    let candidates = candidates(tx)?;
    let mut held: BTreeMap<String, Vec<Held>> = BTreeMap::new();
    let mut rows: HashMap<String, TaskRow> = HashMap::new();
    let leased: Vec<i64> = tx
        .prepare_cached(query!(
            "SELECT id FROM tasks WHERE state IN {} ORDER BY id",
            sql::states(&LEASED)
        ))?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_>>()?;
    for id in leased {
        let row = TaskRow::by_id(tx, id)?;
        let Some(agent) = row.agent.clone() else {
            continue;
        };
        held.entry(agent).or_default().push(Held {
            task: row.display(),
            started: row.state == TaskState::Running,
            priority: row.priority,
            needs: Needs {
                skills: task_skills(tx, id)?,
                estimate: row.estimate,
            },
        });
        rows.insert(row.display(), row);
    }
    let mut result = workload(&candidates, &held, weights);
    let points_per_day: HashMap<String, f64> = candidates
        .iter()
        .map(|c| (c.profile.name.clone(), c.profile.points_per_day))
        .collect();
    let mut sprints = super::sprint::sprint_loads(tx, &points_per_day)?;
    for load in &mut result.agents {
        load.sprint = sprints.remove(&load.agent);
    }
    Ok((result, rows))
}
