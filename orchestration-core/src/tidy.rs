//! Tidy tests over the workspace's sources, in the manner of rust-analyzer's: every file opens
//! with a `//!` module doc; rusqlite is named only by the SQLite backend (`store/sqlite.rs`)
//! and its tests; no task state is typed out in the store's SQL (it comes from `as_str()`, see
//! `store/sql.rs`); no unfinished-work or debugging macro is left behind.

use std::path::{Path, PathBuf};

/// Every `.rs` file of the workspace, but build outputs and virtual environments.
fn sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the core sits in the workspace")
        .to_path_buf();
    let mut found = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path.strip_prefix(&root).unwrap().to_path_buf(), text));
            }
        }
    }
    assert!(
        found.len() > 50,
        "the walk found the workspace: {}",
        found.len()
    );
    found
}

/// Paths as `a/b/c.rs`, whatever the platform.
fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_file_opens_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| !text.starts_with("//!"))
        .map(|(path, _)| slashed(&path))
        .collect();
    assert!(missing.is_empty(), "files without a `//!` doc: {missing:?}");
}

#[test]
fn only_the_sqlite_backend_names_rusqlite() {
    // The backend itself, and the tests of what is particular to it.
    let backend = |path: &str| {
        path == "orchestration-core/src/store/sqlite.rs"
            || path == "orchestration-core/src/store/tests.rs"
            || path.starts_with("orchestration-core/src/store/sql/")
    };
    let mut outside = Vec::new();
    for (path, text) in sources() {
        let path = slashed(&path);
        // The backend, and this file, which names what it looks for.
        if backend(&path) || path == "orchestration-core/src/tidy.rs" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            // The seam's docs may say that it reads as rusqlite does; code may not use it.
            let doc = line.trim_start().starts_with("//");
            if line.contains("rusqlite") && !doc {
                outside.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "rusqlite outside the backend: {outside:#?}"
    );
}

#[test]
fn the_store_types_out_no_task_state_in_sql() {
    let quoted: Vec<String> = crate::workflow::TaskState::ALL
        .iter()
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    let mut typed = Vec::new();
    for (path, text) in sources() {
        let path = slashed(&path);
        // Tests may say what they expect in the database's own words.
        let store = path == "orchestration-core/src/store.rs"
            || path.starts_with("orchestration-core/src/store/");
        if !store || path.ends_with("tests.rs") || path.ends_with(".sql") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let comment = line.trim_start().starts_with("//");
            if !comment && quoted.iter().any(|q| line.contains(q.as_str())) {
                typed.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(typed.is_empty(), "task states typed out in SQL: {typed:#?}");
}

#[test]
fn no_unfinished_work_or_debugging_is_left() {
    // Spelt in two halves, so that this file does not find itself.
    let banned = [
        concat!("to", "do!("),
        concat!("db", "g!("),
        concat!("unimpl", "emented!("),
    ];
    let mut found = Vec::new();
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            if banned.iter().any(|b| line.contains(b)) {
                found.push(format!("{}:{}: {}", slashed(&path), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "left behind: {found:#?}");
}
