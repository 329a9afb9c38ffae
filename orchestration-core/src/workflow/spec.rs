//! Workflow specs, their validation, and the analysis that comes with a valid one.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, SpecError};
use crate::limits;

use super::dag::{Dag, Schedule};
use super::gate::TaskKind;
use super::retry::RetryPolicy;
use super::state::FailurePolicy;

/// How the dependencies of a workflow's tasks are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Each task lists its dependencies in `depends_on`.
    #[default]
    Dag,
    /// Each task depends on the one listed before it.
    Sequential,
    /// No task depends on another.
    Parallel,
}

impl Mode {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dag => "dag",
            Mode::Sequential => "sequential",
            Mode::Parallel => "parallel",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Mode> {
        [Mode::Dag, Mode::Sequential, Mode::Parallel]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A workflow to create.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowSpec {
    /// Unique name: 1 to 64 of `a-z A-Z 0-9 - _ .`, starting with a letter or digit.
    pub name: String,
    /// What the workflow is for.
    pub description: Option<String>,
    /// How dependencies are given.
    pub mode: Mode,
    /// What a final task failure does to the rest.
    pub on_failure: FailurePolicy,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// The tasks, in the order they are listed.
    pub tasks: Vec<TaskSpec>,
}

/// One task of a [`WorkflowSpec`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskSpec {
    /// Unique within the workflow; same rule as workflow names.
    pub key: String,
    /// A short title, 1 to 200 characters.
    pub title: String,
    /// What to do, for the agent that takes it.
    pub description: Option<String>,
    /// Size in points, 0 to 10,000 (default 1).
    pub estimate: Option<f64>,
    /// 0 (lowest) to 100 (highest), default 50.
    pub priority: Option<i64>,
    /// Skills an agent needs, with the minimum level (1 to 5).
    pub skills: BTreeMap<String, u8>,
    /// Keys of the tasks that must finish first (mode `dag` only).
    pub depends_on: Vec<String>,
    /// Attempts allowed, the first included (1 to 100, default 3).
    pub max_attempts: Option<u32>,
    /// Who finishes it: an agent (the default), or a person approving a gate.
    pub kind: TaskKind,
}

impl TaskSpec {
    /// A task with a key and a title, and defaults for the rest.
    pub fn new(key: impl Into<String>, title: impl Into<String>) -> TaskSpec {
        TaskSpec {
            key: key.into(),
            title: title.into(),
            ..TaskSpec::default()
        }
    }

    /// Adds dependencies.
    pub fn after<I, S>(mut self, keys: I) -> TaskSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Sets the estimate in points.
    pub fn estimate(mut self, points: f64) -> TaskSpec {
        self.estimate = Some(points);
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: i64) -> TaskSpec {
        self.priority = Some(priority);
        self
    }

    /// Requires a skill at a minimum level.
    pub fn skill(mut self, skill: impl Into<String>, level: u8) -> TaskSpec {
        self.skills.insert(skill.into(), level);
        self
    }

    /// Makes it a gate: a person approves or rejects it once its dependencies are done, and
    /// no agent claims it.
    pub fn gate(mut self) -> TaskSpec {
        self.kind = TaskKind::Gate;
        self
    }

    /// Sets the attempts allowed.
    pub fn max_attempts(mut self, attempts: u32) -> TaskSpec {
        self.max_attempts = Some(attempts);
        self
    }

    /// The estimate with its default.
    pub fn estimate_or_default(&self) -> f64 {
        self.estimate.unwrap_or(DEFAULT_ESTIMATE)
    }

    /// The priority with its default.
    pub fn priority_or_default(&self) -> i64 {
        self.priority.unwrap_or(DEFAULT_PRIORITY)
    }

