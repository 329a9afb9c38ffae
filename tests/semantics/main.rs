//! The semantics suite: what every storage backend must do, written once against the public
//! API and run against each backend.
//!
//! Each case is a function that takes the [`Backend`] to run on; [`for_each_case!`] lists them
//! all and the modules at the end of this file instantiate the whole list for one backend
//! each, so a new backend is one line there and a new case one line in the list. A case that
//! is written but not listed fails the build as dead code.

mod agents;
mod claims;
mod collaboration;
mod failures;
mod gates;
mod harness;
mod sprints;
mod workflows;

use std::path::PathBuf;

use orchestration_core::Store;
use tempfile::TempDir;

/// A database for one case, of one backend.
pub(crate) trait Backend: Sync {
    /// Opens a new handle on this case's database, as another process would: every handle
    /// sees every change the others committed.
    fn open(&self) -> Store;

    /// Another new, empty database of the same backend, for a case that compares several
    /// set-ups.
    fn fresh(&self) -> Box<dyn Backend>;
}

/// SQLite, the embedded default: a file of its own in a temporary folder per case.
pub(crate) struct Sqlite {
    path: PathBuf,
    // Held so the folder outlives every handle on the file.
    _dir: TempDir,
}

impl Sqlite {
    fn new() -> Sqlite {
        let dir = tempfile::tempdir().expect("a temporary folder");
        Sqlite {
            path: dir.path().join("orchestration.db"),
            _dir: dir,
        }
    }
}

impl Backend for Sqlite {
    fn open(&self) -> Store {
        Store::open(&self.path).expect("the database opens")
    }

    fn fresh(&self) -> Box<dyn Backend> {
        Box::new(Sqlite::new())
    }
}

/// PostgreSQL: a schema of its own per case, in the database named by the environment
/// variable `ORCHESTRATION_TEST_POSTGRES` (a URL such as `postgres://postgres@127.0.0.1/test`).
/// Each case's schema is left behind when it ends and dropped by the next run. Without it
/// the cases are skipped, except under `CI=true`, where a missing or unreachable
/// server fails them.
pub(crate) struct Postgres {
    base: String,
    schema: String,
}

/// The environment variable that names the PostgreSQL database the tests may use.
pub(crate) const POSTGRES_URL: &str = "ORCHESTRATION_TEST_POSTGRES";

impl Postgres {
    fn new() -> Option<Postgres> {
        let base = match std::env::var(POSTGRES_URL) {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("{POSTGRES_URL} must name a PostgreSQL database under CI")
            }
            _ => return None,
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let schema = format!(
            "semantics_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut client = ::postgres::Client::connect(&base, ::postgres::NoTls)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL}={base} is unreachable: {e}"));
        // A case's store may outlive its backend value (`fresh()` returns a temporary), so
        // schemas are not dropped when a case ends: the first case of the next run drops
        // what earlier runs left.
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            let stale: Vec<String> = client
                .query(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'semantics\\_%'",
                    &[],
                )
                .expect("the schemas of earlier runs")
                .iter()
                .map(|row| row.get(0))
                .filter(|name: &String| {
                    !name.starts_with(&format!("semantics_{}_", std::process::id()))
                })
                .collect();
            for name in stale {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        });
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .expect("a schema for the case");
        Some(Postgres { base, schema })
    }

    fn url(&self) -> String {
        let joiner = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{joiner}options=-csearch_path%3D{}",
            self.base, self.schema
        )
    }
}

impl Backend for Postgres {
    fn open(&self) -> Store {
        Store::open(self.url()).expect("the database opens")
    }

    fn fresh(&self) -> Box<dyn Backend> {
        Box::new(Postgres::new().expect("PostgreSQL is configured"))
    }
}

