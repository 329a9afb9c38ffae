//! Agent tools: `agent_profile`.

use std::collections::BTreeMap;

use orchestration_core::{AgentProfile, AgentStatus, AgentUpdate};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ToolFailure;
use crate::output::{Structured, output_schema, page};
use crate::server::OrchestrationServer;
use crate::tools::workflow::DetailIn;
use crate::tools::{blocking, time};

/// What to do with profiles.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProfileActionIn {
    Upsert,
    Get,
    List,
    SetStatus,
}

/// Whether an agent takes work.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusIn {
    Active,
    Paused,
    Offline,
    Retired,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileIn {
    action: ProfileActionIn,
    /// Agent name (all but list)
    name: Option<String>,
    /// {skill: level 1-5}; replaces the set
    capabilities: Option<BTreeMap<String, u8>>,
    /// WIP limit, default 3
    max_concurrent: Option<u32>,
    /// Points per working day, default 5
    points_per_day: Option<f64>,
    status: Option<StatusIn>,
    /// list: summary (default) or full (adds skills)
    detail: Option<DetailIn>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProfileOut {
    name: String,
    status: String,
    max_concurrent: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    capabilities: Option<BTreeMap<String, u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    points_per_day: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_active_at: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ProfilesOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<ProfileOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<ProfileOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A profile; `full` adds skills, pace and last activity.
fn profile_out(profile: AgentProfile, full: bool) -> ProfileOut {
    ProfileOut {
        name: profile.name,
        status: profile.status.to_string(),
        max_concurrent: profile.max_concurrent,
        capabilities: full.then_some(profile.capabilities),
        points_per_day: full.then_some(profile.points_per_day),
        last_active_at: if full {
            profile.last_active_at.map(time)
        } else {
            None
        },
    }
}

fn status(status: StatusIn) -> AgentStatus {
    match status {
        StatusIn::Active => AgentStatus::Active,
        StatusIn::Paused => AgentStatus::Paused,
        StatusIn::Offline => AgentStatus::Offline,
        StatusIn::Retired => AgentStatus::Retired,
    }
}

#[tool_router(router = agent_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Register or update an agent's skills and capacity, get one, list all, or set its status.
    #[tool(
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = output_schema::<ProfilesOut>()
    )]
    async fn agent_profile(
        &self,
        Parameters(input): Parameters<ProfileIn>,
    ) -> Result<Structured<ProfilesOut>, ToolFailure> {
        let one = |profile: AgentProfile, verb: &str| {
            let summary = format!(
                "{verb} agent `{}` ({}): {} skill(s), WIP limit {}",
                profile.name,
                profile.status,
                profile.capabilities.len(),
                profile.max_concurrent
            );
            Structured::new(
                summary,
                ProfilesOut {
                    agent: Some(profile_out(profile, true)),
                    agents: None,
                    next_cursor: None,
                },
            )
        };
        let name = || {
            input
                .name
                .clone()
                .ok_or_else(|| ToolFailure::invalid("name", "this action needs the agent's name"))
        };
        match input.action {
            ProfileActionIn::List => {
                let all = blocking(self.store(), |store| store.agents()).await?;
                let full = input.detail.unwrap_or_default() == DetailIn::Full;
                let all: Vec<ProfileOut> = all.into_iter().map(|p| profile_out(p, full)).collect();
                let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
                let summary = format!("{} of {} agents", items.len(), all.len());
                Ok(Structured::new(
                    summary,
                    ProfilesOut {
                        agent: None,
                        agents: Some(items),
                        next_cursor,
                    },
                ))
            }
            ProfileActionIn::Get => {
                let name = name()?;
                let profile = blocking(self.store(), move |store| store.agent(&name)).await?;
                Ok(one(profile, "found"))
            }
            ProfileActionIn::Upsert => {
                let name = name()?;
                let update = AgentUpdate {
                    capabilities: input.capabilities,
                    max_concurrent: input.max_concurrent,
                    points_per_day: input.points_per_day,
                    status: input.status.map(status),
                };
                let profile = blocking(self.store(), move |store| {
                    store.upsert_agent(&name, &update)
                })
                .await?;
                Ok(one(profile, "saved"))
            }
            ProfileActionIn::SetStatus => {
                let new = input
                    .status
                    .ok_or_else(|| ToolFailure::invalid("status", "set_status needs a status"))?;
                let name = name()?;
                let profile = blocking(self.store(), move |store| {
                    store.set_agent_status(&name, status(new))
                })
                .await?;
                Ok(one(profile, "updated"))
            }
        }
    }
}
