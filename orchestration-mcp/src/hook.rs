//! Claude Code hooks: one hook event's JSON in, Claude Code's answer out.
//!
//! `PreToolUse` on a file edit is denied while another agent holds an exclusive lock on the
//! file or on a prefix holding it; `SessionStart` adds the agent's held tasks and unread
//! messages as context; `Stop` and `SubagentStop` keep the model working once when it still
//! holds tasks. A hook runs on every matching call, so it only reads, through a read-only
//! handle, and it fails open: an unreadable database or event allows the edit and says why.

use std::path::{Component, Path, PathBuf};

use orchestration_core::{
    Error, Store, collaboration::Lock, collaboration::write_blockers, store::Delivery,
    text::counted, text::rfc3339,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tools::held_line;

/// The environment variable that names the agent a Claude Code session works as.
pub const AGENT_ENV: &str = "ORCHESTRATION_AGENT";

/// How many unread messages a session start shows in full.
const MESSAGES_SHOWN: usize = 5;
/// How many characters of a message body a session start shows.
const MESSAGE_CHARS: usize = 300;
/// The most a hook reads from stdin: an event is small, but a `Write` carries the whole file.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// What a hook knows besides the event: who it acts for, where the project is, the database.
#[derive(Debug, Clone)]
pub struct HookContext {
    /// The agent's name, from [`AGENT_ENV`].
    pub agent: Option<String>,
    /// The project's root, to which file paths are made relative before they meet lock names.
    pub root: Option<PathBuf>,
    /// The database file.
    pub db: PathBuf,
}

/// The answer to Claude Code: what to write on stdout (nothing, or one JSON object) and the
/// exit code. Every answer here exits 0; a denial is said in the JSON, as Claude Code reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct HookAnswer {
    /// The JSON object for stdout, if any.
    pub stdout: Option<Value>,
    /// The process's exit code.
    pub exit_code: u8,
}

impl HookAnswer {
    fn silent() -> HookAnswer {
        HookAnswer {
            stdout: None,
            exit_code: 0,
        }
    }

    fn json(value: Value) -> HookAnswer {
        HookAnswer {
            stdout: Some(value),
            exit_code: 0,
        }
    }

    /// Lets the call go ahead and tells the person why the hook could not check it.
    fn warn(message: String) -> HookAnswer {
        HookAnswer::json(json!({ "systemMessage": format!("orchestration: {message}") }))
    }
}

/// The fields of a hook event this reads; the rest are ignored.
#[derive(Debug, Deserialize)]
struct Event {
    hook_event_name: String,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    tool_input: Value,
    #[serde(default)]
    stop_hook_active: bool,
}

/// Answers one hook event given as JSON text.
pub fn answer(input: &str, context: &HookContext) -> HookAnswer {
    let event: Event = match serde_json::from_str(input) {
        Ok(event) => event,
        Err(e) => return HookAnswer::warn(format!("the hook event is not valid JSON ({e})")),
    };
    match event.hook_event_name.as_str() {
        "PreToolUse" => pre_tool_use(&event, context),
        "SessionStart" => session_start(context),
        "Stop" | "SubagentStop" => stop(&event, context),
        _ => HookAnswer::silent(),
    }
}

/// Opens the database for reading, or says why it cannot: a hook never creates one.
fn open(context: &HookContext) -> Result<Store, HookAnswer> {
    if Store::server_url(&context.db).is_none() && !context.db.exists() {
        return Err(HookAnswer::warn(format!(
            "no database at {}; nothing is checked (set ORCHESTRATION_DB to the file the server uses)",
            context.db.display()
        )));
    }
    Store::open_read_only(&context.db).map_err(|e| {
        HookAnswer::warn(format!(
            "cannot read the database at {} ({e}); nothing is checked",
            Store::shown(&context.db)
        ))
    })
}

/// The tools that write a file, and the field of their input that names it.
fn edited_file(event: &Event) -> Option<&str> {
    let field = match event.tool_name.as_deref()? {
        "Edit" | "Write" | "MultiEdit" => "file_path",
        "NotebookEdit" => "notebook_path",
        _ => return None,
    };
    event.tool_input.get(field)?.as_str()
}

