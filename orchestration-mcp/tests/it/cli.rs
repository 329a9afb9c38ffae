//! The command line, run as a real process: the database flags mean the same before and after
//! any subcommand and in the environment, a missing database is named with where its path came
//! from, a serving flag where it would be ignored is refused, and `--version` names the
//! database schema.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;

use crate::sprint::database_with_a_sprint;

/// Runs the binary with `args` in `cwd`, where the default database does not exist, with
/// `ORCHESTRATION_DB` set to `env_db` or unset.
fn run(cwd: &Path, env_db: Option<&Path>, args: &[OsString]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("ORCHESTRATION_DB")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    if let Some(db) = env_db {
        command.env("ORCHESTRATION_DB", db);
    }
    command.output().unwrap()
}

/// `args` with `{db}` replaced by `db`.
fn expand(args: &[&str], db: &Path) -> Vec<OsString> {
    args.iter()
        .map(|arg| match *arg {
            "{db}" => db.as_os_str().to_owned(),
            other => other.into(),
        })
        .collect()
}

#[test]
fn the_database_flags_mean_the_same_before_and_after_a_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_a_sprint(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let missing = elsewhere.path().join("missing.db");
    // (arguments, ORCHESTRATION_DB)
    let cases: [(&[&str], Option<&Path>); 8] = [
        (&["--db", "{db}", "sprint", "burndown", "now"], None),
        (&["sprint", "burndown", "now", "--db", "{db}"], None),
        (&["sprint", "--db", "{db}", "burndown", "now"], None),
        (&["sprint", "burndown", "now"], Some(&db)),
        // The flag wins over the environment, wherever it is written.
        (
            &["--db", "{db}", "sprint", "burndown", "now"],
            Some(&missing),
        ),
        (
            &["sprint", "burndown", "now", "--db", "{db}"],
            Some(&missing),
        ),
        (
            &["--read-only", "--db", "{db}", "sprint", "burndown", "now"],
            None,
        ),
        (
            &["sprint", "burndown", "now", "--db", "{db}", "--read-only"],
            None,
        ),
    ];
    for (args, env_db) in cases {
        let output = run(elsewhere.path(), env_db, &expand(args, &db));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert!(
            stdout.starts_with("sprint `now` (active)") && stdout.contains("3.0 of 5.0 points"),
            "{args:?}: {stdout}"
        );
    }
    assert!(!missing.exists(), "a report creates no database");
    assert!(
        !elsewhere.path().join(".orchestration").exists(),
        "nor the default one"
    );
}

#[test]
fn a_missing_database_is_named_with_where_its_path_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let shown = missing.display().to_string();
    let cases: [(&[&str], Option<&Path>, String); 6] = [
        (
            &["--db", "{db}", "sprint", "burndown", "now"],
            None,
            format!(
                "no database at {shown} (given with --db): `sprint burndown` needs an existing one; pass --db PATH"
            ),
        ),
        (
            &["sprint", "burndown", "now", "--db", "{db}"],
            None,
            format!("no database at {shown} (given with --db)"),
        ),
        (
            &["sprint", "burndown", "now"],
            Some(&missing),
            format!("no database at {shown} (from ORCHESTRATION_DB)"),
        ),
        (
            &["sprint", "burndown", "now"],
            None,
            "no database at .orchestration/orchestration.db (the default)".to_owned(),
        ),
        (
            &["--db", ":memory:", "sprint", "burndown", "now"],
            None,
            "`sprint burndown` needs a database file, and `:memory:` is a new, empty database"
                .to_owned(),
        ),
        // Serving read-only needs a database to read, before and after `serve` alike.
        (
            &["serve", "--read-only", "--db", "{db}"],
            None,
            format!(
                "no database at {shown} (given with --db): `--read-only` needs an existing one"
            ),
        ),
    ];
    for (args, env_db, expected) in cases {
        let output = run(dir.path(), env_db, &expand(args, &missing));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert!(!missing.exists(), "nothing was created");
    assert!(!dir.path().join(".orchestration").exists());
}

#[test]
fn a_serving_flag_where_it_would_be_ignored_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_a_sprint(dir.path());
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--http",
                "127.0.0.1:0",
                "sprint",
                "burndown",
                "now",
                "--db",
                "{db}",
            ],
            "`--http` is a flag of serving, and `sprint` does not serve",
        ),
        (
            &["--toolsets", "workflow", "serve", "--db", "{db}"],
            "`--toolsets` goes after `serve`, or leave `serve` out: serving is the default",
        ),
        (
            &["--token", "s3cret", "serve", "--http", "127.0.0.1:0"],
            "`--token` goes after `serve`",
        ),
    ];
    for (args, expected) in cases {
        let output = run(dir.path(), None, &expand(args, &db));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // A token in the environment is no mistake of the command line: the report still runs.
    let output = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["sprint", "burndown", "now", "--db"])
        .arg(&db)
        .env("ORCHESTRATION_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_server_uses_the_database_named_before_or_after_serve() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_a_sprint(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    for args in [
        &["--db", "{db}"][..],
        &["--db", "{db}", "serve"],
        &["serve", "--db", "{db}"],
        &["--read-only", "serve", "--db", "{db}"],
        &["serve", "--db", "{db}", "--read-only"],
    ] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"));
        command
            .args(expand(args, &db))
            .current_dir(elsewhere.path())
            .env_remove("ORCHESTRATION_DB");
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let client = ().serve(transport).await.expect("initialize");
        let mut arguments = serde_json::Map::new();
        arguments.insert("name".into(), "now".into());
        let result = client
            .call_tool(CallToolRequestParams::new("sprint_analytics").with_arguments(arguments))
            .await
            .unwrap();
        let text = result.content[0].as_text().unwrap().text.clone();
        assert_eq!(result.is_error, Some(false), "{args:?}: {text}");
        assert!(text.contains("sprint `now`"), "{args:?}: {text}");
        client.cancel().await.unwrap();
    }
    assert!(!elsewhere.path().join(".orchestration").exists());
}

#[test]
fn a_read_only_database_without_its_schema_says_it_must_be_opened_for_writing_once() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    for args in [
        &["--read-only", "--db", "{db}"][..],
        &["sprint", "burndown", "now", "--read-only", "--db", "{db}"],
    ] {
        let output = run(dir.path(), None, &expand(args, &empty));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot open {} read-only: its schema must first be created or upgraded, which \
                 needs writing; open it once with write access (without --read-only)",
                empty.display()
            )),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "nothing written"
    );
}

#[test]
fn the_version_names_the_server_and_the_database_schema_and_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), None, &["--version".into()]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "orchestration-mcp {} (database schema {})\n",
            env!("CARGO_PKG_VERSION"),
            orchestration_core::SCHEMA_VERSION
        )
    );
    assert!(
        !dir.path().join(".orchestration").exists(),
        "no database created"
    );
}
