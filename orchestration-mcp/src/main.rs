//! The `orchestration-mcp` binary: serves the tools over stdio (the default) or streamable
//! HTTP. Logs go to stderr; stdout carries only the protocol.
#![deny(clippy::print_stdout)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use orchestration_core::Store;
use orchestration_mcp::{
    AgentTokens, ConnectionLimits, DEFAULT_MAX_CONNECTIONS, HttpOptions, OrchestrationServer,
    RESERVED_FILES, RateLimit, SessionLimits, Toolset, connection_room,
};
use rmcp::ServiceExt;
use tracing_subscriber::EnvFilter;

/// The allocator: glibc's keeps the memory of expired sessions and closed connections for the
/// process (a server that had held 20,000 sessions stayed at its peak of over 400 MB after they
/// expired), where jemalloc's background threads hand it back to the system within seconds.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// What `--version` prints: the server's version and the database schema version it reads and
/// writes, since a database written by a newer schema is refused by an older server.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (database schema {})",
        env!("CARGO_PKG_VERSION"),
        orchestration_core::SCHEMA_VERSION
    )
});

#[derive(Debug, Parser)]
#[command(
    name = "orchestration-mcp",
    version = VERSION.as_str(),
    about = "MCP server for coordinating AI agents"
)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    /// How log lines on stderr are written.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The flags every command shares. They are global, so each means the same before or after a
/// subcommand, and is defined only here.
#[derive(Debug, Clone, Args)]
struct DatabaseArgs {
    /// The database: an SQLite file, `:memory:` for a throwaway one, or a PostgreSQL URL
    /// (`postgres://user@host:port/database`) for a database many hosts share.
    #[arg(
        long,
        global = true,
        env = "ORCHESTRATION_DB",
        default_value = orchestration_core::DEFAULT_DB_PATH
    )]
    db: PathBuf,
    /// Open an existing database for reading only: reads work, every change is refused.
    #[arg(long, global = true)]
    read_only: bool,
}

/// The form of the log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the tools (the default).
    Serve(ServeArgs),
    /// Look at sprints from the command line.
    #[command(subcommand)]
    Sprint(SprintCommand),
    /// Serve the operator console (web pages over the database) on loopback, without MCP:
    /// for agents that use the server over stdio.
    Console(ConsoleArgs),
    /// Answer one Claude Code hook event (JSON on stdin): deny edits of files another agent
    /// locked, add held tasks and messages at session start, flag held tasks at stop.
    Hook(HookArgs),
    /// Copy a whole database (workflows, tasks, agents, sprints, locks, messages, the event
    /// log) into a new, empty one, typically an SQLite file into PostgreSQL, then compare the
    /// two by their reports. Stop the servers of the source first: what they write after the
    /// copy began is not copied.
    Migrate(MigrateArgs),
}

/// The flags of `migrate`.
#[derive(Debug, Args)]
struct MigrateArgs {
    /// The database to copy: an SQLite file (or a PostgreSQL URL).
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// The empty database to copy into: a PostgreSQL URL such as
    /// postgres://user@host:5432/database (or an SQLite file).
    #[arg(long, value_name = "URL")]
    to: PathBuf,
}

/// The flags of `console`.
#[derive(Debug, Args)]
struct ConsoleArgs {
    /// Listen at this address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8377")]
    listen: SocketAddr,
    /// The operator's token: its holder may act (pause, cancel, release, approve); without
    /// one the console is read-only. Needed to listen beyond loopback.
    #[arg(long, env = "ORCHESTRATION_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file of `agent=token` lines: their holders may look, not act.
    #[arg(long, env = "ORCHESTRATION_AGENT_TOKENS", value_name = "FILE")]
    agent_tokens: Option<PathBuf>,
    /// Also accept these `Host` names (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "HOST")]
    allowed_hosts: Vec<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The flags of `hook`. The agent is named by ORCHESTRATION_AGENT.
#[derive(Debug, Args)]
struct HookArgs {
    /// The project's root: file paths are made relative to it before they meet lock names, and
    /// a relative --db is found from it. Claude Code sets CLAUDE_PROJECT_DIR for hooks.
    #[arg(long, env = "CLAUDE_PROJECT_DIR", value_name = "DIR")]
    root: Option<PathBuf>,
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
    },
}