/// Calls `$then!` with `$args` and the path of every case, `module::function`.
macro_rules! for_each_case {
    ($then:ident!($($args:tt)*)) => {
        $then! {
            ($($args)*);
            workflows::creating_and_starting_makes_the_free_tasks_ready,
            workflows::a_rejected_spec_or_duplicate_name_writes_nothing,
            workflows::a_retried_create_with_the_same_idempotency_key_returns_the_first_result,
            workflows::pause_stops_handing_out_work_and_cancel_ends_everything,
            workflows::dependency_edits_check_cycles_and_states,
            workflows::status_reports_leases_blockers_critical_path_and_forecast,
            workflows::a_workflow_nobody_can_work_on_is_reported_as_stalled,
            workflows::every_state_change_is_in_the_event_log,
            workflows::recent_events_and_waits_are_measured_by_the_stores_time,
            workflows::a_workflows_attempts_are_read_back_from_the_log_per_task_and_agent,
            workflows::state_survives_closing_and_reopening,
            claims::claims_follow_priority_then_b_level_then_age,
            claims::a_claim_takes_the_best_ready_task_of_all_running_workflows,
            claims::a_claim_hands_over_the_results_of_dependencies,
            claims::a_claim_respects_skills_status_and_wip_limit_of_a_profiled_agent,
            claims::leases_expire_into_failed_attempts_and_stale_tokens_are_rejected,
            claims::release_gives_a_task_back_without_using_an_attempt,
            claims::reports_validate_their_arguments_and_change_nothing_when_rejected,
            claims::a_profiled_agent_gets_the_task_its_skills_fit_best_within_the_top_priority,
            claims::a_repeated_completion_says_the_task_is_finished,
            claims::eight_threads_with_their_own_connections_run_each_task_exactly_once,
            claims::claimers_of_one_agent_never_pass_its_wip_limit_nor_share_a_task,
            claims::held_tasks_say_which_leases_lapsed,
            failures::retries_wait_for_their_backoff_on_the_manual_clock,
            failures::a_non_retryable_failure_skips_the_retries,
            failures::block_dependents_fails_downstream_at_once_and_lets_other_branches_finish,
            failures::continue_treats_a_failure_as_done,
            failures::fail_fast_cancels_unstarted_work_and_lets_running_work_finish,
            failures::retry_failed_resets_failed_and_upstream_failed_tasks,
            failures::a_retry_under_continue_makes_waiting_dependents_wait_again,
            failures::random_workflows_run_to_a_terminal_state_in_dependency_order,
            gates::a_gate_waits_for_approval_and_no_agent_claims_it,
            gates::a_rejected_gate_fails_under_the_failure_policy,
            agents::delegation_leases_the_task_to_the_best_agent_who_then_claims_it,
            agents::an_unclaimed_delegation_returns_to_ready_when_its_lease_ends,
            agents::batch_delegation_assigns_ready_tasks_within_wip_limits_and_explains_the_rest,
            agents::an_agent_at_its_wip_limit_can_still_start_what_was_delegated_to_it,
            agents::rebalancing_moves_delegated_work_off_an_agent_that_went_offline,
            agents::agent_performance_is_rebuilt_from_the_event_log,
            agents::a_performance_window_by_days_ends_now_or_at_the_end_given,
            agents::the_team_covers_the_unfinished_work,
            collaboration::a_handoff_moves_the_task_and_its_lease_with_a_note,
            collaboration::messages_reach_agents_workflows_and_everyone_and_are_acknowledged_once,
            collaboration::concurrent_consumers_receive_each_message_exactly_once,
            collaboration::locks_conflict_expire_release_only_by_owner_and_refuse_deadlocks,
            sprints::a_plan_counts_capacity_keeps_dependencies_and_says_what_it_left_out,
            sprints::analytics_follow_scope_changes_mid_sprint,
            sprints::closing_fixes_velocity_and_the_next_plan_learns_from_it,
            sprints::unfinished_work_moves_into_the_named_next_sprint,
            sprints::forecasts_are_reproducible_for_a_seed,
            sprints::bad_input_gets_a_specific_error_and_writes_nothing,
            sprints::workload_shows_each_members_sprint_allocation_against_capacity,
            sprints::work_in_progress_past_the_p85_cycle_time_is_flagged_and_found,
            sprints::a_planned_sprint_starts_with_exactly_what_was_saved,
            sprints::a_start_keeps_the_focus_factor_saved_with_the_plan,
            sprints::a_start_of_a_planned_sprint_refuses_planning_arguments_and_of_an_unknown_one_says_so,
            sprints::removing_a_task_warns_of_the_tasks_left_in_the_sprint_that_depend_on_it,
            sprints::findings_judge_the_commitment_and_the_scope_by_the_numbers_reported,
            sprints::a_retrospective_of_a_sprint_not_started_says_nothing_is_committed,
            sprints::contributions_count_retries_and_expired_leases_apart_as_agent_performance_does,
            sprints::charts_scale_to_the_planned_scope_before_the_start_and_to_the_commitment_after,
        }
    };
}

/// One `#[test]` per case, each on a new database made by `$new`, or skipped when `$new`
/// makes none (a backend this machine is not configured for).
macro_rules! cases_on {
    (($new:expr); $($module:ident::$case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(backend) = $new {
                    crate::$module::$case(&backend);
                }
            }
        )*
    };
}

/// The backends. A new one is a line here.
mod sqlite {
    for_each_case!(cases_on!(Some(crate::Sqlite::new())));
}

mod postgres {
    for_each_case!(cases_on!(crate::Postgres::new()));
}

/// What only PostgreSQL does: tell every handle on the database that something changed.
mod postgres_notifications {
    use std::time::{Duration, Instant};

    use orchestration_core::{CreateOptions, Mode, TaskSpec, WorkflowSpec};

    use crate::Backend;

    #[test]
    fn a_change_by_one_handle_moves_the_notice_count_of_another() {
        let Some(db) = crate::Postgres::new() else {
            return;
        };
        let watcher = db.open();
        let writer = db.open();
        let started = Instant::now();
        let before = loop {
            if let Some(count) = watcher.change_notices() {
                break count;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let spec = WorkflowSpec::new("w", Mode::Parallel).task(TaskSpec::new("a", "do a"));
        writer
            .create_workflow(spec, &CreateOptions::default())
            .unwrap();
        let started = Instant::now();
        while watcher.change_notices() == Some(before) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no notice of the change arrived"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A store that sends no notifications says so, and callers poll the log instead.
        assert_eq!(crate::Sqlite::new().open().change_notices(), None);
    }
}
