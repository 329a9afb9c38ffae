//! An in-process runner for programs that embed the library: N worker threads act as agents,
//! each claiming a task, running the caller's closure on it, and reporting the outcome.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use chrono::Duration;

use crate::error::Result;
use crate::id::LeaseToken;
use crate::store::{AgentUpdate, Claim, ClaimRequest, Store, TaskRef, TaskUpdate, WorkflowRef};
use crate::workflow::FailureKind;
use crate::workflow::WorkflowStatus;

#[cfg(test)]
mod tests;

/// Runs one workflow's tasks on worker threads.
#[derive(Debug, Clone)]
pub struct Runner {
    store: Arc<Store>,
    workers: usize,
    agent_prefix: String,
    lease: Duration,
    poll: StdDuration,
}

/// What a worker's closure sees of the task it runs.
#[derive(Debug)]
pub struct WorkContext<'a> {
    /// The claim: the task, its lease and its dependencies' results.
    pub claim: &'a Claim,
    /// The name of the worker's agent.
    pub agent: &'a str,
    store: &'a Store,
}

impl WorkContext<'_> {
    /// Extends the lease; call it from long work so the task is not taken back.
    pub fn heartbeat(&self) -> Result<()> {
        let task = TaskRef::Id(self.claim.task.id);
        self.store.update_task(
            &task,
            self.agent,
            self.claim.token,
            &TaskUpdate::Heartbeat,
            None,
        )?;
        Ok(())
    }
}

/// A successful run of a task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// What the task produced; its dependents' agents receive it.
    pub result: Option<String>,
    /// Effort spent, in points.
    pub actual: Option<f64>,
}

/// A failed run of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFailure {
    /// What went wrong.
    pub message: String,
    /// Whether another attempt could succeed.
    pub kind: FailureKind,
}

impl TaskFailure {
    /// A failure that a retry may fix.
    pub fn retryable(message: impl Into<String>) -> TaskFailure {
        TaskFailure {
            message: message.into(),
            kind: FailureKind::Transient,
        }
    }

    /// A failure that no retry will fix.
    pub fn permanent(message: impl Into<String>) -> TaskFailure {
        TaskFailure {
            message: message.into(),
            kind: FailureKind::Permanent,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The workflow's final status.
    pub status: WorkflowStatus,
    /// Attempts each worker ran, by worker.
    pub attempts_by_worker: Vec<usize>,
}

impl Runner {
    /// A runner with 4 workers named `worker-1` … on `store`.
    pub fn new(store: Arc<Store>) -> Runner {
        Runner {
            store,
            workers: 4,
            agent_prefix: "worker".into(),
            lease: Duration::minutes(5),
            poll: StdDuration::from_millis(5),
        }
    }

    /// Sets the number of worker threads (at least one).
    pub fn workers(mut self, workers: usize) -> Runner {
        self.workers = workers.max(1);
        self
    }

    /// Names the workers' agents `{prefix}-1`, `{prefix}-2`, …. The runner registers those that
    /// have no profile yet; give them profiles first to have claims respect skills.
    pub fn agent_prefix(mut self, prefix: impl Into<String>) -> Runner {
        self.agent_prefix = prefix.into();
        self
    }

    /// Sets the lease each claim takes.
    pub fn lease(mut self, lease: Duration) -> Runner {
        self.lease = lease;
        self
    }

    /// Sets how long an idle worker waits before asking again.
    pub fn poll_interval(mut self, poll: StdDuration) -> Runner {
        self.poll = poll;
        self
    }

    /// Runs `workflow` until it finishes, calling `work` for every claimed task. A panic in
    /// `work` counts as a retryable failure of that attempt. The first storage error stops
    /// every worker and is returned.
    pub fn run<F>(&self, workflow: &WorkflowRef, work: F) -> Result<RunSummary>
    where
        F: Fn(&WorkContext<'_>) -> std::result::Result<Outcome, TaskFailure> + Sync,
    {
        let agents: Vec<String> = (1..=self.workers)
            .map(|n| format!("{}-{n}", self.agent_prefix))
            .collect();
        for agent in &agents {
            self.register(agent)?;
        }
        let stop = AtomicBool::new(false);
        let results: Vec<Result<usize>> = std::thread::scope(|scope| {
            let handles: Vec<_> = agents
                .into_iter()
                .map(|agent| {
                    let (work, stop) = (&work, &stop);
                    scope.spawn(move || {
                        let result = self.work_loop(workflow, &agent, work, stop);
                        if result.is_err() {
                            stop.store(true, Ordering::SeqCst);
                        }
                        result
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let attempts_by_worker = results.into_iter().collect::<Result<Vec<_>>>()?;
        let status = self.store.workflow_summary(workflow)?.status;
        Ok(RunSummary {
            status,
            attempts_by_worker,
        })
    }

    fn work_loop<F>(
        &self,
        workflow: &WorkflowRef,
        agent: &str,
        work: &F,
        stop: &AtomicBool,
    ) -> Result<usize>
    where
        F: Fn(&WorkContext<'_>) -> std::result::Result<Outcome, TaskFailure> + Sync,
    {
        let mut attempts = 0;
        let request = ClaimRequest::new(agent)
            .in_workflow(workflow.clone())
            .lease(self.lease);
        while !stop.load(Ordering::SeqCst) {
            let Some(claim) = self.store.claim(&request)?.claimed() else {
                let status = self.store.workflow_summary(workflow)?.status;
                if status.is_finished() {
                    break;
                }
                // Nothing ready: either others hold the rest or a retry backoff runs. Waiting a
                // little keeps idle workers from spinning on the database.
                std::thread::sleep(self.poll);
                continue;
            };
            attempts += 1;
            let context = WorkContext {
                claim: &claim,
                agent,
                store: &self.store,
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| work(&context)))
                .unwrap_or_else(|_| Err(TaskFailure::retryable("the task's closure panicked")));
            let report = match outcome {
                Ok(done) => TaskUpdate::Complete {
                    result: done.result,
                    actual: done.actual,
                },
                Err(failure) => TaskUpdate::Fail {
                    error: failure.message,
                    kind: failure.kind,
                },
            };
            self.update_task(&claim, agent, claim.token, &report)?;
        }
        Ok(attempts)
    }

    /// Registers a worker's agent unless it has a profile already (which it keeps: a program
    /// may give its workers skills and limits of its own). Only registered agents take work.
    fn register(&self, agent: &str) -> Result<()> {
        match self.store.agent(agent) {
            Ok(_) => Ok(()),
            Err(crate::Error::UnknownAgent { .. }) => self
                .store
                .upsert_agent(agent, &AgentUpdate::default())
                .map(drop),
            Err(other) => Err(other),
        }
    }

    fn update_task(
        &self,
        claim: &Claim,
        agent: &str,
        token: LeaseToken,
        report: &TaskUpdate,
    ) -> Result<()> {
        let task = TaskRef::Id(claim.task.id);
        match self.store.update_task(&task, agent, token, report, None) {
            Ok(_) => Ok(()),
            // The lease was lost while the closure ran (it took longer than the lease): the
            // task went back in line and another attempt will run it, so this report is void.
            Err(
                crate::Error::LeaseExpired { .. }
                | crate::Error::StaleLease { .. }
                | crate::Error::NotLeaseHolder { .. }
                | crate::Error::IllegalTransition { .. },
            ) => Ok(()),
            Err(other) => Err(other),
        }
    }
}