/// The flags of serving: given without a command, or after `serve`.
#[derive(Debug, Clone, Args)]
struct ServeArgs {
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
    #[command(flatten)]
    limits: LimitArgs,
}

/// The limits of the HTTP server, each with a default that a team's agents never reach.
#[derive(Debug, Clone, Args)]
struct LimitArgs {
    /// Close an MCP session after this long without a request (an open call or notification
    /// stream counts as use), e.g. 30m, 90s.
    #[arg(long, env = "ORCHESTRATION_SESSION_IDLE", value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    session_idle: Duration,
    /// The most MCP sessions open at once; past it `initialize` gets 503 with Retry-After.
    #[arg(long, env = "ORCHESTRATION_MAX_SESSIONS", value_name = "N", default_value_t = SessionLimits::default().max, value_parser = parse_positive)]
    max_sessions: usize,
    /// The most HTTP connections open at once [default: the open-file limit less 128, at most
    /// 4096].
    #[arg(long, env = "ORCHESTRATION_MAX_CONNECTIONS", value_name = "N", value_parser = parse_positive)]
    max_connections: Option<usize>,
    /// The most connections open at once from one address [default: half of
    /// --max-connections].
    #[arg(long, env = "ORCHESTRATION_MAX_CONNECTIONS_PER_PEER", value_name = "N", value_parser = parse_positive)]
    max_connections_per_peer: Option<usize>,
    /// A request's line and headers must arrive within this long.
    #[arg(long, env = "ORCHESTRATION_HEADER_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// Close a kept-alive connection after this long without a request.
    #[arg(long, env = "ORCHESTRATION_CONNECTION_IDLE", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    connection_idle: Duration,
    /// Close a connection whose client has read nothing of its response for this long.
    #[arg(long, env = "ORCHESTRATION_WRITE_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    write_timeout: Duration,
    /// Requests per second per caller (the agent of a per-agent token, otherwise the address),
    /// with bursts of twice as many; `off` for no limit. Over it: 429 with Retry-After.
    #[arg(long, env = "ORCHESTRATION_RATE_LIMIT", value_name = "N|off", default_value = "200", value_parser = parse_rate)]
    rate_limit: Rate,
}

/// A rate limit as given on the command line.
#[derive(Debug, Clone, Copy)]
enum Rate {
    PerSecond(NonZeroU32),
    Off,
}

fn parse_toolset(s: &str) -> Result<Toolset, String> {
    s.parse()
}

/// A duration written as a whole number with a unit: `ms`, `s`, `m` or `h` (`90s`, `30m`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("`{s}` is not a duration: write a whole number and a unit, as in 90s or 30m")
    })?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "" => return Err(format!("`{s}` has no unit: write {s}s, {s}m or {s}ms")),
        _ => return Err(format!("`{unit}` is not a unit of time: use ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err("a duration of zero would close everything at once".into());
    }
    Ok(duration)
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    if s == "off" {
        return Ok(Rate::Off);
    }
    match s.parse::<u32>() {
        Ok(n) => NonZeroU32::new(n)
            .map(Rate::PerSecond)
            .ok_or_else(|| "must be at least 1, or `off` for no limit".into()),
        Err(_) => Err(format!(
            "`{s}` is not a number of requests per second, nor `off`"
        )),
    }
}

