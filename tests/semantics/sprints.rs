//! Sprint use cases against hand-computed numbers: a two-week sprint with scope added,
//! re-estimated and removed mid-sprint; learning velocity and the focus factor for the next
//! plan; carry-over into a named sprint; and a specific error, with nothing written, for each
//! kind of bad input.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use orchestration_core::*;
use orchestration_core::{sprint::*, store::*};

use crate::Backend;

struct Team {
    store: Store,
    clock: ManualClock,
    /// Claims whose leases [`Team::set`] keeps alive.
    held: std::cell::RefCell<Vec<(Claim, String)>>,
}

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

fn at(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap()
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Two agents: `ana` (rust 3, 2 points a day) and `bo` (rust 1, docs 3, 1 point a day); the
/// workflow `proj` and, for mid-sprint additions, `extra`.
fn team(db: &dyn Backend) -> Team {
    let (clock, handle) = Clock::manual(at(3, 2, 9, 0));
    let store = db.open().with_clock(clock);
    let agent = |skills: &[(&str, u8)], ppd: f64| AgentUpdate {
        capabilities: Some(skills.iter().map(|(s, l)| (s.to_string(), *l)).collect()),
        points_per_day: Some(ppd),
        ..AgentUpdate::default()
    };
    store
        .upsert_agent("ana", &agent(&[("rust", 3)], 2.0))
        .unwrap();
    store
        .upsert_agent("bo", &agent(&[("rust", 1), ("docs", 3)], 1.0))
        .unwrap();
    let t = |key: &str, points: f64, priority: i64| {
        TaskSpec::new(key, format!("do {key}"))
            .estimate(points)
            .priority(priority)
    };
    let start = CreateOptions {
        start: true,
        idempotency_key: None,
    };
    store
        .create_workflow(
            WorkflowSpec::new("proj", orchestration_core::Mode::Dag)
                .task(t("a", 3.0, 50).skill("rust", 2))
                .task(t("b", 5.0, 60).skill("rust", 2).after(["a"]))
                .task(t("c", 2.0, 40).skill("docs", 1))
                .task(t("d", 8.0, 80).skill("rust", 4))
                .task(t("e", 1.0, 70).skill("rust", 2).after(["d"]))
                .task(t("f", 13.0, 90)),
            &start,
        )
        .unwrap();
    store
        .create_workflow(
            WorkflowSpec::new("extra", orchestration_core::Mode::Dag).task(t("g", 2.0, 10)),
            &start,
        )
        .unwrap();
    Team {
        store,
        clock: handle,
        held: Default::default(),
    }
}

fn s1() -> SprintSpec {
    let mut spec = SprintSpec::new("s1", date(3, 2), date(3, 13))
        .member(MemberSpec::new("ana"))
        .member(
            MemberSpec::new("bo")
                .availability(0.5)
                .days_off([date(3, 4)]),
        );
    spec.focus_factor = Some(0.5);
    spec.workflows = vec!["proj".into()];
    spec
}

/// A retrospective that closes the sprint, moving unfinished work into `next` if named.
fn closing(next: Option<&str>) -> RetrospectiveOptions {
    RetrospectiveOptions {
        close: true,
        next: next.map(str::to_owned),
    }
}

impl Team {
    fn events(&self) -> usize {
        self.store.events_since(0, usize::MAX >> 1).unwrap().len()
    }

    /// Moves the clock to `to`, heartbeating every held lease at least twice a day.
    fn set(&self, to: DateTime<Utc>) {
        let step = chrono::Duration::hours(12);
        while self.clock.now() + step < to {
            self.clock.advance(step);
            self.heartbeat();
        }
        self.clock.set(to);
        self.heartbeat();
    }

    fn heartbeat(&self) {
        for (claim, agent) in self.held.borrow().iter() {
            self.store
                .update_task(
                    &TaskRef::Id(claim.task.id),
                    agent,
                    claim.token,
                    &TaskUpdate::Heartbeat,
                    Some(chrono::Duration::days(1)),
                )
                .unwrap();
        }
    }

    fn claim(&self, agent: &str, key: &str, at: DateTime<Utc>) -> Claim {
        self.set(at);
        let claim = self
            .store
            .claim(
                &orchestration_core::ClaimRequest::new(agent)
                    .task(TaskRef::key("proj", key))
                    .lease(chrono::Duration::days(1)),
            )
            .unwrap()
            .claimed()
            .unwrap();
        self.held
            .borrow_mut()
            .push((claim.clone(), agent.to_owned()));
        claim
    }

    fn complete(&self, claim: &Claim, agent: &str, at: DateTime<Utc>, actual: f64) {
        self.set(at);
        self.held
            .borrow_mut()
            .retain(|(held, _)| held.task.id != claim.task.id);
        self.store
            .update_task(
                &TaskRef::Id(claim.task.id),
                agent,
                claim.token,
                &TaskUpdate::Complete {
                    result: None,
                    actual: Some(actual),
                },
                None,
            )
            .unwrap();
    }

    fn work(&self, agent: &str, key: &str, start: DateTime<Utc>, end: DateTime<Utc>, actual: f64) {
        let claim = self.claim(agent, key, start);
        self.complete(&claim, agent, end, actual);
    }
}

pub(crate) fn a_plan_counts_capacity_keeps_dependencies_and_says_what_it_left_out(
    db: &dyn Backend,
) {
    let team = team(db);
    let before = team.events();
    let plan = team.store.plan_sprint(&s1()).unwrap();
    assert_eq!(team.events(), before, "a dry run writes nothing");
    assert!(team.store.sprints().unwrap().is_empty());

    // ana: 10 days × 1.0 × 2 × 0.5 = 10; bo: 9 days (one off) × 0.5 × 1 × 0.5 = 2.25.
    let per_member: Vec<(String, u32, f64)> = plan
        .capacity
        .members
        .iter()
        .map(|m| (m.agent.clone(), m.working_days, m.points))
        .collect();
    assert_eq!(
        per_member,
        [("ana".into(), 10, 10.0), ("bo".into(), 9, 2.25)]
    );
    assert!(close_to(plan.capacity.points, 12.25));
    assert!(close_to(plan.raw_capacity, 24.5));
    assert_eq!(plan.focus, FocusSource::Given);
    assert_eq!(plan.velocity, None);
    assert!(close_to(plan.target, 12.25));

    assert_eq!(plan.plan.selected, ["proj/a", "proj/b", "proj/c"]);
    assert!(close_to(plan.plan.points, 10.0));
    let allocation: Vec<(String, Vec<String>, f64)> = plan
        .plan
        .allocation
        .iter()
        .map(|(agent, (tasks, points))| (agent.clone(), tasks.clone(), *points))
        .collect();
    assert_eq!(
        allocation,
        [
            ("ana".into(), vec!["proj/a".into(), "proj/b".into()], 8.0),
            ("bo".into(), vec!["proj/c".into()], 2.0),
        ]
    );
    assert_eq!(
        plan.plan.left_out,
        [
            ("proj/d".into(), "no member has the skills: rust>=4".into()),
            (
                "proj/e".into(),
                "depends on `proj/d`, which no member can do".into()
            ),
            ("proj/f".into(), "needs 13 points; 12.2 are left".into()),
        ]
    );
}

/// The sprint of the module docs, day by day (Monday 2 March to Friday 13 March 2026):
///
/// | day | what happens | scope | done | remaining |
/// |---|---|---|---|---|
/// | Mon 2 | start (a 3, b 5, c 2); ana does a | 10 | 3 | 7 |
/// | Tue 3 | g (2) added; ana starts b | 12 | 3 | 9 |
/// | Wed 4 | b re-estimated 5 → 8; bo does c | 15 | 5 | 10 |
/// | Thu 5 | g removed | 13 | 5 | 8 |
/// | Fri 6 | ana finishes b | 13 | 13 | 0 |
pub(crate) fn analytics_follow_scope_changes_mid_sprint(db: &dyn Backend) {
    let team = team(db);
    let started = team.store.start_sprint(&s1()).unwrap();
    assert_eq!(started.sprint.status, SprintStatus::Active);
    assert_eq!(started.sprint.committed, Some(10.0));

    team.work("ana", "a", at(3, 2, 10, 0), at(3, 2, 15, 0), 4.0);
    team.set(at(3, 3, 11, 0));
    let added = team
        .store
        .add_to_sprint("s1", &[TaskRef::key("extra", "g")])
        .unwrap();
    assert_eq!((added.changed.len(), added.scope), (1, 12.0));
    let b = team.claim("ana", "b", at(3, 3, 12, 0));
    team.set(at(3, 4, 10, 0));
    assert_eq!(
        team.store
            .reestimate(&TaskRef::key("proj", "b"), 8.0)
            .unwrap(),
        5.0
    );
    team.work("bo", "c", at(3, 4, 12, 0), at(3, 4, 16, 0), 2.0);
    team.set(at(3, 5, 9, 30));
    team.store
        .remove_from_sprint("s1", &[TaskRef::key("extra", "g")])
        .unwrap();
    team.complete(&b, "ana", at(3, 6, 10, 0), 10.0);

    team.set(at(3, 9, 9, 0));
    let analytics = team
        .store
        .sprint_analytics("s1", &AnalyticsOptions::default())
        .unwrap();
    let r = &analytics.report;
    let days: Vec<(NaiveDate, f64, f64, f64)> = r
        .days
        .iter()
        .map(|d| (d.date, d.scope, d.completed, d.remaining))
        .collect();
    assert_eq!(
        days,
        [
            (date(3, 2), 10.0, 3.0, 7.0),
            (date(3, 3), 12.0, 3.0, 9.0),
            (date(3, 4), 15.0, 5.0, 10.0),
            (date(3, 5), 13.0, 5.0, 8.0),
            (date(3, 6), 13.0, 13.0, 0.0),
            (date(3, 9), 13.0, 13.0, 0.0),
        ]
    );
    // b was in progress at the end of Tuesday.
    assert_eq!(r.days[1].in_progress, 5.0);
    assert_eq!(r.daily_done, [3.0, 0.0, 2.0, 0.0, 8.0, 0.0]);
    assert_eq!(r.ideal.len(), 11);
    assert!(close_to(r.days[0].ideal, 9.0));

    let t = &r.totals;
    assert_eq!(
        (t.committed, t.added, t.removed, t.reestimated, t.scope),
        (10.0, 2.0, 2.0, 3.0, 13.0)
    );
    assert_eq!(
        (t.completed, t.completed_committed, t.progress),
        (13.0, 10.0, 1.0)
    );
    assert_eq!(
        (t.say_do, t.scope_creep, t.churn, t.rollover_rate),
        (Some(1.0), Some(0.2), Some(0.4), Some(0.0))
    );
    let changes: Vec<(String, ScopeChangeKind, f64)> = r
        .changes
        .iter()
        .map(|c| (c.task.clone(), c.kind, c.points))
        .collect();
    assert_eq!(
        changes,
        [
            ("extra/g".into(), ScopeChangeKind::Added, 2.0),
            ("proj/b".into(), ScopeChangeKind::Reestimated, 3.0),
            ("extra/g".into(), ScopeChangeKind::Removed, -2.0),
        ]
    );
    // Cycle times 4 h (c), 5 h (a) and 70 h (b).
    assert_eq!(r.flow.done, 3);
    assert_eq!(r.flow.cycle_time_p50_hours, Some(5.0));
    assert!(close_to(r.flow.cycle_time_p85_hours.unwrap(), 50.5));
    assert!(analytics.carry_over.is_empty());
    assert!(
        analytics.forecast.is_some(),
        "five finished days are history"
    );

    let retro = team
        .store
        .sprint_retrospective("s1", &RetrospectiveOptions::default())
        .unwrap();
    let accuracy = retro.accuracy.clone().unwrap();
    // ln(4/3), ln(10/8) and ln(2/2); relative errors 0.25, 0.2 and 0.
    let bias = ((4.0f64 / 3.0).ln() + (10.0f64 / 8.0).ln()) / 3.0;
    assert!(close_to(accuracy.bias, bias));
    assert_eq!(
        (accuracy.tasks, accuracy.mdmre, accuracy.pred25),
        (3, 0.2, 1.0)
    );
    let contributions: Vec<(String, usize, f64)> = retro
        .contributions
        .iter()
        .map(|c| (c.agent.clone(), c.tasks, c.points))
        .collect();
    assert_eq!(
        contributions,
        [("ana".into(), 2, 11.0), ("bo".into(), 1, 2.0)]
    );
    let findings: Vec<&str> = retro
        .findings
        .iter()
        .map(|f| f.observation.as_str())
        .collect();
    assert_eq!(
        findings,
        ["scope grew by 20% after the start (2.0 points added, 2.0 removed: churn 40%)"]
    );
    assert!(!retro.closed);
    assert_eq!(retro.sprint.status, SprintStatus::Active);
}

pub(crate) fn closing_fixes_velocity_and_the_next_plan_learns_from_it(db: &dyn Backend) {
    let team = team(db);
    team.store.start_sprint(&s1()).unwrap();
    team.work("ana", "a", at(3, 2, 10, 0), at(3, 2, 15, 0), 3.0);
    team.work("ana", "b", at(3, 3, 10, 0), at(3, 5, 15, 0), 5.0);
    team.set(at(3, 13, 18, 0));
    let before = team.events();
    let retro = team
        .store
        .sprint_retrospective("s1", &closing(None))
        .unwrap();
    assert!(team.events() > before);
    assert!(retro.closed);
    assert_eq!(retro.sprint.status, SprintStatus::Closed);
    assert_eq!(retro.sprint.completed, Some(8.0));
    let carried: Vec<&str> = retro.carry_over.iter().map(|c| c.task.as_str()).collect();
    assert_eq!(carried, ["proj/c"]);
    // say/do 8 of 10 is not below 80%, 20% rolled over is not above 20%, and the scope did
    // not change.
    let findings: Vec<(&str, &str)> = retro
        .findings
        .iter()
        .map(|f| (f.observation.as_str(), f.action.as_str()))
        .collect();
    assert_eq!(
        findings,
        [(
            "delivered 8.0 of 10.0 committed points (say/do 80%), and the scope changed little \
             after the start (creep 0%, churn 0%)",
            "keep the commitment near velocity"
        )]
    );

    // The closed sprint's numbers feed the next plan: velocity 8 and focus 8 / 24.5.
    let mut next = SprintSpec::new("s2", date(3, 16), date(3, 27)).member(MemberSpec::new("ana"));
    next.workflows = vec!["proj".into(), "extra".into()];
    let plan = team.store.plan_sprint(&next).unwrap();
    assert_eq!(plan.focus, FocusSource::Learnt(1));
    assert!(close_to(plan.capacity.focus_factor, 8.0 / 24.5));
    assert_eq!(plan.velocity.map(|v| v.mean), Some(8.0));
    // ana alone: 10 days × 2 × 8/24.5 ≈ 6.53 points, below the velocity of 8.
    assert!(close_to(plan.target, 20.0 * 8.0 / 24.5));
    assert!(plan.plan.points <= plan.target + 1e-9);

    // The carried-over task is back in the backlog, but only bo has the docs skill it needs.
    assert_eq!(plan.plan.selected, ["extra/g"]);
    assert!(plan.plan.left_out.contains(&(
        "proj/c".to_owned(),
        "no member has the skills: docs>=1".to_owned()
    )));
    assert!(plan.plan.left_out.contains(&(
        "proj/f".to_owned(),
        "needs 13 points; 6.5 are left".to_owned()
    )));
    let err = team
        .store
        .sprint_retrospective("s1", &closing(None))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "sprint `s1` is closed: it cannot be closed again"
    );
}

