//! Prompts: what a person types as a slash command (`/mcp__orchestration__standup` in Claude
//! Code). Each prompt is a user message that tells the model what to do with the tools and
//! carries what the store knows right now (held tasks and tokens, the team's day, a sprint's
//! findings), so the model starts from facts rather than from a first round of calls.
//!
//! Argument values complete through `completion/complete` from the names in the store.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::Duration;
use orchestration_core::{
    EventKind, Store, TaskState, limits, store::Delivery, store::RetrospectiveOptions,
    text::counted, text::rfc3339,
};
use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Map, Value};

use crate::tools::{held_line, lease_note};

/// Agents a standup lists at most, and tasks per agent and list.
const STANDUP_AGENTS: usize = 50;
const STANDUP_TASKS: usize = 10;
/// The most recent events a standup reads for what was done: a day of a busy team.
const STANDUP_EVENTS: usize = 20_000;

/// Why a prompt cannot be given; the message names the argument and what to pass.
#[derive(Debug)]
pub(crate) enum PromptError {
    /// No prompt of that name.
    Unknown(String),
    /// An argument is missing or wrong.
    Argument(String),
    /// The store refused (an unknown agent or sprint, with suggestions) or failed.
    Store(orchestration_core::Error),
}

impl From<orchestration_core::Error> for PromptError {
    fn from(error: orchestration_core::Error) -> PromptError {
        PromptError::Store(error)
    }
}

/// (name, description, arguments as (name, description, required)).
type Spec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, bool)],
);

const PROMPTS: [Spec; 5] = [
    (
        "work",
        "Work as an agent: register if needed, claim your next task, and the loop to follow",
        &[
            ("agent", "Your agent name", true),
            ("workflow", "Only this workflow", false),
        ],
    ),
    (
        "standup",
        "The team's standup: per agent, done since, holding, blocked on",
        &[("hours", "Done within the last hours (default 24)", false)],
    ),
    (
        "plan-sprint",
        "Plan a sprint from the backlog: a dry run to review, then save it",
        &[
            ("name", "The sprint's name", true),
            ("start", "First day, YYYY-MM-DD", false),
            ("end", "Last day, YYYY-MM-DD", false),
        ],
    ),
    (
        "retro",
        "A sprint's retrospective: commitment against done, findings and actions",
        &[("sprint", "The sprint", true)],
    ),
    (
        "handoff",
        "Hand your task to another agent with a note that lets it carry on",
        &[
            ("agent", "Your agent name", true),
            ("to", "The agent taking over", true),
            ("task", "workflow/key, if you hold several", false),
        ],
    ),
];

/// Every prompt, for `prompts/list`.
pub(crate) fn list() -> Vec<Prompt> {
    PROMPTS
        .iter()
        .map(|(name, description, arguments)| {
            let arguments = arguments
                .iter()
                .map(|(name, description, required)| {
                    PromptArgument::new(*name)
                        .with_description(*description)
                        .with_required(*required)
                })
                .collect();
            Prompt::new(*name, Some(*description), Some(arguments))
        })
        .collect()
}

/// What kind of name an argument of a prompt takes, for completion.
pub(crate) fn argument_kind(prompt: &str, argument: &str) -> Option<NameKind> {
    match (prompt, argument) {
        (_, "agent" | "to") => Some(NameKind::Agent),
        (_, "workflow") => Some(NameKind::Workflow),
        ("retro", "sprint") => Some(NameKind::Sprint),
        _ => None,
    }
}

/// The kinds of names the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NameKind {
    Agent,
    Workflow,
    Sprint,
    /// The keys of this workflow's tasks.
    Task(String),
}

/// The names of `kind` that start with `prefix` (ignoring case), sorted.
pub(crate) fn names(
    store: &Store,
    kind: &NameKind,
    prefix: &str,
) -> orchestration_core::Result<Vec<String>> {
    let all: Vec<String> = match kind {
        NameKind::Agent => store.agents()?.into_iter().map(|a| a.name).collect(),
        NameKind::Workflow => store.workflows()?.into_iter().map(|w| w.name).collect(),
        NameKind::Sprint => store.sprints()?.into_iter().map(|s| s.name).collect(),
        NameKind::Task(workflow) => store
            .workflow_report(&workflow.as_str().into())?
            .tasks
            .into_iter()
            .map(|t| t.key)
            .collect(),
    };
    let prefix = prefix.to_lowercase();
    let mut matching: Vec<String> = all
        .into_iter()
        .filter(|name| name.to_lowercase().starts_with(&prefix))
        .collect();
    matching.sort();
    Ok(matching)
}