impl LimitArgs {
    /// The limits, with the connection cap sized from the file limit (raised to its hard
    /// limit first); a cap the file limit cannot hold is an error.
    fn resolve(&self) -> Result<(SessionLimits, ConnectionLimits, Option<RateLimit>)> {
        let (files, room) = connection_room().context("reading the open-file limit")?;
        if room == 0 {
            bail!(
                "the open-file limit ({files}) leaves no room for connections: the server keeps {RESERVED_FILES} files for itself; raise it (ulimit -n)"
            );
        }
        let max = match self.max_connections {
            Some(max) if max > room => bail!(
                "--max-connections {max} is more than the open-file limit ({files}, less {RESERVED_FILES} kept for the server itself) allows: at most {room}; raise the limit (ulimit -n) or lower the cap"
            ),
            Some(max) => max,
            None => room.min(DEFAULT_MAX_CONNECTIONS),
        };
        let mut connections = ConnectionLimits::with_max(max);
        if let Some(per_peer) = self.max_connections_per_peer {
            if per_peer > max {
                bail!(
                    "--max-connections-per-peer {per_peer} is more than the {max} connections allowed in all"
                );
            }
            connections.per_peer = per_peer;
        }
        connections.header_timeout = self.header_timeout;
        connections.idle_timeout = self.connection_idle;
        connections.write_timeout = self.write_timeout;
        let sessions = SessionLimits {
            idle: self.session_idle,
            max: self.max_sessions,
        };
        let rate = match self.rate_limit {
            Rate::PerSecond(n) => Some(RateLimit::per_second(n)),
            Rate::Off => None,
        };
        tracing::info!(
            connections = max,
            per_peer = connections.per_peer,
            open_files = files,
            sessions = sessions.max,
            "HTTP limits"
        );
        Ok((sessions, connections, rate))
    }
}

fn main() -> Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let database = Database {
        path: cli.database.db,
        read_only: cli.database.read_only,
        source: matches.value_source("db"),
    };
    let args = match cli.command {
        None => cli.serve,
        Some(command) => {
            refuse_misplaced_serve_flags(&matches);
            match command {
                Command::Serve(args) => args,
                Command::Sprint(command) => return sprint(command, &database),
                Command::Hook(args) => return hook(args, &database),
                Command::Migrate(args) => return migrate(&args),
                Command::Console(args) => return console(args, &database),
            }
        }
    };
    let store = database.open()?;
    let toolsets = args
        .toolsets
        .clone()
        .unwrap_or_else(|| Toolset::ALL.to_vec());
    let server = OrchestrationServer::with_toolsets(Arc::new(store), &toolsets);
    // One client on stdio needs no worker threads: the store's calls run on the blocking pool
    // either way, and a runtime that starts none answers `initialize` sooner. HTTP serves many
    // sessions at once, so it gets a worker per core.
    let runtime = runtime(match args.http {
        Some(_) => tokio::runtime::Builder::new_multi_thread(),
        None => tokio::runtime::Builder::new_current_thread(),
    })?;
    runtime.block_on(async move {
        match args.http {
            Some(addr) => serve_http(server, addr, args).await,
            None => serve_stdio(server).await,
        }
    })
}

/// Threads of the blocking pool, where every store call runs. The store does at most a few
/// calls at once (SQLite one writer and one reader, PostgreSQL a pool of 8 connections), so
/// more threads would only wait on its locks, each holding a stack and an allocator cache: 32
/// HTTP sessions used to keep about 64 of them, and about 40 MB, resident. Calls beyond these
/// wait in the runtime's queue instead, in the order they came.
const BLOCKING_THREADS: usize = 12;

/// The async runtime, on the blocking pool this server needs.
fn runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")
}

/// Exits with a usage error when a serving flag was written before a subcommand. Serving
/// flags are not global: before `serve` they would be parsed and then ignored in favour of
/// that command's own, and `sprint` commands do not serve at all. Values from the environment
/// are not refused, since one exported for the server is no mistake of this command line.
fn refuse_misplaced_serve_flags(matches: &ArgMatches) {
    let Some((command, _)) = matches.subcommand() else {
        return;
    };
    let serve_flags = ServeArgs::augment_args(clap::Command::new("serve"));
    let misplaced = serve_flags
        .get_arguments()
        .find(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine));
    let Some(arg) = misplaced else {
        return;
    };
    let flag = format!("--{}", arg.get_long().unwrap_or(arg.get_id().as_str()));
    let message = if command == "serve" {
        format!("`{flag}` goes after `serve`, or leave `serve` out: serving is the default")
    } else {
        format!("`{flag}` is a flag of serving, and `{command}` does not serve")
    };
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

/// The database the command line names, and how to open it.
#[derive(Debug)]
struct Database {
    path: PathBuf,
    read_only: bool,
    /// Where the path came from, so that an error can say why this path was used.
    source: Option<ValueSource>,
}

impl Database {
    /// Opens the database for serving: created when missing, unless it is to be read only.
    fn open(&self) -> Result<Store> {
        if self.read_only {
            self.require_existing("`--read-only`")?;
        }
        self.open_as_asked()
    }