    /// `max_attempts` with its default.
    pub fn max_attempts_or_default(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }
}

const DEFAULT_ESTIMATE: f64 = 1.0;
const DEFAULT_PRIORITY: i64 = 50;
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// A spec that passed validation, with its graph and analysis. Its graph is acyclic and every
/// dependency names a task of the spec.
#[derive(Debug, Clone)]
pub struct ValidatedWorkflow {
    spec: WorkflowSpec,
    dag: Dag,
    analysis: Analysis,
}

/// The shape of a workflow: parallel stages, the critical path, and notes worth a look.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Task keys by stage: each stage can run in parallel once the ones before it are done.
    pub stages: Vec<Vec<String>>,
    /// The longest chain of estimates.
    pub critical_path: CriticalPath,
    /// The longest path from each task to the end, its own estimate included, in spec order.
    /// Ready tasks with a larger one are offered first.
    pub b_levels: Vec<f64>,
    /// Things that are allowed but probably not meant.
    pub warnings: Vec<String>,
}

/// The critical path of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticalPath {
    /// Task keys from the first to the last.
    pub keys: Vec<String>,
    /// The sum of their estimates: the shortest possible duration with unlimited agents.
    pub length: f64,
}

impl ValidatedWorkflow {
    /// The spec, with duplicate dependencies merged.
    pub fn spec(&self) -> &WorkflowSpec {
        &self.spec
    }

    /// The dependency graph; node `i` is `spec().tasks[i]`.
    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// Stages, critical path, ranks and warnings.
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }
}

impl WorkflowSpec {
    /// A spec with a name and a mode; add tasks with [`WorkflowSpec::task`].
    pub fn new(name: impl Into<String>, mode: Mode) -> WorkflowSpec {
        WorkflowSpec {
            name: name.into(),
            mode,
            ..WorkflowSpec::default()
        }
    }

    /// Adds a task.
    pub fn task(mut self, task: TaskSpec) -> WorkflowSpec {
        self.tasks.push(task);
        self
    }

    /// Sets the failure policy.
    pub fn on_failure(mut self, policy: FailurePolicy) -> WorkflowSpec {
        self.on_failure = policy;
        self
    }

    /// Checks every rule and analyses the graph. The first broken rule is returned, naming the
    /// task and field.
    pub fn validate(mut self) -> Result<ValidatedWorkflow, Error> {
        check_name("workflow name", &self.name)?;
        check_text(
            "description",
            self.description.as_deref(),
            limits::MAX_DESCRIPTION_LEN,
        )?;
        check_retry(&self.retry)?;
        if self.tasks.is_empty() {
            return Err(SpecError::NoTasks.into());
        }
        if self.tasks.len() > limits::MAX_TASKS {
            let count = self.tasks.len();
            return Err(SpecError::TooManyTasks {
                count,
                max: limits::MAX_TASKS,
            }
            .into());
        }
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(self.tasks.len());
        for (position, task) in self.tasks.iter().enumerate() {
            check_name("task key", &task.key)?;
            if let Some(first) = index.insert(&task.key, position) {
                let key = task.key.clone();
                return Err(SpecError::DuplicateKey {
                    key,
                    first,
                    second: position,
                }
                .into());
            }
            check_task(task, self.mode)?;
        }

        let mut warnings = Vec::new();
        let mut edges = Vec::new();
        match self.mode {
            Mode::Dag => {
                for (position, task) in self.tasks.iter().enumerate() {
                    for dependency in &task.depends_on {
                        let Some(&from) = index.get(dependency.as_str()) else {
                            return Err(SpecError::UnknownDependency {
                                task: task.key.clone(),
                                dependency: dependency.clone(),
                            }
                            .into());
                        };
                        if from == position {
                            return Err(SpecError::SelfDependency(task.key.clone()).into());
                        }
                        edges.push((from as u32, position as u32));
                    }
                }
            }
            Mode::Sequential => {
                edges.extend((1..self.tasks.len() as u32).map(|i| (i - 1, i)));
            }
            Mode::Parallel => {}
        }
        drop(index);

        let dag = Dag::new(self.tasks.len(), &edges).map_err(|cycle| {
            Error::Cycle(cycle_keys(&cycle.0, |i| self.tasks[i as usize].key.clone()))
        })?;
        let keys: Vec<String> = self.tasks.iter().map(|task| task.key.clone()).collect();
        for (position, task) in self.tasks.iter_mut().enumerate() {
            let before = task.depends_on.len();
            task.depends_on = dag
                .predecessors(position as u32)
                .iter()
                .map(|&p| keys[p as usize].clone())
                .collect();
            if task.depends_on.len() < before && self.mode == Mode::Dag {
                warnings.push(format!("task `{}` lists a dependency twice", task.key));
            }
        }
        if self.mode == Mode::Dag && self.tasks.len() > 1 {
            let isolated: Vec<&str> = (0..self.tasks.len() as u32)
                .filter(|&v| dag.predecessors(v).is_empty() && dag.successors(v).is_empty())
                .map(|v| self.tasks[v as usize].key.as_str())
                .collect();
            if !isolated.is_empty() {
                warnings.push(format!(
                    "{} task(s) neither depend on nor are needed by any other: {}",
                    isolated.len(),
                    preview(&isolated)
                ));
            }
        }

        let durations: Vec<f64> = self
            .tasks
            .iter()
            .map(TaskSpec::estimate_or_default)
            .collect();
        let schedule = dag.schedule(&durations);
        let analysis = analyse(
            &dag,
            &schedule,
            |i| self.tasks[i as usize].key.clone(),
            warnings,
        );
        Ok(ValidatedWorkflow {
            spec: self,
            dag,
            analysis,
        })
    }
}