pub(crate) fn unfinished_work_moves_into_the_named_next_sprint(db: &dyn Backend) {
    let team = team(db);
    team.store.start_sprint(&s1()).unwrap();
    let mut next = SprintSpec::new("s2", date(3, 16), date(3, 27)).member(MemberSpec::new("ana"));
    next.workflows = vec!["extra".into()];
    team.store.create_sprint(&next).unwrap();
    team.set(at(3, 13, 18, 0));
    let retro = team
        .store
        .sprint_retrospective("s1", &closing(Some("s2")))
        .unwrap();
    assert_eq!(retro.moved_to.as_deref(), Some("s2"));
    assert_eq!(retro.carry_over.len(), 3);
    let s2 = team.store.sprint("s2").unwrap();
    // g was planned into s2; a, b and c joined it.
    assert_eq!((s2.status, s2.tasks), (SprintStatus::Planned, 4));
    team.set(at(3, 16, 9, 0));
    let started = team.store.start_sprint(&SprintSpec {
        name: "s2".into(),
        ..SprintSpec::default()
    });
    let started = started.unwrap();
    assert_eq!(started.sprint.committed, Some(12.0));
    // The start kept the backlog s2 was planned from.
    assert_eq!(started.sprint.workflows, ["extra"]);
    let analytics = team
        .store
        .sprint_analytics("s2", &AnalyticsOptions::default())
        .unwrap();
    let times: Vec<(String, u32)> = analytics
        .carry_over
        .iter()
        .map(|c| (c.task.clone(), c.times_carried))
        .collect();
    assert!(times.contains(&("proj/a".into(), 1)), "{times:?}");
    assert!(times.contains(&("extra/g".into(), 0)), "{times:?}");
}