    /// Opens the database for a command that reports on what is in it, so a missing file is
    /// an error rather than a new empty database.
    fn open_for_reading(&self, command: &str) -> Result<Store> {
        self.require_existing(command)?;
        self.open_as_asked()
    }

    fn require_existing(&self, what: &str) -> Result<()> {
        // A server's database is checked by connecting to it: opening never creates one.
        if Store::server_url(&self.path).is_some() {
            return Ok(());
        }
        if self.path == Path::new(":memory:") {
            bail!(
                "{what} needs a database file, and `:memory:` is a new, empty database; \
                 pass --db PATH"
            );
        }
        if !self.path.exists() {
            let source = match self.source {
                Some(ValueSource::CommandLine) => "given with --db",
                Some(ValueSource::EnvVariable) => "from ORCHESTRATION_DB",
                _ => "the default",
            };
            bail!(
                "no database at {} ({source}): {what} needs an existing one; pass --db PATH \
                 (or set ORCHESTRATION_DB) to the file the server uses",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Opens the file read-only or for writing, as the flags say; a writable open creates a
    /// missing file and brings the schema up to date.
    fn open_as_asked(&self) -> Result<Store> {
        let opened = if self.read_only {
            Store::open_read_only(&self.path)
        } else {
            Store::open(&self.path)
        };
        match opened {
            // Opening writes only to create or upgrade the schema, so this is a database
            // whose schema is missing or older than this build's.
            Err(orchestration_core::Error::ReadOnly) => bail!(
                "cannot open {} read-only: its schema must first be created or upgraded, \
                 which needs writing; open it once with write access (without --read-only)",
                Store::shown(&self.path)
            ),
            opened => opened.with_context(|| format!("opening {}", Store::shown(&self.path))),
        }
    }
}

/// Runs a `sprint` command. These print their report on stdout: they are not the server, so
/// stdout is not a protocol channel here.
#[allow(clippy::print_stdout)]
fn sprint(command: SprintCommand, database: &Database) -> Result<()> {
    match command {
        SprintCommand::Burndown { name, svg } => {
            let store = database.open_for_reading("`sprint burndown`")?;
            let analytics = store.sprint_analytics(
                &name,
                &orchestration_core::store::AnalyticsOptions {
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
            println!("{}", orchestration_core::sprint::text_chart(report, 8));
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
                std::fs::write(&path, orchestration_core::sprint::svg(&title, report))
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

/// Copies the database `--from` into the empty database `--to` and compares the two. The
/// summary goes to stdout: this command is not the server.
#[allow(clippy::print_stdout)]
fn migrate(args: &MigrateArgs) -> Result<()> {
    let is_file = Store::server_url(&args.from).is_none();
    if is_file && (args.from == Path::new(":memory:") || !args.from.exists()) {
        bail!(
            "no database at {}: --from names the SQLite file to copy (the --db the servers \
             used), and it must exist",
            args.from.display()
        );
    }
    if args.from == args.to {
        bail!("--from and --to name the same database; --to must be a new, empty one");
    }
    // Opening the source brings an older file's schema up to date, as a server would: the
    // copy is between two databases of this build's schema.
    let source = Store::open(&args.from)
        .with_context(|| format!("opening the source {}", Store::shown(&args.from)))?;
    let target = Store::open(&args.to)
        .with_context(|| format!("opening the target {}", Store::shown(&args.to)))?;
    let copied = source.copy_into(&target).with_context(|| {
        format!(
            "copying {} into {}",
            Store::shown(&args.from),
            Store::shown(&args.to)
        )
    })?;
    let comparison = source
        .compare(&target)
        .context("comparing the copy with the source")?;
    println!(
        "copied {} rows from {} to {}:",
        copied.rows(),
        Store::shown(&args.from),
        Store::shown(&args.to)
    );
    for (table, rows) in &copied.tables {
        println!("  {table:<15} {rows:>9}");
    }
    if !comparison.differences.is_empty() {
        let differences: Vec<String> = comparison
            .differences
            .iter()
            .map(ToString::to_string)
            .collect();
        bail!(
            "the copy does not match its source: {}",
            differences.join("; ")
        );
    }
    println!(
        "verified: {} workflow report(s), {} agent(s), {} sprint(s) and {} event(s) up to \
         #{} read the same from both databases",
        comparison.workflows,
        comparison.agents,
        comparison.sprints,
        comparison.events,
        comparison.last_event_seq
    );
    Ok(())
}

/// Answers one hook event. Whatever goes wrong, the answer lets the call go ahead and says
/// why: a hook that fails closed would stop every edit when the database is away.
fn hook(args: HookArgs, database: &Database) -> Result<()> {
    use orchestration_mcp::hook::{self, HookContext};
    use std::io::{Read, Write};

    let mut input = String::new();
    let read = std::io::stdin()
        .take(hook::MAX_EVENT_BYTES as u64)
        .read_to_string(&mut input);
    let db = match &args.root {
        Some(root)
            if database.path.is_relative() && Store::server_url(&database.path).is_none() =>
        {
            root.join(&database.path)
        }
        _ => database.path.clone(),
    };
    let context = HookContext {
        agent: std::env::var(hook::AGENT_ENV)
            .ok()
            .filter(|name| !name.trim().is_empty()),
        root: args.root,
        db,
    };
    let answer = match read {
        Ok(_) => hook::answer(&input, &context),
        Err(e) => hook::answer(&format!("not an event: {e}"), &context),
    };
    if let Some(json) = &answer.stdout {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{json}").context("writing the hook's answer")?;
        stdout.flush().context("writing the hook's answer")?;
    }
    std::process::exit(i32::from(answer.exit_code))
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

/// The agent tokens in `path`, none without one.
fn agent_tokens(path: Option<&Path>) -> Result<AgentTokens> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the agent tokens in {}", path.display()))?;
            AgentTokens::parse(&text)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
        }
        None => Ok(AgentTokens::default()),
    }
}

/// The HTTP options from the flags, refusing to listen beyond loopback without a token.
fn http_options(
    addr: SocketAddr,
    token: Option<String>,
    agent_tokens_file: Option<&Path>,
    allowed_hosts: Vec<String>,
    limits: &LimitArgs,
) -> Result<HttpOptions> {
    let (sessions, connections, rate_limit) = limits.resolve()?;
    let mut options = HttpOptions {
        token,
        agent_tokens: agent_tokens(agent_tokens_file)?,
        sessions,
        connections,
        rate_limit,
        ..HttpOptions::default()
    };
    options.allowed_hosts.extend(allowed_hosts);
    if !addr.ip().is_loopback() {
        if options.token.is_none() && options.agent_tokens.is_empty() {
            bail!(
                "listening on {addr}, beyond loopback, needs --token (or --agent-tokens) so that only holders of one can call the tools"
            );
        }
        options.allowed_hosts.push(addr.ip().to_string());
        options.allowed_hosts.push(addr.to_string());
    }
    Ok(options)
}

async fn serve_http(server: OrchestrationServer, addr: SocketAddr, args: ServeArgs) -> Result<()> {
    let options = http_options(
        addr,
        args.token,
        args.agent_tokens.as_deref(),
        args.allowed_hosts,
        &args.limits,
    )?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!("serving MCP over HTTP at http://{local}/mcp");
    tracing::info!("the console is at http://{local}/");
    orchestration_mcp::serve_http(listener, server, options, shutdown_signal())
        .await
        .context("serving HTTP")
}

/// Runs `console`: the web console alone, over the database. It prints its address on
/// stdout, which is no protocol channel here: this command does not serve MCP.
#[allow(clippy::print_stdout)]
fn console(args: ConsoleArgs, database: &Database) -> Result<()> {
    let store = Arc::new(database.open()?);
    let options = http_options(
        args.listen,
        args.token,
        args.agent_tokens.as_deref(),
        args.allowed_hosts,
        &args.limits,
    )?;
    if options.token.is_none() {
        tracing::warn!("no --token: the console is read-only");
    }
    let runtime = runtime(tokio::runtime::Builder::new_multi_thread())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!("serving the console at http://{}/", listener.local_addr()?);
        orchestration_mcp::serve_console(listener, store, options, shutdown_signal())
            .await
            .context("serving the console")
    })
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
