//! `OrchestrationServer`: the MCP server handler, its tool router and its tool groups.

use std::str::FromStr;
use std::sync::Arc;

use orchestration_core::Store;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, CompletionInfo,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

use crate::error::to_mcp;
use crate::output::portable;
use crate::prompts::{self, NameKind, PromptError};
use crate::resources::{self, Subscriptions};
use crate::telemetry::{Outcome, Telemetry};
use crate::tools::blocking;

/// What the server tells an agent about how to work with it.
pub const INSTRUCTIONS: &str = "Coordinates agents on shared workflows (DAGs of tasks). \
Loop: agent_profile upsert registers you once (only registered agents act); task_claim {agent} \
gives you a task, its lease token and its dependencies' results, or claimed=false and why; \
task_update heartbeat before the lease ends, then complete with a result or fail with an error, \
always with the token. Lost your context? task_get {agent} lists what you hold. Tasks are named \
`workflow/key`. workflow_status shows progress.";

/// A group of tools, for narrowing what a server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toolset {
    /// `workflow_create`, `workflow_execute`, `task_dependency`, `workflow_status`.
    Workflow,
    /// `task_claim`, `task_update`, `task_get`.
    Task,
    /// `agent_profile`, `agent_delegation`, `agent_workload`, `agent_performance`,
    /// `agent_collaboration`.
    Agent,
    /// `sprint_planning`, `sprint_analytics`, `sprint_retrospective`.
    Sprint,
}

impl Toolset {
    /// Every group.
    pub const ALL: [Toolset; 4] = [
        Toolset::Workflow,
        Toolset::Task,
        Toolset::Agent,
        Toolset::Sprint,
    ];
}

impl FromStr for Toolset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "workflow" => Ok(Toolset::Workflow),
            "task" => Ok(Toolset::Task),
            "agent" => Ok(Toolset::Agent),
            "sprint" => Ok(Toolset::Sprint),
            other => Err(format!(
                "unknown toolset `{other}`; choose from workflow, task, agent, sprint"
            )),
        }
    }
}

/// The MCP server: the core's use cases as tools over one shared [`Store`].
#[derive(Debug, Clone)]
pub struct OrchestrationServer {
    store: Arc<Store>,
    /// The tools this server offers, built once. Public so that a host program can add tools of
    /// its own (`tool_router.add_route(..)`) or remove some before serving.
    pub tool_router: ToolRouter<OrchestrationServer>,
    /// The resources this session subscribed to; a clone starts with none.
    subscriptions: Subscriptions,
    /// The process's metrics: every session's tool calls count in the same place.
    telemetry: Arc<Telemetry>,
}

impl OrchestrationServer {
    /// A server with every tool.
    pub fn new(store: Arc<Store>) -> OrchestrationServer {
        OrchestrationServer::with_toolsets(store, &Toolset::ALL)
    }

    /// A server with the tools of `toolsets` only.
    pub fn with_toolsets(store: Arc<Store>, toolsets: &[Toolset]) -> OrchestrationServer {
        let mut tool_router = ToolRouter::new();
        for toolset in Toolset::ALL.into_iter().filter(|t| toolsets.contains(t)) {
            tool_router += match toolset {
                Toolset::Workflow => Self::workflow_router(),
                Toolset::Task => Self::task_router(),
                Toolset::Agent => {
                    Self::agent_router()
                        + Self::delegation_router()
                        + Self::workload_router()
                        + Self::performance_router()
                        + Self::collaboration_router()
                }
                Toolset::Sprint => Self::sprint_router(),
            };
        }
        // Make every schema portable once, here, rather than on each tools/list.
        for route in tool_router.map.values_mut() {
            route.attr.input_schema = portable(&route.attr.input_schema);
        }
        OrchestrationServer {
            store,
            tool_router,
            subscriptions: Subscriptions::default(),
            telemetry: Arc::default(),
        }
    }

    /// The store behind the tools.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The metrics of this server's tool calls.
    pub(crate) fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for OrchestrationServer {
    /// Routes the call to its tool, timing it and noting its outcome for the metrics and the
    /// log.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = std::time::Instant::now();
        // An unknown name is counted under one label, so that callers cannot grow the
        // metrics without bound.
        let tool = if self.tool_router.has_route(&request.name) {
            request.name.to_string()
        } else {
            "unknown".to_owned()
        };
        let agent = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("agent"))
            .and_then(|agent| agent.as_str())
            .map(str::to_owned)
            .or_else(|| crate::auth::authenticated(&context).map(str::to_owned));
        let call = ToolCallContext::new(self, request, context);
        let result = self.tool_router.call(call).await;
        let outcome = match &result {
            Ok(CallToolResponse::Complete(done)) if done.is_error == Some(true) => {
                Outcome::ToolError
            }
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::ProtocolError,
        };
        self.telemetry
            .tool_call(&tool, agent.as_deref(), started.elapsed(), outcome);
        result
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_completions()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "orchestration",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        // Five prompts fit in one page.
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        let name = request.name;
        let store = Arc::clone(&self.store);
        let prompt = tokio::task::spawn_blocking(move || prompts::get(&store, &name, &arguments))
            .await
            .map_err(|_| {
                ErrorData::internal_error("the prompt failed; see the server log", None)
            })?;
        match prompt {
            Ok(prompt) => Ok(GetPromptResponse::Complete(prompt)),
            Err(PromptError::Unknown(message) | PromptError::Argument(message)) => {
                Err(ErrorData::invalid_params(message, None))
            }
            Err(PromptError::Store(error)) => Err(to_mcp(error).into_error_data()),
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let argument = request.argument.name.as_str();
        let kind = match &request.r#ref {
            Reference::Prompt(prompt) => prompts::argument_kind(&prompt.name, argument),
            Reference::Resource(template) => match (template.uri.as_str(), argument) {
                (_, "workflow") | ("orchestration://workflow/{name}", "name") => {
                    Some(NameKind::Workflow)
                }
                ("orchestration://sprint/{name}", "name") => Some(NameKind::Sprint),
                ("orchestration://agent/{name}/inbox", "name") => Some(NameKind::Agent),
                ("orchestration://task/{workflow}/{key}", "key") => request
                    .context
                    .as_ref()
                    .and_then(|c| c.arguments.as_ref())
                    .and_then(|a| a.get("workflow"))
                    .map(|workflow| NameKind::Task(workflow.clone())),
                _ => None,
            },
            // Kinds of reference newer than this build.
            _ => None,
        };
        let Some(kind) = kind else {
            return Ok(CompleteResult::default());
        };
        let prefix = request.argument.value;
        let mut names = blocking(&self.store, move |store| {
            prompts::names(store, &kind, &prefix)
        })
        .await
        .map_err(crate::error::ToolFailure::into_error_data)?;
        let total = names.len();
        names.truncate(CompletionInfo::MAX_VALUES);
        let completion = CompletionInfo::with_pagination(
            names,
            u32::try_from(total).ok(),
            total > CompletionInfo::MAX_VALUES,
        )
        .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(completion))
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let all = blocking(&self.store, resources::all)
            .await
            .map_err(crate::error::ToolFailure::into_error_data)?;
        let cursor = request.and_then(|r| r.cursor);
        let (page, next) = resources::page(all, cursor.as_deref())?;
        let mut result = ListResourcesResult::with_all_items(page);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let contents = resources::read(self, &request.uri, context).await?;
        Ok(ReadResourceResponse::Complete(ReadResourceResult::new(
            vec![contents],
        )))
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions
            .subscribe(&self.store, &request.uri, context.peer)
            .await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.unsubscribe(&request.uri)
    }
}