pub(crate) fn forecasts_are_reproducible_for_a_seed(db: &dyn Backend) {
    let team = team(db);
    team.store.start_sprint(&s1()).unwrap();
    team.work("ana", "a", at(3, 2, 10, 0), at(3, 2, 15, 0), 3.0);
    team.set(at(3, 4, 9, 0));
    let run = |seed| {
        team.store
            .sprint_analytics(
                "s1",
                &AnalyticsOptions {
                    trials: 2_000,
                    seed: Some(seed),
                },
            )
            .unwrap()
            .forecast
            .unwrap()
    };
    assert_eq!(run(7), run(7));
    let forecast = run(7);
    // History: Monday 3 points, Tuesday 0; 7 points left.
    assert_eq!((forecast.history_days, forecast.remaining), (2, 7.0));
    assert!(forecast.p50 <= forecast.p85 && forecast.p85 <= forecast.p95);
    assert!(forecast.p50 >= date(3, 4));
}

pub(crate) fn bad_input_gets_a_specific_error_and_writes_nothing(db: &dyn Backend) {
    let team = team(db);
    team.store.start_sprint(&s1()).unwrap();
    let mut other = SprintSpec::new("other", date(4, 1), date(4, 10)).member(MemberSpec::new("bo"));
    other.focus_factor = Some(1.0);
    team.store.create_sprint(&other).unwrap();

    type Case = (
        &'static str,
        Box<dyn Fn(&Store) -> orchestration_core::Result<()>>,
        &'static str,
    );
    let spec = |f: fn(&mut SprintSpec)| {
        let mut spec =
            SprintSpec::new("new", date(5, 4), date(5, 15)).member(MemberSpec::new("ana"));
        f(&mut spec);
        spec
    };
    let cases: Vec<Case> = vec![
        (
            "end before start",
            Box::new(move |s| s.plan_sprint(&spec(|x| x.end = Some(date(5, 1)))).map(drop)),
            "invalid end: the sprint ends (2026-05-01) before it starts (2026-05-04)",
        ),
        (
            "unknown member",
            Box::new(move |s| {
                s.create_sprint(&spec(|x| x.members = vec![MemberSpec::new("nobody")]))
                    .map(drop)
            }),
            "unknown agent `nobody`",
        ),
        (
            "availability above 1",
            Box::new(move |s| {
                s.create_sprint(&spec(|x| x.members[0].availability = 1.5))
                    .map(drop)
            }),
            "invalid members[0].availability: 1.5 is not from 0 to 1 (the share of `ana`'s time on the sprint)",
        ),
        (
            "overlapping sprints for one agent",
            Box::new(move |s| {
                s.start_sprint(&spec(|x| {
                    x.start = Some(date(3, 9));
                    x.end = Some(date(3, 20));
                }))
                .map(drop)
            }),
            "agent `ana` is a member of sprint `s1` (2026-03-02 to 2026-03-13), which overlaps these dates",
        ),
        (
            "a task in another open sprint",
            Box::new(|s| {
                s.add_to_sprint("other", &[TaskRef::key("proj", "a")])
                    .map(drop)
            }),
            "task `proj/a` is already in sprint `s1`; a task belongs to at most one open sprint: remove it there first",
        ),
        (
            "starting twice",
            Box::new(|s| s.start_sprint(&s1()).map(drop)),
            "sprint `s1` is active: it cannot start",
        ),
        (
            "closing a sprint that never started",
            Box::new(|s| s.sprint_retrospective("other", &closing(None)).map(drop)),
            "sprint `other` is planned: it cannot be closed before it starts",
        ),
        (
            "next without close",
            Box::new(|s| {
                s.sprint_retrospective(
                    "s1",
                    &RetrospectiveOptions {
                        close: false,
                        next: Some("other".into()),
                    },
                )
                .map(drop)
            }),
            "invalid next: unfinished tasks move to the next sprint only when closing: pass close",
        ),
        (
            "unknown sprint",
            Box::new(|s| {
                s.sprint_analytics("nope", &AnalyticsOptions::default())
                    .map(drop)
            }),
            "unknown sprint `nope`",
        ),
        (
            "removing a task that is not in the sprint",
            Box::new(|s| {
                s.remove_from_sprint("s1", &[TaskRef::key("extra", "g")])
                    .map(drop)
            }),
            "invalid tasks: task `extra/g` is not in sprint `s1`",
        ),
        (
            "a negative estimate",
            Box::new(|s| s.reestimate(&TaskRef::key("proj", "a"), -1.0).map(drop)),
            "invalid estimate: -1 is not a finite number of points from 0 to 10000",
        ),
        (
            "a sprint name with a slash",
            Box::new(move |s| s.plan_sprint(&spec(|x| x.name = "a/b".into())).map(drop)),
            "invalid name: sprint name `a/b` contains `/`, which is not allowed; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit",
        ),
    ];
    for (what, call, message) in cases {
        let before = team.events();
        let err: Error = call(&team.store).expect_err(what);
        assert_eq!(err.to_string(), message, "{what}");
        assert_eq!(team.events(), before, "{what} wrote something");
    }
    let sprints: Vec<String> = team
        .store
        .sprints()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(sprints, ["s1", "other"]);
}

