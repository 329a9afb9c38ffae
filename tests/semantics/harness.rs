//! What most cases share: a store on a manual clock with shortcuts for creating workflows,
//! claiming and reporting, and reading states back.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use orchestration_core::{
    AgentUpdate, Claim, ClaimRequest, Clock, CreateOptions, Error, FailureKind, FailurePolicy,
    ManualClock, Store, TaskRef, TaskSpec, TaskState, TaskUpdate, WorkflowRef, WorkflowSpec,
    WorkflowStatus,
};

use crate::Backend;

pub(crate) struct Harness {
    pub(crate) store: Store,
    pub(crate) clock: ManualClock,
}

/// A store on this case's database whose clock starts on Monday 2 March 2026, 09:00 UTC.
pub(crate) fn harness(db: &dyn Backend) -> Harness {
    let (clock, handle) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    Harness {
        store: db.open().with_clock(clock),
        clock: handle,
    }
}

/// Registers `agents` with the default profile: only registered agents take work.
pub(crate) fn register(store: &Store, agents: &[&str]) {
    for agent in agents {
        store.upsert_agent(agent, &AgentUpdate::default()).unwrap();
    }
}

pub(crate) fn task(key: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec::new(key, format!("do {key}")).after(deps.iter().copied())
}

pub(crate) fn started() -> CreateOptions {
    CreateOptions {
        start: true,
        idempotency_key: None,
    }
}

impl Harness {
    pub(crate) fn create(&self, name: &str, policy: FailurePolicy, tasks: Vec<TaskSpec>) {
        let spec = WorkflowSpec {
            name: name.into(),
            on_failure: policy,
            tasks,
            ..Default::default()
        };
        self.store.create_workflow(spec, &started()).unwrap();
    }

    /// Claims for `agent`, registering it first when nobody has: only registered agents
    /// take work, and most tests are about something else.
    pub(crate) fn claim(&self, agent: &str) -> Option<Claim> {
        self.register(agent);
        self.store
            .claim(&ClaimRequest::new(agent))
            .unwrap()
            .claimed()
    }

    /// Registers `agent` with the default profile unless it has one.
    pub(crate) fn register(&self, agent: &str) {
        if let Err(Error::UnknownAgent { .. }) = self.store.agent(agent) {
            self.store
                .upsert_agent(agent, &AgentUpdate::default())
                .unwrap();
        }
    }

    pub(crate) fn claim_key(&self, agent: &str) -> String {
        self.claim(agent).map(|c| c.task.key).unwrap_or_default()
    }

    pub(crate) fn update_task(
        &self,
        claim: &Claim,
        agent: &str,
        report: TaskUpdate,
    ) -> orchestration_core::Result<()> {
        self.store
            .update_task(
                &TaskRef::Id(claim.task.id),
                agent,
                claim.token,
                &report,
                None,
            )
            .map(|_| ())
    }

    pub(crate) fn complete(&self, claim: &Claim, agent: &str) {
        self.update_task(
            claim,
            agent,
            TaskUpdate::Complete {
                result: Some(format!("{} done", claim.task.key)),
                actual: None,
            },
        )
        .unwrap();
    }

    pub(crate) fn fail(&self, claim: &Claim, agent: &str, kind: FailureKind) {
        self.update_task(
            claim,
            agent,
            TaskUpdate::Fail {
                error: "boom".into(),
                kind,
            },
        )
        .unwrap();
    }

    /// Every task's state, by key.
    pub(crate) fn states(&self, workflow: &str) -> BTreeMap<String, TaskState> {
        let report = self
            .store
            .workflow_report(&WorkflowRef::from(workflow))
            .unwrap();
        report.tasks.into_iter().map(|t| (t.key, t.state)).collect()
    }

    pub(crate) fn state(&self, workflow: &str, key: &str) -> TaskState {
        self.states(workflow)[key]
    }

    pub(crate) fn status(&self, workflow: &str) -> WorkflowStatus {
        self.store
            .workflow_summary(&WorkflowRef::from(workflow))
            .unwrap()
            .status
    }

    pub(crate) fn event_count(&self) -> usize {
        self.store.events_since(0, usize::MAX >> 1).unwrap().len()
    }
}

/// Compares the states of a workflow's tasks with `expected`, written `key=state` with spaces.
#[track_caller]
pub(crate) fn check_states(h: &Harness, workflow: &str, expected: &str) {
    let actual: Vec<String> = h
        .states(workflow)
        .into_iter()
        .map(|(k, s)| format!("{k}={s}"))
        .collect();
    assert_eq!(actual.join(" "), expected);
}

/// A profile with these skills and WIP limit.
pub(crate) fn profile(skills: &[(&str, u8)], max: u32) -> AgentUpdate {
    AgentUpdate {
        capabilities: Some(skills.iter().map(|(s, l)| (s.to_string(), *l)).collect()),
        max_concurrent: Some(max),
        ..AgentUpdate::default()
    }
}
