//! Tests that the shared SQL says what the pure rules say: the SQL claim order sorts as
//! `ClaimRank` does, and the partial indexes' conditions are the ones the queries repeat.

use crate::workflow::ClaimRank;
use crate::{CreateOptions, Mode, Store, TaskSpec, TaskState, WorkflowSpec};

use super::{CLAIM_ORDER, LEASED, state, states};

#[test]
fn the_sql_claim_order_sorts_as_claim_rank_does() {
    let store = Store::open_in_memory().unwrap();
    // Few distinct priorities and estimates, so that every tie-break is exercised.
    let tasks = (0..60)
        .map(|i| {
            TaskSpec::new(format!("t{i}"), "work")
                .priority((i * 7 % 3) * 10)
                .estimate(f64::from((i * 5 % 4) as u8 + 1))
        })
        .collect();
    let spec = WorkflowSpec {
        name: "order".into(),
        mode: Mode::Parallel,
        tasks,
        ..WorkflowSpec::default()
    };
    let options = CreateOptions {
        start: true,
        idempotency_key: None,
    };
    store.create_workflow(spec, &options).unwrap();
    let conn = store.sqlite().connection();
    let sql = format!(
        "SELECT id, priority, b_level, ready_at FROM tasks WHERE state = {} ORDER BY {CLAIM_ORDER}",
        state(TaskState::Ready)
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let by_sql: Vec<ClaimRank> = stmt
        .query_map([], |r| {
            Ok(ClaimRank {
                created: r.get(0)?,
                priority: r.get(1)?,
                fit: 1.0,
                b_level: r.get(2)?,
                ready_at: r.get::<_, Option<i64>>(3)?.map(crate::clock::from_millis),
            })
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(by_sql.len(), 60);
    let mut by_rank = by_sql.clone();
    by_rank.reverse();
    by_rank.sort_by(ClaimRank::cmp);
    let ids = |ranks: &[ClaimRank]| ranks.iter().map(|r| r.created).collect::<Vec<_>>();
    assert_eq!(ids(&by_sql), ids(&by_rank));
    // The order is not trivially the creation order.
    let mut created = ids(&by_sql);
    created.sort_unstable();
    assert_ne!(ids(&by_sql), created);
}

#[test]
fn the_partial_indexes_repeat_the_conditions_the_queries_use() {
    let store = Store::open_in_memory().unwrap();
    let conn = store.sqlite().connection();
    let index = |name: &str| -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(
        index("tasks_leased").contains(&format!("WHERE state IN {}", states(&LEASED))),
        "{}",
        index("tasks_leased")
    );
    let ready = index("tasks_ready_in_workflow");
    assert!(
        ready.contains(&format!("WHERE state = {}", state(TaskState::Ready))),
        "{ready}"
    );
    assert!(ready.contains(CLAIM_ORDER), "{ready}");
}