pub(crate) fn workload_shows_each_members_sprint_allocation_against_capacity(db: &dyn Backend) {
    let team = team(db);
    team.store.start_sprint(&s1()).unwrap();
    team.work("ana", "a", at(3, 2, 10, 0), at(3, 2, 15, 0), 3.0);
    let _c = team.claim("bo", "c", at(3, 3, 10, 0));
    let workload = team
        .store
        .workload(&orchestration_core::agent::Weights::default())
        .unwrap();
    let loads: Vec<(String, String, f64, f64, f64, f64)> = workload
        .agents
        .iter()
        .filter_map(|load| {
            let s = load.sprint.as_ref()?;
            Some((
                load.agent.clone(),
                s.sprint.clone(),
                s.capacity,
                s.allocated,
                s.done,
                s.in_flight,
            ))
        })
        .collect();
    assert_eq!(
        loads,
        [
            ("ana".into(), "s1".into(), 10.0, 8.0, 3.0, 0.0),
            ("bo".into(), "s1".into(), 2.25, 2.0, 0.0, 2.0),
        ]
    );
}

pub(crate) fn work_in_progress_past_the_p85_cycle_time_is_flagged_and_found(db: &dyn Backend) {
    let team = team(db);
    team.store.start_sprint(&s1()).unwrap();
    // One finished task sets the p85 cycle time at 5 hours.
    team.work("ana", "a", at(3, 2, 10, 0), at(3, 2, 15, 0), 3.0);
    team.claim("bo", "c", at(3, 3, 10, 0));
    let aging = |when| {
        team.set(when);
        let analytics = team
            .store
            .sprint_analytics("s1", &AnalyticsOptions::default())
            .unwrap();
        analytics
            .report
            .flow
            .aging
            .iter()
            .map(|a| (a.task.clone(), a.age_hours, a.over_p85))
            .collect::<Vec<_>>()
    };
    assert_eq!(aging(at(3, 3, 12, 0)), [("proj/c".into(), 2.0, false)]);
    assert_eq!(aging(at(3, 4, 10, 0)), [("proj/c".into(), 24.0, true)]);
    let retro = team
        .store
        .sprint_retrospective("s1", &RetrospectiveOptions::default())
        .unwrap();
    assert!(
        retro
            .findings
            .iter()
            .any(|f| f.observation == "1 task in progress for longer than the p85 cycle time"),
        "{:?}",
        retro.findings
    );
}