fn pre_tool_use(event: &Event, context: &HookContext) -> HookAnswer {
    let Some(file) = edited_file(event) else {
        return HookAnswer::silent();
    };
    let root = context.root.as_deref().or(event.cwd.as_deref());
    let name = lock_name(Path::new(file), root);
    let store = match open(context) {
        Ok(store) => store,
        Err(warning) => return warning,
    };
    let held = match store.locks() {
        Ok((held, _)) => held,
        Err(e) => {
            return HookAnswer::warn(format!(
                "cannot read the locks ({e}); the edit is not checked"
            ));
        }
    };
    let agent = context.agent.as_deref();
    let blockers = write_blockers(agent, &name, &held);
    let Some(first) = blockers.first() else {
        return match agent {
            None => HookAnswer::warn(format!(
                "{AGENT_ENV} is not set, so this session's own locks are unknown; \
                 set it to the agent name this session registered"
            )),
            Some(_) => HookAnswer::silent(),
        };
    };
    let reason = denial(&store, &name, first, blockers.len(), agent);
    HookAnswer::json(json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }))
}

/// Why an edit is denied: the file, the holder, what the holder is working on, and what to do.
fn denial(store: &Store, name: &str, lock: &Lock, count: usize, agent: Option<&str>) -> String {
    let working_on = match store.held_tasks(&lock.owner) {
        Ok(held) if !held.is_empty() => {
            let tasks: Vec<String> = held
                .iter()
                .map(|h| format!("`{}/{}`", h.task.workflow_name, h.task.key))
                .collect();
            format!(", who is working on {}", tasks.join(", "))
        }
        _ => String::new(),
    };
    let by = if lock.resource.is_prefix() {
        format!(" (lock `{}` covers it)", lock.resource)
    } else {
        String::new()
    };
    let others = match count {
        1 => String::new(),
        n => format!(" and {} other lock(s)", n - 1),
    };
    let identity = match agent {
        Some(_) => String::new(),
        None => format!(" {AGENT_ENV} is not set, so no lock counts as this session's own."),
    };
    format!(
        "`{name}` is locked exclusively by agent `{}`{working_on}{by}{others}, until {} unless \
         renewed. Do not edit it: work on something else, or ask `{}` with agent_collaboration \
         (action message).{identity}",
        lock.owner,
        rfc3339(lock.expires_at),
        lock.owner
    )
}

fn session_start(context: &HookContext) -> HookAnswer {
    let Some(agent) = context.agent.as_deref() else {
        return HookAnswer::warn(format!(
            "{AGENT_ENV} is not set: this session has no agent name, so it sees no held tasks \
             or messages"
        ));
    };
    let store = match open(context) {
        Ok(store) => store,
        Err(warning) => return warning,
    };
    let held = match store.held_tasks(agent) {
        Ok(held) => held,
        Err(Error::UnknownAgent { .. }) => {
            let text = format!(
                "You work as agent `{agent}` in orchestration, which is not registered yet: \
                 register with agent_profile (action upsert, name `{agent}`) before claiming."
            );
            return context_answer(text);
        }
        Err(e) => return HookAnswer::warn(format!("cannot read the held tasks ({e})")),
    };
    let (messages, unread) = match store.inbox(agent, MESSAGES_SHOWN, usize::MAX, Delivery::Peek) {
        Ok(inbox) => inbox,
        Err(e) => return HookAnswer::warn(format!("cannot read the inbox ({e})")),
    };
    let mut text = format!("You work as agent `{agent}` in orchestration.");
    if held.is_empty() {
        text.push_str(" You hold no task: claim one with task_claim.");
    } else {
        text.push_str(&format!(
            " You hold {}; report on each with task_update (heartbeat to keep the lease):",
            counted(held.len() as u64, "task")
        ));
        for h in &held {
            text.push_str(&format!("\n- {}", held_line(h)));
        }
    }
    if !messages.is_empty() {
        text.push_str(&format!(
            "\n{} unread:",
            counted((messages.len() + unread) as u64, "message")
        ));
        for m in &messages {
            text.push_str(&format!(
                "\n- #{} from `{}`: {}",
                m.id,
                m.sender,
                clip_chars(&m.body, MESSAGE_CHARS)
            ));
        }
        if unread > 0 {
            text.push_str(&format!("\n- and {unread} more"));
        }
        text.push_str("\nRead and acknowledge them with agent_collaboration (action inbox).");
    }
    context_answer(text)
}

