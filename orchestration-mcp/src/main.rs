//! The `orchestration-mcp` binary: serves the tools over stdio (the default) or streamable
//! HTTP. Logs go to stderr; stdout carries only the protocol.
#![deny(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::serve::ListenerExt;
use clap::{Parser, Subcommand};
use orchestration_core::Store;
use orchestration_mcp::{AgentTokens, HttpOptions, OrchestrationServer, Toolset, http_app};
use rmcp::ServiceExt;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "orchestration-mcp",
    version,
    about = "MCP server for coordinating AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the tools (the default).
    Serve(ServeArgs),
    /// Look at sprints from the command line.
    #[command(subcommand)]
    Sprint(SprintCommand),
}

#[derive(Debug, Subcommand)]
enum SprintCommand {
    /// Print a sprint's burndown and burnup as a text chart, and write them as SVG.
    Burndown {
        /// The sprint.
        name: String,
        /// Write the chart as SVG to this file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// The database file.
        #[arg(long, env = "ORCHESTRATION_DB", default_value = orchestration_core::DEFAULT_DB_PATH)]
        db: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// The database file; `:memory:` for a throwaway one.
    #[arg(long, env = "ORCHESTRATION_DB", default_value = orchestration_core::DEFAULT_DB_PATH)]
    db: PathBuf,
    /// Open the database for reading only: the read tools work, every change is refused.
    #[arg(long)]
    read_only: bool,
    /// Serve streamable HTTP at this address (for example 127.0.0.1:8080) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Offer only these tool groups: workflow, task, agent, sprint (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_toolset)]
    toolsets: Option<Vec<Toolset>>,
    /// Require `Authorization: Bearer TOKEN` on HTTP; needed to listen beyond loopback.
    #[arg(long, env = "ORCHESTRATION_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file of `agent=token` lines: over HTTP, a caller with an agent's token may act only as
    /// that agent.
    #[arg(long, env = "ORCHESTRATION_AGENT_TOKENS", value_name = "FILE")]
    agent_tokens: Option<PathBuf>,
    /// Also accept these `Host` names on HTTP (comma-separated), e.g. the machine's name when
    /// listening beyond loopback.
    #[arg(long, value_delimiter = ',', value_name = "HOST")]
    allowed_hosts: Vec<String>,
}

fn parse_toolset(s: &str) -> Result<Toolset, String> {
    s.parse()
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Sprint(command)) => return sprint(command),
        None => cli.serve,
    };
    let store = if args.read_only {
        Store::open_read_only(&args.db)
    } else {
        Store::open(&args.db)
    }
    .with_context(|| format!("opening {}", args.db.display()))?;
    let toolsets = args
        .toolsets
        .clone()
        .unwrap_or_else(|| Toolset::ALL.to_vec());
    let server = OrchestrationServer::with_toolsets(Arc::new(store), &toolsets);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match args.http {
            Some(addr) => serve_http(server, addr, args).await,
            None => serve_stdio(server).await,
        }
    })
}

/// Runs a `sprint` command. These print their report on stdout: they are not the server, so
/// stdout is not a protocol channel here.
#[allow(clippy::print_stdout)]
fn sprint(command: SprintCommand) -> Result<()> {
    match command {
        SprintCommand::Burndown { name, svg, db } => {
            if !db.exists() {
                bail!("no database at {}; pass --db", db.display());
            }
            let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
            let analytics = store.sprint_analytics(
                &name,
                &orchestration_core::AnalyticsOptions {
                    trials: 1_000,
                    seed: None,
                },
            )?;
            let report = &analytics.report;
            println!(
                "sprint `{}` ({}), {} to {}: {:.1} of {:.1} points done",
                name,
                analytics.sprint.status,
                analytics.sprint.start,
                analytics.sprint.end,
                report.totals.completed,
                report.totals.scope
            );
            println!("{}", orchestration_core::text_chart(report, 8));
            if let Some(f) = &analytics.forecast {
                println!(
                    "forecast: {:.1} points left, done by {} (p50), {} (p85), {} (p95); {:.0}% chance by the end",
                    f.remaining,
                    f.p50,
                    f.p85,
                    f.p95,
                    f.probability_by_end * 100.0
                );
            }
            if let Some(path) = svg {
                let title = format!("Sprint {name}: burndown and burnup");
                std::fs::write(&path, orchestration_core::svg(&title, report))
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

async fn serve_stdio(server: OrchestrationServer) -> Result<()> {
    let service = server
        .serve(rmcp::transport::stdio_pipes())
        .await
        .context("MCP handshake over stdio")?;
    let cancel = service.cancellation_token();
    tokio::select! {
        result = service.waiting() => { result.context("serving stdio")?; }
        () = shutdown_signal() => {
            tracing::info!("signal received, shutting down");
            cancel.cancel();
        }
    }
    Ok(())
}

async fn serve_http(server: OrchestrationServer, addr: SocketAddr, args: ServeArgs) -> Result<()> {
    let agent_tokens = match args.agent_tokens {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the agent tokens in {}", path.display()))?;
            AgentTokens::parse(&text)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
        }
        None => AgentTokens::default(),
    };
    let mut options = HttpOptions {
        token: args.token,
        agent_tokens,
        ..HttpOptions::default()
    };
    options.allowed_hosts.extend(args.allowed_hosts);
    if !addr.ip().is_loopback() {
        if options.token.is_none() && options.agent_tokens.is_empty() {
            bail!(
                "listening on {addr}, beyond loopback, needs --token (or --agent-tokens) so that only holders of one can call the tools"
            );
        }
        options.allowed_hosts.push(addr.ip().to_string());
        options.allowed_hosts.push(addr.to_string());
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(
        "serving MCP over HTTP at http://{}/mcp",
        listener.local_addr()?
    );
    // Replies stream as server-sent events in several small writes; with Nagle's algorithm on,
    // each waited for the client's delayed acknowledgement, about 40 ms per call.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, http_app(server, options))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