/// A start by name alone, for a sprint saved as planned.
fn start_of(name: &str) -> SprintSpec {
    SprintSpec {
        name: name.into(),
        ..SprintSpec::default()
    }
}

pub(crate) fn a_planned_sprint_starts_with_exactly_what_was_saved(db: &dyn Backend) {
    let team = team(db);
    // With a commitment of 3 points, planning saves `a` alone.
    let mut spec = s1();
    spec.commit = Some(3.0);
    let saved = team.store.create_sprint(&spec).unwrap();
    assert_eq!(saved.plan.selected, ["proj/a"]);
    assert_eq!(
        (saved.sprint.focus_factor, saved.sprint.capacity),
        (Some(0.5), Some(12.25)),
        "the plan's capacity is saved with it"
    );
    // Work that appears after planning is not pulled in; tasks added by hand are.
    team.store
        .create_workflow(
            WorkflowSpec::new("late", orchestration_core::Mode::Dag)
                .task(TaskSpec::new("z", "do z").estimate(1.0).priority(99)),
            &CreateOptions {
                start: true,
                idempotency_key: None,
            },
        )
        .unwrap();
    team.store
        .add_to_sprint("s1", &[TaskRef::key("extra", "g")])
        .unwrap();
    // A faster ana does not change the capacity the sprint was planned against.
    team.store
        .upsert_agent(
            "ana",
            &AgentUpdate {
                points_per_day: Some(3.0),
                ..AgentUpdate::default()
            },
        )
        .unwrap();

    let started = team.store.start_sprint(&start_of("s1")).unwrap();
    assert_eq!(
        started.warnings,
        [
            "members' points per day changed since the sprint was saved: it keeps the capacity \
             of 12.2 points planned then (their profiles now give 17.2); re-plan it with \
             action=create to use them"
        ]
    );
    let allocated: Vec<(String, Vec<String>)> = started
        .plan
        .allocation
        .iter()
        .map(|(agent, (tasks, _))| (agent.clone(), tasks.clone()))
        .collect();
    assert_eq!(
        (
            started.plan.selected.clone(),
            started.plan.points,
            started.sprint.committed,
            started.sprint.tasks,
            allocated,
            started.plan.left_out.len(),
        ),
        (
            vec!["proj/a".to_owned(), "extra/g".to_owned()],
            5.0,
            Some(5.0),
            2,
            vec![("ana".to_owned(), vec!["proj/a".to_owned()])],
            0,
        )
    );
    assert_eq!(
        (
            started.capacity.points,
            started.raw_capacity,
            started.capacity.focus_factor,
            started.focus,
            started.sprint.capacity,
        ),
        (12.25, 24.5, 0.5, FocusSource::Saved, Some(12.25))
    );
    let analytics = team
        .store
        .sprint_analytics("s1", &AnalyticsOptions::default())
        .unwrap();
    assert_eq!(analytics.report.totals.committed, 5.0);
}

pub(crate) fn a_start_keeps_the_focus_factor_saved_with_the_plan(db: &dyn Backend) {
    let team = team(db);
    team.store.start_sprint(&s1()).unwrap();
    // Saved before any sprint closed: the default focus factor, 0.7.
    let mut next = SprintSpec::new("s2", date(3, 16), date(3, 27)).member(MemberSpec::new("ana"));
    next.workflows = vec!["extra".into()];
    let saved = team.store.create_sprint(&next).unwrap();
    assert_eq!(saved.focus, FocusSource::Default);
    // s1 closes with 8 points done: planning now would learn 8 / 24.5.
    team.work("ana", "a", at(3, 2, 10, 0), at(3, 2, 15, 0), 3.0);
    team.work("ana", "b", at(3, 3, 10, 0), at(3, 5, 15, 0), 5.0);
    team.set(at(3, 13, 18, 0));
    team.store
        .sprint_retrospective("s1", &closing(None))
        .unwrap();
    let fresh = SprintSpec::new("s3", date(3, 30), date(4, 10)).member(MemberSpec::new("ana"));
    assert_eq!(
        team.store.plan_sprint(&fresh).unwrap().focus,
        FocusSource::Learnt(1)
    );

    let started = team.store.start_sprint(&start_of("s2")).unwrap();
    assert_eq!(started.focus, FocusSource::Saved);
    assert!(close_to(started.capacity.focus_factor, 0.7));
    assert!(close_to(started.capacity.points, 14.0));
    assert!(close_to(started.sprint.capacity.unwrap(), 14.0));
    assert_eq!(started.plan.selected, ["extra/g"]);
}

