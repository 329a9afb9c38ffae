//! Collaboration, the pure part: which advisory locks conflict, and deadlock detection on the
//! wait-for graph of agents waiting for locks held by others.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use chrono::{DateTime, Utc};

/// Whether other agents may hold a lock at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Any number of shared holders, no exclusive one.
    Shared,
    /// One holder only.
    Exclusive,
}

impl LockMode {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<LockMode> {
        [LockMode::Shared, LockMode::Exclusive]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource name, or every name that starts with a prefix (`src/` covers `src/main.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Exactly this name.
    Exact(String),
    /// Every name starting with this.
    Prefix(String),
}

impl Resource {
    /// Whether some name is covered by both.
    pub fn overlaps(&self, other: &Resource) -> bool {
        match (self, other) {
            (Resource::Exact(a), Resource::Exact(b)) => a == b,
            (Resource::Prefix(p), Resource::Exact(name))
            | (Resource::Exact(name), Resource::Prefix(p)) => name.starts_with(p.as_str()),
            (Resource::Prefix(a), Resource::Prefix(b)) => {
                a.starts_with(b.as_str()) || b.starts_with(a.as_str())
            }
        }
    }

    /// The name or prefix.
    pub fn name(&self) -> &str {
        match self {
            Resource::Exact(name) | Resource::Prefix(name) => name,
        }
    }

    /// Whether this is a prefix.
    pub fn is_prefix(&self) -> bool {
        matches!(self, Resource::Prefix(_))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Exact(name) => f.write_str(name),
            Resource::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// A lock held by an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Lock {
    /// What it covers.
    pub resource: Resource,
    /// Who holds it.
    pub owner: String,
    /// Shared or exclusive.
    pub mode: LockMode,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// Whether a request by `agent` for `resource` in `mode` conflicts with `held`.
pub fn conflicts(agent: &str, resource: &Resource, mode: LockMode, held: &Lock) -> bool {
    held.owner != agent
        && held.resource.overlaps(resource)
        && !(mode == LockMode::Shared && held.mode == LockMode::Shared)
}

/// The locks that stop `agent` from writing `name`: exclusive locks of other agents covering it.
/// Shared locks are for readers and stop nothing here. Without an identity, every exclusive
/// lock covering `name` counts, since none of them can be the writer's own.
pub fn write_blockers<'a>(agent: Option<&str>, name: &str, held: &'a [Lock]) -> Vec<&'a Lock> {
    let resource = Resource::Exact(name.to_owned());
    held.iter()
        .filter(|l| l.mode == LockMode::Exclusive && Some(l.owner.as_str()) != agent)
        .filter(|l| l.resource.overlaps(&resource))
        .collect()
}

/// If `agent` waited for `holders`, would the wait-for graph (`waits`: waiter → agents it waits
/// for) close a cycle? Returns the cycle, starting and ending with `agent`.
pub fn deadlock(
    agent: &str,
    holders: &BTreeSet<String>,
    waits: &BTreeMap<String, BTreeSet<String>>,
) -> Option<Vec<String>> {
    // Breadth-first from the holders back to `agent`, remembering how each agent was reached.
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue: VecDeque<&str> = VecDeque::new();
    for holder in holders {
        if parent.insert(holder, agent).is_none() {
            queue.push_back(holder);
        }
    }
    while let Some(current) = queue.pop_front() {
        if current == agent {
            let mut cycle = vec![agent.to_owned()];
            let mut at = parent[agent];
            while at != agent {
                cycle.push(at.to_owned());
                at = parent[at];
            }
            cycle.push(agent.to_owned());
            // Built backwards from `agent`; reverse so each waits for the next.
            let last = cycle.len() - 1;
            cycle[1..last].reverse();
            return Some(cycle);
        }
        for next in waits.get(current).into_iter().flatten() {
            if !parent.contains_key(next.as_str()) {
                parent.insert(next, current);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