/// The prompt `name` with `arguments`, filled in from the store.
pub(crate) fn get(
    store: &Store,
    name: &str,
    arguments: &Map<String, Value>,
) -> Result<GetPromptResult, PromptError> {
    let Some((_, description, specs)) = PROMPTS.iter().find(|(n, ..)| *n == name) else {
        let known: Vec<&str> = PROMPTS.iter().map(|(n, ..)| *n).collect();
        return Err(PromptError::Unknown(format!(
            "no prompt `{name}`; the prompts are {}",
            known.join(", ")
        )));
    };
    let args = Args::check(name, specs, arguments)?;
    let text = match name {
        "work" => work(store, &args)?,
        "standup" => standup(store, &args)?,
        "plan-sprint" => plan_sprint(store, &args)?,
        "retro" => retro(store, &args)?,
        _ => handoff(store, &args)?,
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(*description),
    )
}

/// A prompt's arguments, checked against its spec: strings, the required ones present, no
/// others.
struct Args<'a> {
    values: BTreeMap<&'a str, String>,
}

impl<'a> Args<'a> {
    fn check(
        prompt: &str,
        specs: &'a [(&'static str, &'static str, bool)],
        given: &Map<String, Value>,
    ) -> Result<Args<'a>, PromptError> {
        if let Some(extra) = given.keys().find(|k| !specs.iter().any(|(n, ..)| n == k)) {
            let names: Vec<&str> = specs.iter().map(|(n, ..)| *n).collect();
            return Err(PromptError::Argument(format!(
                "`{prompt}` has no argument `{extra}`; its arguments are {}",
                names.join(", ")
            )));
        }
        let mut values = BTreeMap::new();
        for (name, _, required) in specs {
            match given.get(*name) {
                Some(Value::String(s)) if !s.trim().is_empty() => {
                    values.insert(*name, s.trim().to_owned());
                }
                Some(Value::String(_)) | None if !required => {}
                Some(Value::String(_)) | None => {
                    return Err(PromptError::Argument(format!("`{prompt}` needs `{name}`")));
                }
                Some(other) => {
                    return Err(PromptError::Argument(format!(
                        "`{name}` is a string, not {other}"
                    )));
                }
            }
        }
        Ok(Args { values })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A required argument: [`Args::check`] made sure it is there.
    fn required(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

fn work(store: &Store, args: &Args<'_>) -> Result<String, PromptError> {
    let agent = args.required("agent");
    let scope = args
        .get("workflow")
        .map(|w| format!(", \"workflow\": \"{w}\""))
        .unwrap_or_default();
    let mut text = format!("You work as agent `{agent}` in orchestration.\n\n");
    match store.held_tasks(agent) {
        Ok(held) if held.is_empty() => text.push_str("You hold no task now.\n"),
        Ok(held) => {
            let _ = writeln!(
                text,
                "You hold {} now; report on {} before claiming more:",
                counted(held.len() as u64, "task"),
                if held.len() == 1 { "it" } else { "each" }
            );
            for h in held.iter().take(STANDUP_TASKS) {
                let _ = writeln!(text, "- {}", held_line(h));
            }
        }
        Err(orchestration_core::Error::UnknownAgent { .. }) => {
            let _ = writeln!(
                text,
                "`{agent}` is not registered yet. First call agent_profile {{\"action\": \
                 \"upsert\", \"name\": \"{agent}\", \"capabilities\": {{...your skills, 1-5...}}}}."
            );
        }
        Err(e) => return Err(e.into()),
    }
    let _ = write!(
        text,
        "\nThen loop:\n\
         1. task_claim {{\"agent\": \"{agent}\"{scope}, \"wait_seconds\": 60}}. It returns a task, its \
         token and its dependencies' results, or claimed=false and why; if nothing comes after a \
         few waits, stop and say so.\n\
         2. Before editing a file, lock it: agent_collaboration {{\"action\": \"lock\", \"agent\": \
         \"{agent}\", \"resource\": \"path/to/file\"}}; unlock when done.\n\
         3. Work on the task. Before the lease ends, task_update with \"action\": \"heartbeat\" \
         (or \"progress\" with a note), the task, your name and the token.\n\
         4. task_update \"complete\" with a short result the next tasks can use, or \"fail\" with \
         the error (\"retryable\": false when a retry cannot help), or \"release\" to give it \
         back.\n\
         5. Back to 1. If a report is rejected as stale, the task went to someone else: drop it.\n\
         Lost track? task_get {{\"agent\": \"{agent}\"}} lists what you hold, with tokens."
    );
    Ok(text)
}

fn standup(store: &Store, args: &Args<'_>) -> Result<String, PromptError> {
    let hours: i64 = match args.get("hours") {
        None => 24,
        Some(h) => match h.parse() {
            Ok(h) if (1..=24 * 30).contains(&h) => h,
            _ => {
                return Err(PromptError::Argument(format!(
                    "`hours` is a whole number from 1 to 720, not `{h}`"
                )));
            }
        },
    };
    let now = store.now()?;
    let mut done: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in store.recent_events(Duration::hours(hours), STANDUP_EVENTS)? {
        if event.kind == EventKind::TaskState
            && event.to == Some(TaskState::Succeeded)
            && let (Some(agent), Some(workflow), Some(key)) =
                (event.agent, event.workflow_name, event.task_key)
        {
            done.entry(agent)
                .or_default()
                .push(format!("`{workflow}/{key}`"));
        }
    }
    let (_, waits) = store.locks()?;
    let agents = store.agents()?;
    let mut text = format!(
        "Give the team's standup from these records: for each agent what it finished, what it \
         holds and what blocks it; then the risks (leases about to lapse, agents blocked by each \
         other, idle agents while work is ready).\n\n# Standup at {} (done in the last {})\n",
        rfc3339(now),
        counted(hours as u64, "hour")
    );
    for agent in agents.iter().take(STANDUP_AGENTS) {
        let _ = write!(text, "\n## {} ({})\n", agent.name, agent.status);
        let finished = done.remove(&agent.name).unwrap_or_default();
        let _ = writeln!(text, "- done: {}", listed(&finished));
        let held: Vec<String> = store
            .held_tasks(&agent.name)?
            .iter()
            .map(|h| {
                format!(
                    "`{}/{}` ({}{})",
                    h.task.workflow_name,
                    h.task.key,
                    h.task.title,
                    lease_note(h)
                )
            })
            .collect();
        let _ = writeln!(text, "- holding: {}", listed(&held));
        let blocked: Vec<String> = waits
            .iter()
            .filter(|w| w.waiter == agent.name)
            .map(|w| format!("lock `{}` since {}", w.resource, rfc3339(w.since)))
            .collect();
        let _ = writeln!(text, "- blocked on: {}", listed(&blocked));
        let (_, unread) = store.inbox(&agent.name, 0, 0, Delivery::Peek)?;
        if unread > 0 {
            let _ = writeln!(text, "- unread messages: {unread}");
        }
    }
    if agents.len() > STANDUP_AGENTS {
        let _ = writeln!(
            text,
            "\n… and {} more agents",
            agents.len() - STANDUP_AGENTS
        );
    }
    if agents.is_empty() {
        text.push_str("\nNo agent is registered yet.\n");
    }
    Ok(text)
}

/// Up to [`STANDUP_TASKS`] items, then how many more; `nothing` for none.
fn listed(items: &[String]) -> String {
    if items.is_empty() {
        return "nothing".to_owned();
    }
    let mut text = items
        .iter()
        .take(STANDUP_TASKS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > STANDUP_TASKS {
        let _ = write!(text, " and {} more", items.len() - STANDUP_TASKS);
    }
    text
}

fn plan_sprint(store: &Store, args: &Args<'_>) -> Result<String, PromptError> {
    // The name is checked by sprint_planning itself, when the model calls it.
    let name = args.required("name");
    for field in ["start", "end"] {
        if let Some(date) = args.get(field)
            && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err()
        {
            return Err(PromptError::Argument(format!(
                "`{field}` is a date as YYYY-MM-DD, not `{date}`"
            )));
        }
    }
    if store.sprint(name).is_ok() {
        return Err(PromptError::Argument(format!(
            "sprint `{name}` exists already; choose a new name, or use retro for it"
        )));
    }
    let dates = match (args.get("start"), args.get("end")) {
        (Some(s), Some(e)) => format!(", \"start\": \"{s}\", \"end\": \"{e}\""),
        (Some(s), None) => format!(", \"start\": \"{s}\""),
        (None, Some(e)) => format!(", \"end\": \"{e}\""),
        (None, None) => String::new(),
    };
    let mut text = format!(
        "Plan sprint `{name}`.\n\
         1. sprint_planning {{\"action\": \"plan\", \"name\": \"{name}\"{dates}}} is a dry run: it \
         shows capacity, the chosen tasks and why others were left out.\n\
         2. Review it with me: the commitment against capacity, skills nobody has, dependencies \
         that strand work.\n\
         3. When I agree, save it with \"action\": \"create\" (same arguments) and start it with \
         \"action\": \"start\".\n"
    );
    let sprints = store.sprints()?;
    if !sprints.is_empty() {
        text.push_str(
            "\nEarlier sprints (velocity and focus factor are learnt from the closed ones):\n",
        );
        for s in sprints.iter().rev().take(5) {
            let _ = writeln!(
                text,
                "- `{}`: {} to {}, {}",
                s.name, s.start, s.end, s.status
            );
        }
    }
    let members = store.agents()?.len();
    let _ = writeln!(text, "\nRegistered agents: {members}.");
    Ok(text)
}

fn retro(store: &Store, args: &Args<'_>) -> Result<String, PromptError> {
    let sprint = args.required("sprint");
    let retro = store.sprint_retrospective(sprint, &RetrospectiveOptions::default())?;
    let totals = &retro.report.totals;
    let mut text = format!(
        "Run the retrospective of sprint `{sprint}` ({}, {} to {}) with me. Go through the \
         findings below, ask what we keep and what we change, and turn the actions we agree on \
         into tasks. Closing it (sprint_retrospective {{\"name\": \"{sprint}\", \"close\": \
         true}}) fixes its velocity; do that only when I say so.\n\n\
         Committed {:.1} points, completed {:.1} of a scope of {:.1}.\n",
        retro.sprint.status,
        retro.sprint.start,
        retro.sprint.end,
        totals.committed,
        totals.completed,
        totals.scope
    );
    if retro.findings.is_empty() {
        text.push_str("No findings.\n");
    } else {
        text.push_str("\nFindings:\n");
        for finding in &retro.findings {
            let _ = writeln!(text, "- {} Action: {}", finding.observation, finding.action);
        }
    }
    Ok(text)
}

fn handoff(store: &Store, args: &Args<'_>) -> Result<String, PromptError> {
    let (agent, to) = (args.required("agent"), args.required("to"));
    store.agent(to)?;
    let held = store.held_tasks(agent)?;
    let task = match (args.get("task"), held.as_slice()) {
        (Some(task), _) => held
            .iter()
            .find(|h| format!("{}/{}", h.task.workflow_name, h.task.key) == task)
            .ok_or_else(|| {
                PromptError::Argument(format!("`{agent}` does not hold `{task}`; task_get {{\"agent\": \"{agent}\"}} lists what it holds"))
            })?,
        (None, [one]) => one,
        (None, []) => {
            return Err(PromptError::Argument(format!(
                "`{agent}` holds no task to hand off"
            )));
        }
        (None, _) => {
            return Err(PromptError::Argument(format!(
                "`{agent}` holds {}; name one with `task`",
                counted(held.len() as u64, "task")
            )));
        }
    };
    let name = format!("{}/{}", task.task.workflow_name, task.task.key);
    Ok(format!(
        "Hand `{name}` ({}) from `{agent}` to `{to}`.\n\
         1. Write a note (at most {} characters) that lets `{to}` carry on without asking: what \
         is done, what is left, where the work is (files, branches), and what to watch out for.\n\
         2. Call agent_collaboration {{\"action\": \"handoff\", \"agent\": \"{agent}\", \"task\": \
         \"{name}\", \"token\": {}, \"to\": \"{to}\", \"note\": \"...\"}}.\n\
         3. Unlock what you locked for it, and tell me it is handed over.",
        task.task.title,
        limits::MAX_MESSAGE_LEN,
        task.token
    ))
}