/// Names the stages and critical path of a graph with `key_of`.
pub(crate) fn analyse(
    dag: &Dag,
    schedule: &Schedule,
    key_of: impl Fn(u32) -> String,
    warnings: Vec<String>,
) -> Analysis {
    let stages = dag
        .stages()
        .into_iter()
        .map(|stage| stage.into_iter().map(&key_of).collect())
        .collect();
    let critical_path = CriticalPath {
        keys: schedule.critical_path.iter().map(|&v| key_of(v)).collect(),
        length: schedule.makespan,
    };
    Analysis {
        stages,
        critical_path,
        b_levels: schedule.b_level.clone(),
        warnings,
    }
}

/// The keys of a cycle, closed: `a -> b -> c -> a`.
pub(crate) fn cycle_keys(nodes: &[u32], key_of: impl Fn(u32) -> String) -> Vec<String> {
    let mut keys: Vec<String> = nodes.iter().map(|&v| key_of(v)).collect();
    if let Some(first) = keys.first().cloned() {
        keys.push(first);
    }
    keys
}

fn preview(items: &[&str]) -> String {
    const SHOWN: usize = 10;
    let mut text = items
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

fn check_task(task: &TaskSpec, mode: Mode) -> Result<(), Error> {
    let key = &task.key;
    if task.title.trim().is_empty() {
        return Err(invalid_text(
            format!("title of task `{key}`"),
            "must not be empty".into(),
        ));
    }
    check_text(
        &format!("title of task `{key}`"),
        Some(&task.title),
        limits::MAX_TITLE_LEN,
    )?;
    check_text(
        &format!("description of task `{key}`"),
        task.description.as_deref(),
        limits::MAX_DESCRIPTION_LEN,
    )?;
    if let Some(value) = task.estimate
        && !(value.is_finite() && (0.0..=limits::MAX_ESTIMATE).contains(&value))
    {
        return Err(SpecError::InvalidEstimate {
            task: key.clone(),
            value,
            max: limits::MAX_ESTIMATE,
        }
        .into());
    }
    if let Some(value) = task.priority
        && !(0..=100).contains(&value)
    {
        return Err(SpecError::InvalidPriority {
            task: key.clone(),
            value,
        }
        .into());
    }
    if let Some(value) = task.max_attempts
        && !(1..=limits::MAX_ATTEMPTS).contains(&value)
    {
        let max = limits::MAX_ATTEMPTS;
        return Err(SpecError::InvalidMaxAttempts {
            task: key.clone(),
            value,
            max,
        }
        .into());
    }
    if task.skills.len() > limits::MAX_SKILLS {
        return Err(invalid_text(
            format!("skills of task `{key}`"),
            format!(
                "at most {} skills, got {}",
                limits::MAX_SKILLS,
                task.skills.len()
            ),
        ));
    }
    for (skill, &level) in &task.skills {
        check_name("skill name", skill)?;
        if !(1..=5).contains(&level) {
            let skill = skill.clone();
            return Err(SpecError::InvalidSkillLevel {
                task: key.clone(),
                skill,
                level,
            }
            .into());
        }
    }
    if !task.depends_on.is_empty() && mode != Mode::Dag {
        let mode = mode.as_str();
        return Err(SpecError::DependenciesNotAllowed {
            task: key.clone(),
            mode,
        }
        .into());
    }
    if task.depends_on.len() > limits::MAX_DEPENDENCIES {
        return Err(SpecError::TooManyDependencies {
            task: key.clone(),
            count: task.depends_on.len(),
            max: limits::MAX_DEPENDENCIES,
        }
        .into());
    }
    Ok(())
}

fn check_retry(retry: &RetryPolicy) -> Result<(), Error> {
    let invalid = |reason: &str| Err(SpecError::InvalidRetryPolicy(reason.into()).into());
    if retry.initial_interval < chrono::Duration::zero() {
        return invalid("initial_interval must not be negative");
    }
    if !(retry.backoff_coefficient.is_finite()
        && (1.0..=100.0).contains(&retry.backoff_coefficient))
    {
        return invalid("backoff_coefficient must be from 1 to 100");
    }
    if retry.max_interval < retry.initial_interval {
        return invalid("max_interval must be at least initial_interval");
    }
    if retry.max_interval > chrono::Duration::days(1) {
        return invalid("max_interval must be at most one day");
    }
    Ok(())
}

fn invalid_text(field: String, reason: String) -> Error {
    SpecError::InvalidText { field, reason }.into()
}

/// The naming rule for workflow names, task keys, agent names and skills: 1 to 64 characters of
/// ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit. `/` is excluded
/// because tasks are referred to as `workflow/key`.
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), Error> {
    match name_problem(value) {
        None => Ok(()),
        Some(reason) => Err(SpecError::InvalidName {
            what,
            value: shown_name(value),
            reason,
        }
        .into()),
    }
}

