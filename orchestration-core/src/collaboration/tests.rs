//! Tests of lock conflicts and deadlock naming.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};

use super::*;

fn lock(owner: &str, resource: Resource, mode: LockMode) -> Lock {
    Lock {
        resource,
        owner: owner.into(),
        mode,
        expires_at: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    }
}

#[test]
fn conflicts_follow_names_prefixes_and_modes() {
    use LockMode::{Exclusive as X, Shared as S};
    use Resource::{Exact as E, Prefix as P};
    let cases = [
        (E("a.rs".into()), X, E("a.rs".into()), X, true),
        (E("a.rs".into()), S, E("a.rs".into()), S, false),
        (E("a.rs".into()), S, E("a.rs".into()), X, true),
        (E("a.rs".into()), X, E("b.rs".into()), X, false),
        (E("src/a.rs".into()), X, P("src/".into()), S, true),
        (P("src/".into()), X, E("docs/x.md".into()), X, false),
        (P("src/".into()), X, P("src/core/".into()), X, true),
        (P("src/core/".into()), S, P("src/".into()), S, false),
    ];
    for (want, want_mode, held, held_mode, expected) in cases {
        let held = lock("other", held, held_mode);
        assert_eq!(
            conflicts("me", &want, want_mode, &held),
            expected,
            "{want} {want_mode} vs {} {held_mode}",
            held.resource
        );
    }
    let mine = lock("me", Resource::Exact("a".into()), LockMode::Exclusive);
    assert!(
        !conflicts(
            "me",
            &Resource::Exact("a".into()),
            LockMode::Exclusive,
            &mine
        ),
        "own locks never conflict"
    );
}

#[test]
fn a_wait_that_closes_a_cycle_is_named() {
    let waits: BTreeMap<String, BTreeSet<String>> = [
        ("bo".to_owned(), ["cy".to_owned()].into()),
        ("cy".to_owned(), ["ana".to_owned()].into()),
        ("dee".to_owned(), ["bo".to_owned()].into()),
    ]
    .into();
    // ana wants what bo holds; bo waits for cy, who waits for ana.
    assert_eq!(
        deadlock("ana", &["bo".to_owned()].into(), &waits),
        Some(vec!["ana".into(), "bo".into(), "cy".into(), "ana".into()])
    );
    assert_eq!(
        deadlock("ana", &["dee".to_owned()].into(), &waits).map(|c| c.len()),
        Some(5)
    );
    assert_eq!(deadlock("eve", &["bo".to_owned()].into(), &waits), None);
    assert_eq!(deadlock("ana", &BTreeSet::new(), &waits), None);
}

#[test]
fn only_exclusive_locks_of_others_block_a_write() {
    use LockMode::{Exclusive as X, Shared as S};
    use Resource::{Exact as E, Prefix as P};
    // (writer, held lock owner, its resource and mode, the file written, blocked?)
    let cases = [
        (Some("me"), "bo", E("src/a.rs".into()), X, "src/a.rs", true),
        (Some("me"), "me", E("src/a.rs".into()), X, "src/a.rs", false),
        (Some("me"), "bo", E("src/a.rs".into()), S, "src/a.rs", false),
        (Some("me"), "bo", P("src/".into()), X, "src/core/b.rs", true),
        (Some("me"), "bo", P("src/".into()), X, "docs/b.md", false),
        (
            Some("me"),
            "bo",
            E("src/a.rs".into()),
            X,
            "src/a.rs.bak",
            false,
        ),
        (None, "bo", E("src/a.rs".into()), X, "src/a.rs", true),
        (None, "bo", E("src/a.rs".into()), S, "src/a.rs", false),
    ];
    for (writer, owner, resource, mode, file, blocked) in cases {
        let held = [lock(owner, resource, mode)];
        assert_eq!(
            !write_blockers(writer, file, &held).is_empty(),
            blocked,
            "{writer:?} writing {file} under {owner}'s {mode} {}",
            held[0].resource
        );
    }
}