pub(crate) fn a_start_of_a_planned_sprint_refuses_planning_arguments_and_of_an_unknown_one_says_so(
    db: &dyn Backend,
) {
    let team = team(db);
    team.store.create_sprint(&s1()).unwrap();
    let refused = |given: &str| {
        format!(
            "invalid {given}: sprint `s1` is planned, and start commits what was saved for it \
             without planning again; start it with its name alone, re-plan it first with \
             action=create, or change its tasks with add/remove"
        )
    };
    let cases: Vec<(&str, SprintSpec, String)> = vec![
        (
            "the whole spec again",
            s1(),
            refused("start, end, members, focus_factor, workflows"),
        ),
        (
            "a commitment",
            SprintSpec {
                commit: Some(40.0),
                ..start_of("s1")
            },
            refused("commit"),
        ),
        (
            "a goal",
            SprintSpec {
                goal: Some("ship".into()),
                ..start_of("s1")
            },
            refused("goal"),
        ),
        (
            "working days",
            SprintSpec {
                week: Some(orchestration_core::sprint::WorkWeek::default()),
                ..start_of("s1")
            },
            refused("work_days"),
        ),
        (
            "an unknown sprint by name alone",
            start_of("nope"),
            "invalid name: unknown sprint `nope`; to plan and start a new sprint in one call \
             give start, end and members, or save it first with action=create"
                .into(),
        ),
    ];
    for (what, spec, message) in cases {
        let before = team.events();
        let err = team.store.start_sprint(&spec).expect_err(what);
        assert_eq!(err.to_string(), message, "{what}");
        assert_eq!(team.events(), before, "{what} wrote something");
        let s1 = team.store.sprint("s1").unwrap();
        assert_eq!((s1.status, s1.tasks), (SprintStatus::Planned, 3), "{what}");
    }
    assert!(team.store.sprint("nope").is_err());
}

/// The team with one more workflow, `chain`: `r` depends on `p` and `q`, and `s` on `r`; and a
/// sprint `c` holding all four, planned, or started once `done` are finished.
fn chain_sprint(db: &dyn Backend, started: bool, done: &[&str]) -> Team {
    let team = team(db);
    let t = |key: &str| TaskSpec::new(key, format!("do {key}")).estimate(1.0);
    team.store
        .create_workflow(
            WorkflowSpec::new("chain", orchestration_core::Mode::Dag)
                .task(t("p"))
                .task(t("q"))
                .task(t("r").after(["p", "q"]))
                .task(t("s").after(["r"])),
            &CreateOptions {
                start: true,
                idempotency_key: None,
            },
        )
        .unwrap();
    let mut spec = SprintSpec::new("c", date(3, 2), date(3, 13)).member(MemberSpec::new("ana"));
    spec.workflows = vec!["chain".into()];
    spec.focus_factor = Some(1.0);
    let plan = if started {
        team.store.start_sprint(&spec)
    } else {
        team.store.create_sprint(&spec)
    };
    assert_eq!(
        plan.unwrap().plan.selected,
        ["chain/p", "chain/q", "chain/r", "chain/s"]
    );
    for key in done {
        let claim = team
            .store
            .claim(&orchestration_core::ClaimRequest::new("ana").task(TaskRef::key("chain", *key)))
            .unwrap()
            .claimed()
            .unwrap();
        team.store
            .update_task(
                &TaskRef::Id(claim.task.id),
                "ana",
                claim.token,
                &TaskUpdate::Complete {
                    result: None,
                    actual: None,
                },
                None,
            )
            .unwrap();
    }
    team
}

/// Removes `removed` from the chain sprint (started or not, with `done` finished first) and
/// checks the warnings.
#[track_caller]
fn check_removal(
    db: &dyn Backend,
    started: bool,
    done: &[&str],
    removed: &[&str],
    expected: &[&str],
) {
    let team = chain_sprint(&*db.fresh(), started, done);
    let refs: Vec<TaskRef> = removed.iter().map(|k| TaskRef::key("chain", *k)).collect();
    let edit = team.store.remove_from_sprint("c", &refs).unwrap();
    assert_eq!(edit.changed.len(), removed.len(), "{removed:?}");
    assert_eq!(
        edit.warnings, expected,
        "started {started}, done {done:?}, removed {removed:?}"
    );
}

pub(crate) fn removing_a_task_warns_of_the_tasks_left_in_the_sprint_that_depend_on_it(
    db: &dyn Backend,
) {
    check_removal(
        db,
        false,
        &[],
        &["p"],
        &[
            "`chain/r` is still in the sprint and depends on `chain/p`, which left it: \
           `chain/r` cannot start until it finishes; remove it too, or add `chain/p` back",
        ],
    );
    check_removal(
        db,
        false,
        &[],
        &["p", "q"],
        &[
            "`chain/r` is still in the sprint and depends on `chain/p` and `chain/q`, which left \
           it: `chain/r` cannot start until they finish; remove it too, or add `chain/p` and \
           `chain/q` back",
        ],
    );
    // Only direct dependents: `s` depends on `r`, not on `p`.
    check_removal(
        db,
        true,
        &[],
        &["r"],
        &[
            "`chain/s` is still in the sprint and depends on `chain/r`, which left it: \
           `chain/s` cannot start until it finishes; remove it too, or add `chain/r` back",
        ],
    );
    // Tasks removed together do not warn of each other.
    check_removal(db, true, &[], &["r", "s"], &[]);
    check_removal(db, false, &[], &["p", "q", "r", "s"], &[]);
    check_removal(db, false, &[], &["s"], &[]);
    // A finished dependency blocks nothing.
    check_removal(db, true, &["p"], &["p"], &[]);
}

/// s1 with a focus factor of 1: `f` (13), `a` (3), `b` (5) and `c` (2), 23 points, fit.
fn s1_full() -> SprintSpec {
    let mut spec = s1();
    spec.focus_factor = Some(1.0);
    spec
}

/// The numbers of a retrospective's headline: completed of the commitment, committed,
/// completed in all, scope creep and churn.
type Headline = (f64, f64, f64, f64, f64);