/// The naming rule for a name that is a call's argument rather than part of a workflow spec
/// (a sprint's): the same rule, reported as an invalid `field`.
pub(crate) fn check_argument_name(field: &str, what: &str, value: &str) -> Result<(), Error> {
    match name_problem(value) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidArgument {
            field: field.to_owned(),
            reason: format!("{what} `{}` {reason}", shown_name(value)),
        }),
    }
}

/// Which part of the naming rule `value` breaks, if any, followed by the whole rule so that
/// a caller can fix the name in one try.
fn name_problem(value: &str) -> Option<String> {
    let problem = if value.is_empty() {
        "must not be empty".to_owned()
    } else if let Some(bad) = value
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        format!("contains `{}`, which is not allowed", bad.escape_debug())
    } else if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        "must start with a letter or digit".to_owned()
    } else if value.len() > limits::MAX_NAME_LEN {
        format!("must be at most 64 characters, not {}", value.len())
    } else {
        return None;
    };
    Some(format!("{problem}; {}", limits::NAME_RULE))
}

/// A name as quoted in a message: shortened when it is too long to repeat.
fn shown_name(value: &str) -> String {
    let mut shown: String = value.chars().take(limits::MAX_NAME_LEN + 1).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    shown
}

/// Checks the length of an optional text field.
pub(crate) fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), Error> {
    match value {
        Some(text) if text.chars().count() > max => Err(invalid_text(
            field.to_owned(),
            format!(
                "must be at most {max} characters, got {}",
                text.chars().count()
            ),
        )),
        _ => Ok(()),
    }
}