fn context_answer(text: String) -> HookAnswer {
    HookAnswer::json(json!({
        "hookSpecificOutput": {
            "hookEventName": "SessionStart",
            "additionalContext": text,
        }
    }))
}

fn stop(event: &Event, context: &HookContext) -> HookAnswer {
    let Some(agent) = context.agent.as_deref() else {
        return HookAnswer::silent();
    };
    let store = match open(context) {
        Ok(store) => store,
        Err(warning) => return warning,
    };
    let held = match store.held_tasks(agent) {
        Ok(held) => held,
        Err(Error::UnknownAgent { .. }) => return HookAnswer::silent(),
        Err(e) => return HookAnswer::warn(format!("cannot read the held tasks ({e})")),
    };
    if held.is_empty() {
        return HookAnswer::silent();
    }
    let tasks: Vec<String> = held
        .iter()
        .map(|h| {
            format!(
                "`{}/{}` (token {})",
                h.task.workflow_name, h.task.key, h.token
            )
        })
        .collect();
    let reason = format!(
        "Agent `{agent}` still holds {}: {}. Report each with task_update (complete, fail, or \
         release to give it back) before stopping.",
        counted(held.len() as u64, "task"),
        tasks.join(", ")
    );
    if event.stop_hook_active {
        // Claude Code already continued once for a stop hook: blocking again could loop, so
        // the person is told instead.
        return HookAnswer::warn(reason);
    }
    HookAnswer::json(json!({ "decision": "block", "reason": reason }))
}

/// The name a file goes by in locks: relative to the project's root with `/` separators, or
/// the whole path, lexically normalised, when it lies outside the root.
pub fn lock_name(file: &Path, root: Option<&Path>) -> String {
    let absolute = match root {
        Some(root) if file.is_relative() => root.join(file),
        _ => file.to_path_buf(),
    };
    let file = normalise(&absolute);
    let relative = root.and_then(|root| {
        let root = normalise(root);
        file.strip_prefix(&root)
            .ok()
            .map(Path::to_path_buf)
            .or_else(|| {
                // The root may be reached through a symbolic link the file's path does not use.
                let real = std::fs::canonicalize(&root).ok()?;
                file.strip_prefix(real).ok().map(Path::to_path_buf)
            })
    });
    let name = relative.unwrap_or(file).to_string_lossy().into_owned();
    // Lock names use `/` whatever the platform.
    if cfg!(windows) {
        name.replace('\\', "/")
    } else {
        name
    }
}

/// Removes `.` and resolves `..` without touching the file system: the file may not exist yet.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn clip_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_relative_to_the_root() {
        let root = Some(Path::new("/home/ana/project"));
        let cases = [
            ("/home/ana/project/src/main.rs", root, "src/main.rs"),
            ("/home/ana/project/./src/../docs/a.md", root, "docs/a.md"),
            ("src/lib.rs", root, "src/lib.rs"),
            ("/etc/hosts", root, "/etc/hosts"),
            ("/home/ana/project2/x.rs", root, "/home/ana/project2/x.rs"),
            ("/srv/x.rs", None, "/srv/x.rs"),
        ];
        for (file, root, expected) in cases {
            assert_eq!(lock_name(Path::new(file), root), expected, "{file}");
        }
    }

    #[test]
    fn long_messages_are_clipped_on_a_character_boundary() {
        assert_eq!(clip_chars("héllo", 2), "hé…");
        assert_eq!(clip_chars("hé", 2), "hé");
    }
}