/// The findings of s1 started in full, as (observation, action), after `add` joined and
/// `remove` left it on Tuesday and `done` were completed, with the headline they must agree
/// with.
fn findings_after(
    db: &dyn Backend,
    add: &[(&str, &str)],
    remove: &[(&str, &str)],
    done: &[&str],
) -> (Vec<(String, String)>, Headline) {
    let team = team(&*db.fresh());
    let started = team.store.start_sprint(&s1_full()).unwrap();
    assert_eq!(started.sprint.committed, Some(23.0));
    team.set(at(3, 3, 9, 0));
    let refs = |tasks: &[(&str, &str)]| -> Vec<TaskRef> {
        tasks.iter().map(|(w, k)| TaskRef::key(*w, *k)).collect()
    };
    if !add.is_empty() {
        team.store.add_to_sprint("s1", &refs(add)).unwrap();
    }
    if !remove.is_empty() {
        team.store.remove_from_sprint("s1", &refs(remove)).unwrap();
    }
    for (i, key) in done.iter().enumerate() {
        let workflow = if *key == "g" { "extra" } else { "proj" };
        team.set(at(3, 4, 9 + i as u32, 0));
        let claim = team
            .store
            .claim(&orchestration_core::ClaimRequest::new("ana").task(TaskRef::key(workflow, *key)))
            .unwrap()
            .claimed()
            .unwrap();
        // Effort as estimated, so that accuracy finds nothing.
        let estimate = claim.task.estimate;
        team.complete(&claim, "ana", at(3, 4, 9 + i as u32, 10), estimate);
    }
    let retro = team
        .store
        .sprint_retrospective("s1", &RetrospectiveOptions::default())
        .unwrap();
    let t = &retro.report.totals;
    (
        retro
            .findings
            .into_iter()
            .map(|f| (f.observation, f.action))
            .collect(),
        (
            t.completed_committed,
            t.committed,
            t.completed,
            t.scope_creep.unwrap(),
            t.churn.unwrap(),
        ),
    )
}

pub(crate) fn findings_judge_the_commitment_and_the_scope_by_the_numbers_reported(
    db: &dyn Backend,
) {
    // 2 points added and done, `c` (2) not: 21 of the 23 committed points were delivered,
    // though 23 were done in all. Creep and churn are 2 / 23.
    let (findings, totals) = findings_after(db, &[("extra", "g")], &[], &["f", "a", "b", "g"]);
    assert_eq!(totals, (21.0, 23.0, 23.0, 2.0 / 23.0, 2.0 / 23.0));
    assert_eq!(
        findings,
        [(
            "delivered 21.0 of 23.0 committed points (say/do 91%), and the scope changed \
             little after the start (creep 9%, churn 9%)"
                .to_owned(),
            "keep the commitment near velocity".to_owned()
        )]
    );
    // 2 points added and 2 removed: creep 9% is within bounds, churn 17% is not.
    let (findings, totals) = findings_after(
        db,
        &[("extra", "g")],
        &[("proj", "c")],
        &["f", "a", "b", "g"],
    );
    assert_eq!(totals, (21.0, 23.0, 23.0, 2.0 / 23.0, 4.0 / 23.0));
    assert_eq!(
        findings,
        [(
            "scope churned by 17% after the start (2.0 points added, 2.0 removed)".to_owned(),
            "plan only work that is ready, and settle the scope before the start rather than \
             after it"
                .to_owned()
        )]
    );
    // Only `f` done: say/do is 13 of 23, and the action is to commit to what was delivered of
    // the commitment, not to the 15 points done with added scope.
    let (findings, totals) = findings_after(db, &[("extra", "g")], &[], &["f", "g"]);
    assert_eq!(totals, (13.0, 23.0, 15.0, 2.0 / 23.0, 2.0 / 23.0));
    assert_eq!(
        findings,
        [
            (
                "delivered 57% of the commitment (13.0 of 23.0 committed points)".to_owned(),
                "commit to about 13 points, what was delivered of this commitment, until say/do \
                 is above 80%"
                    .to_owned()
            ),
            (
                "40% of the scope was not finished (10.0 points carried over)".to_owned(),
                "carry the unfinished tasks over first and commit to less new work".to_owned()
            )
        ]
    );
}

pub(crate) fn a_retrospective_of_a_sprint_not_started_says_nothing_is_committed(db: &dyn Backend) {
    let team = team(db);
    team.store.create_sprint(&s1_full()).unwrap();
    let retro = team
        .store
        .sprint_retrospective("s1", &RetrospectiveOptions::default())
        .unwrap();
    let findings: Vec<&str> = retro
        .findings
        .iter()
        .map(|f| f.observation.as_str())
        .collect();
    assert_eq!(
        findings,
        ["the sprint has not started: nothing is committed yet (23.0 points planned)"]
    );
}

pub(crate) fn contributions_count_retries_and_expired_leases_apart_as_agent_performance_does(
    db: &dyn Backend,
) {
    let team = team(db);
    team.store.start_sprint(&s1_full()).unwrap();
    let f = TaskRef::key("proj", "f");
    // bo's lease on `f` runs out; ana's first attempt fails and is retried; her second one
    // completes it.
    team.set(at(3, 2, 10, 0));
    team.store
        .claim(
            &orchestration_core::ClaimRequest::new("bo")
                .task(f.clone())
                .lease(chrono::Duration::hours(1)),
        )
        .unwrap()
        .claimed()
        .unwrap();
    team.set(at(3, 2, 12, 0));
    assert_eq!(team.store.tick().unwrap().expired, 1);
    let claim = team
        .store
        .claim(
            &orchestration_core::ClaimRequest::new("ana")
                .task(f.clone())
                .lease(chrono::Duration::days(1)),
        )
        .unwrap()
        .claimed()
        .unwrap();
    team.set(at(3, 2, 13, 0));
    team.store
        .update_task(
            &TaskRef::Id(claim.task.id),
            "ana",
            claim.token,
            &TaskUpdate::Fail {
                error: "flaky".into(),
                kind: FailureKind::Transient,
            },
            None,
        )
        .unwrap();
    team.set(at(3, 3, 9, 0));
    team.store.tick().unwrap();
    let claim = team
        .store
        .claim(
            &orchestration_core::ClaimRequest::new("ana")
                .task(f)
                .lease(chrono::Duration::days(1)),
        )
        .unwrap()
        .claimed()
        .unwrap();
    assert_eq!(claim.task.attempt, 3);
    team.complete(&claim, "ana", at(3, 3, 15, 0), 13.0);

    let retro = team
        .store
        .sprint_retrospective("s1", &RetrospectiveOptions::default())
        .unwrap();
    let contributions: Vec<(String, usize, f64, u32, u32)> = retro
        .contributions
        .iter()
        .map(|c| {
            (
                c.agent.clone(),
                c.tasks,
                c.points,
                c.retries,
                c.expired_leases,
            )
        })
        .collect();
    assert_eq!(
        contributions,
        [("ana".into(), 1, 13.0, 1, 0), ("bo".into(), 0, 0.0, 0, 1)]
    );
    let performance: Vec<(String, u32, u32)> = team
        .store
        .agent_performance(at(3, 1, 0, 0), at(3, 4, 0, 0), None)
        .unwrap()
        .into_iter()
        .map(|p| (p.agent, p.metrics.retries, p.metrics.expired_leases))
        .collect();
    let mut performance = performance;
    performance.sort();
    assert_eq!(performance, [("ana".into(), 1, 0), ("bo".into(), 0, 1)]);
}

/// An SVG chart's value axis, bottom first, and the points of its scope line.
fn svg_axis(svg: &str) -> (Vec<String>, Vec<String>) {
    let ticks = svg
        .split(r##"text-anchor="end" fill="#555">"##)
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_owned())
        .collect();
    let scope = svg
        .split(r#"class="scope""#)
        .nth(1)
        .and_then(|rest| rest.split(r#"points=""#).nth(1))
        .and_then(|points| points.split('"').next())
        .unwrap_or_default()
        .split(' ')
        .map(str::to_owned)
        .collect();
    (ticks, scope)
}

/// The first line of the text chart of `sprint`, the SVG's value axis, and where its scope line
/// starts and how many points it has, as of now.
#[track_caller]
fn check_chart(team: &Team, sprint: &str, header: &str, ticks: &[&str], scope: (&str, usize)) {
    let report = team
        .store
        .sprint_analytics(sprint, &AnalyticsOptions::default())
        .unwrap()
        .report;
    let text = orchestration_core::sprint::text_chart(&report, 3);
    assert_eq!(text.lines().next().unwrap(), header, "{text}");
    let (axis, line) = svg_axis(&orchestration_core::sprint::svg(sprint, &report));
    let axis: Vec<&str> = axis.iter().map(String::as_str).collect();
    assert_eq!(
        (axis.as_slice(), (line[0].as_str(), line.len())),
        (ticks, scope)
    );
}

pub(crate) fn charts_scale_to_the_planned_scope_before_the_start_and_to_the_commitment_after(
    db: &dyn Backend,
) {
    const PLANNED: &str = "; not started: the ideal is that of the scope planned";
    // The value axis of a 10-point chart, whose top line is at y = 40.
    let tens = ["0", "2", "4", "6", "8", "10"];
    let team = team(db);
    team.store.create_sprint(&s1()).unwrap();
    check_chart(
        &team,
        "s1",
        &format!("burndown (● remaining, · ideal), 10 points at the top{PLANNED}"),
        &tens,
        ("56.0,40.0", 11),
    );
    // The whole text chart of the planned sprint: remaining at the 10 points planned, the
    // ideal burning them down over the ten working days, and the scope held across them.
    let report = team
        .store
        .sprint_analytics("s1", &AnalyticsOptions::default())
        .unwrap()
        .report;
    assert_eq!(
        orchestration_core::sprint::text_chart(&report, 3),
        format!(
            "burndown (● remaining, · ideal), 10 points at the top{PLANNED}\n\
             │●●·\n\
             │   ·····\n\
             │        ···\n\
             └───────────\n\
             burnup (─ scope, █ completed)\n\
             │───────────\n\
             │\n\
             │\n\
             └───────────"
        )
    );

    // A sprint with nothing in it, and one of half a point.
    let mut empty = SprintSpec::new("empty", date(4, 6), date(4, 17)).member(MemberSpec::new("bo"));
    empty.workflows = vec!["extra".into()];
    empty.commit = Some(0.0);
    team.store.create_sprint(&empty).unwrap();
    check_chart(
        &team,
        "empty",
        &format!("burndown (● remaining, · ideal), no points in the sprint{PLANNED}"),
        &["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"],
        ("56.0,312.0", 11),
    );
    team.store
        .reestimate(&TaskRef::key("extra", "g"), 0.5)
        .unwrap();
    team.store
        .add_to_sprint("empty", &[TaskRef::key("extra", "g")])
        .unwrap();
    check_chart(
        &team,
        "empty",
        &format!("burndown (● remaining, · ideal), 0.5 points at the top{PLANNED}"),
        &["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"],
        ("56.0,40.0", 11),
    );

    // Started, then closed: the commitment of 10 points is the scale, and the scope line
    // follows the days gone by.
    team.store.start_sprint(&start_of("s1")).unwrap();
    team.work("ana", "a", at(3, 2, 10, 0), at(3, 2, 15, 0), 3.0);
    let started = "burndown (● remaining, · ideal), 10 points at the top";
    check_chart(&team, "s1", started, &tens, ("56.0,40.0", 2));
    team.set(at(3, 13, 18, 0));
    team.store
        .sprint_retrospective("s1", &closing(None))
        .unwrap();
    check_chart(&team, "s1", started, &tens, ("56.0,40.0", 11));
}
