//! Three two-week sprints, simulated day by day on a manual clock, by agents that work at
//! different speeds and misjudge estimates in different directions. Each sprint is planned
//! (the second and third from the velocity and focus factor learnt so far), burnt down day by
//! day, analysed, and closed with a retrospective; unfinished work rolls back into the backlog.
//!
//! Run it with `cargo run --example sprint_simulation`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use orchestration::{
    AgentUpdate, ClaimRequest, Clock, CreateOptions, LeaseToken, ManualClock, Mode, Store, TaskRef,
    TaskSpec, TaskState, TaskUpdate, WorkflowSpec, sprint::text_chart, store::AnalyticsOptions,
    store::MemberSpec, store::RetrospectiveOptions, store::SprintSpec,
};

/// An agent of the simulation.
struct Agent {
    name: &'static str,
    skills: &'static [(&'static str, u8)],
    /// Points of effort it gets through on a working day.
    points_per_day: f64,
    /// Effort a task really takes, relative to its estimate.
    pace: f64,
}

const TEAM: [Agent; 3] = [
    Agent {
        name: "ada",
        skills: &[("rust", 4), ("web", 2)],
        points_per_day: 3.0,
        pace: 1.2,
    },
    Agent {
        name: "bob",
        skills: &[("rust", 2), ("docs", 3)],
        points_per_day: 2.0,
        pace: 1.8,
    },
    Agent {
        name: "cy",
        skills: &[("web", 4), ("docs", 2)],
        points_per_day: 2.0,
        pace: 1.3,
    },
];

/// What an agent is working on: the task, its lease, and the effort left.
struct Work {
    task: TaskRef,
    name: String,
    token: LeaseToken,
    left: f64,
    effort: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let first_monday = NaiveDate::from_ymd_opt(2026, 1, 5).expect("a date");
    let (clock, time) = Clock::manual(at(first_monday, 8));
    let store = Store::open_in_memory()?.with_clock(clock);
    for agent in &TEAM {
        store.upsert_agent(
            agent.name,
            &AgentUpdate {
                capabilities: Some(
                    agent
                        .skills
                        .iter()
                        .map(|(s, l)| (s.to_string(), *l))
                        .collect(),
                ),
                points_per_day: Some(agent.points_per_day),
                max_concurrent: Some(3),
                ..AgentUpdate::default()
            },
        )?;
    }
    store.create_workflow(
        backlog(),
        &CreateOptions {
            start: true,
            idempotency_key: None,
        },
    )?;

    let mut working: BTreeMap<&str, Option<Work>> = TEAM.iter().map(|a| (a.name, None)).collect();
    for sprint in 1..=3 {
        let start = first_monday + Duration::weeks(2 * (sprint - 1));
        let end = start + Duration::days(11);
        let name = format!("sprint-{sprint}");
        time.set(at(start, 8));
        let mut spec = SprintSpec::new(&name, start, end);
        spec.goal = Some(format!("release 0.{sprint}"));
        for agent in &TEAM {
            let mut member = MemberSpec::new(agent.name);
            // bob is away on the Friday of the first week of sprint two.
            if sprint == 2 && agent.name == "bob" {
                member = member.days_off([start + Duration::days(4)]);
            }
            spec.members.push(member);
        }
        let plan = store.start_sprint(&spec)?;
        println!(
            "\n=== {name}: {} to {} ===",
            plan.sprint.start, plan.sprint.end
        );
        println!(
            "capacity {:.1} points (focus factor {:.2}, {:?}); velocity {}; planned to {:.1}",
            plan.capacity.points,
            plan.capacity.focus_factor,
            plan.focus,
            plan.velocity
                .map_or("none yet".into(), |v| format!("{:.1}", v.mean)),
            plan.target
        );
        for (agent, (tasks, points)) in &plan.plan.allocation {
            println!("  {agent:<4} {points:>5.1} points: {}", tasks.join(", "));
        }
        for (task, why) in plan.plan.left_out.iter().take(4) {
            println!("  left out {task}: {why}");
        }
        if plan.plan.left_out.len() > 4 {
            println!("  ... and {} more left out", plan.plan.left_out.len() - 4);
        }
        for warning in &plan.warnings {
            println!("  warning: {warning}");
        }
        let mut allocation: BTreeMap<String, Vec<String>> = plan
            .plan
            .allocation
            .iter()
            .map(|(agent, (tasks, _))| (agent.clone(), tasks.clone()))
            .collect();

        println!("day         scope  done  remaining  ideal");
        let mut day = start;
        while day <= end {
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                simulate_day(&store, &time, day, sprint, &mut allocation, &mut working)?;
                let analytics = store.sprint_analytics(&name, &AnalyticsOptions::default())?;
                if let Some(point) = analytics.report.days.last() {
                    println!(
                        "{} {:>6.1} {:>5.1} {:>10.1} {:>6.1}",
                        point.date.format("%a %m-%d"),
                        point.scope,
                        point.completed,
                        point.remaining,
                        point.ideal
                    );
                }
                // Halfway, a Monte Carlo forecast of the finish from the throughput so far.
                if day == start + Duration::days(7)
                    && let Some(f) = &analytics.forecast
                {
                    println!(
                        "  forecast: {:.1} points left; done by {} (p50), {} (p85), {} (p95); {:.0}% chance by {}",
                        f.remaining,
                        f.p50,
                        f.p85,
                        f.p95,
                        f.probability_by_end * 100.0,
                        end
                    );
                }
            } else {
                renew(&store, &time, at(day, 6), &working)?;
                renew(&store, &time, at(day, 18), &working)?;
            }
            day += Duration::days(1);
        }

        time.set(at(end, 17) + Duration::minutes(30));
        let analytics = store.sprint_analytics(&name, &AnalyticsOptions::default())?;
        println!("{}", text_chart(&analytics.report, 6));
        let t = &analytics.report.totals;
        println!(
            "committed {:.1}, added {:.1}, re-estimated {:+.1}, completed {:.1}, progress {:.0}%, throughput {:.2} tasks/day",
            t.committed,
            t.added,
            t.reestimated,
            t.completed,
            t.progress * 100.0,
            analytics.report.flow.throughput_per_day
        );

        // Agents put down what they hold: the lease ends and the task goes back in line.
        for (agent, work) in working.iter_mut() {
            if let Some(work) = work.take() {
                store.update_task(&work.task, agent, work.token, &TaskUpdate::Release, None)?;
            }
        }
        let retro = store.sprint_retrospective(
            &name,
            &RetrospectiveOptions {
                close: true,
                next: None,
            },
        )?;
        println!(
            "retrospective: say/do {}, scope creep {}, {} tasks carried over",
            percent(retro.report.totals.say_do),
            percent(retro.report.totals.scope_creep),
            retro.carry_over.len()
        );
        if let Some(a) = &retro.accuracy {
            println!(
                "  estimates: work took {:.2}x the estimate, MdMRE {:.0}%, PRED(25) {:.0}%",
                a.ratio,
                a.mdmre * 100.0,
                a.pred25 * 100.0
            );
        }
        for c in &retro.contributions {
            println!(
                "  {:<4} {} tasks, {:.1} points, {} retries",
                c.agent, c.tasks, c.points, c.retries
            );
        }
        for finding in &retro.findings {
            println!("  - {}: {}", finding.observation, finding.action);
        }
    }
    Ok(())
}

/// One working day: each agent spends its daily effort, finishing tasks and claiming the next
/// from its allocation (or any ready task of the sprint it can do).
fn simulate_day(
    store: &Store,
    time: &ManualClock,
    day: NaiveDate,
    sprint: i64,
    allocation: &mut BTreeMap<String, Vec<String>>,
    working: &mut BTreeMap<&str, Option<Work>>,
) -> Result<(), Box<dyn std::error::Error>> {
    // In sprint two an urgent task arrives on the third day and one estimate is revised.
    if sprint == 2 && day.weekday() == Weekday::Wed && day.day() <= 21 {
        time.set(at(day, 9));
        store.add_to_sprint(
            &format!("sprint-{sprint}"),
            &[TaskRef::key("product", "hotfix")],
        )?;
        allocation
            .entry("ada".into())
            .or_default()
            .insert(0, "product/hotfix".into());
        // The last task of the largest allocation turns out bigger than thought.
        if let Some(last) = allocation
            .values()
            .max_by_key(|tasks| tasks.len())
            .and_then(|tasks| tasks.last())
        {
            let task: TaskRef = last.parse()?;
            let view = store.task(&task)?;
            if !view.state.is_terminal() {
                store.reestimate(&task, view.estimate + 3.0)?;
            }
        }
    }
    for agent in &TEAM {
        let mut budget = agent.points_per_day;
        let mut hour = 9.0;
        while budget > 1e-9 {
            let slot = working.get_mut(agent.name).expect("every agent has a slot");
            if slot.is_none() {
                time.set(at(day, 0) + Duration::minutes((hour * 60.0) as i64));
                *slot = next_task(store, agent, allocation)?;
            }
            let Some(work) = slot.as_mut() else { break };
            let spent = budget.min(work.left);
            work.left -= spent;
            budget -= spent;
            hour += 8.0 * spent / agent.points_per_day;
            time.set(at(day, 0) + Duration::minutes((hour * 60.0) as i64));
            if work.left <= 1e-9 {
                store.update_task(
                    &work.task,
                    agent.name,
                    work.token,
                    &TaskUpdate::Complete {
                        result: Some(format!("{} done", work.name)),
                        actual: Some((work.effort * 10.0).round() / 10.0),
                    },
                    None,
                )?;
                *slot = None;
            } else {
                store.update_task(
                    &work.task,
                    agent.name,
                    work.token,
                    &TaskUpdate::Heartbeat,
                    Some(Duration::days(1)),
                )?;
            }
        }
    }
    renew(store, time, at(day, 18), working)
}

/// At `when` the agents renew their leases for a day; they do it every evening, and twice a
/// day at weekends, so a lease never runs out while its task is still being worked on.
fn renew(
    store: &Store,
    time: &ManualClock,
    when: DateTime<Utc>,
    working: &BTreeMap<&str, Option<Work>>,
) -> Result<(), Box<dyn std::error::Error>> {
    time.set(when);
    for (agent, work) in working {
        if let Some(work) = work {
            store.update_task(
                &work.task,
                agent,
                work.token,
                &TaskUpdate::Heartbeat,
                Some(Duration::days(1)),
            )?;
        }
    }
    Ok(())
}

/// The first ready task of the agent's allocation, then of the sprint's other tasks.
fn next_task(
    store: &Store,
    agent: &Agent,
    allocation: &BTreeMap<String, Vec<String>>,
) -> Result<Option<Work>, Box<dyn std::error::Error>> {
    let own = allocation.get(agent.name).into_iter().flatten();
    let others = allocation
        .iter()
        .filter(|(name, _)| name.as_str() != agent.name)
        .flat_map(|(_, tasks)| tasks);
    for name in own.chain(others) {
        let task: TaskRef = name.parse()?;
        let view = store.task(&task)?;
        if view.state != TaskState::Ready {
            continue;
        }
        let request = ClaimRequest::new(agent.name)
            .task(task.clone())
            .lease(Duration::days(1));
        // A task this agent is not qualified for is simply left to another.
        let Some(claim) = store.claim(&request).ok().and_then(|c| c.claimed()) else {
            continue;
        };
        let effort = claim.task.estimate * agent.pace;
        return Ok(Some(Work {
            task,
            name: name.clone(),
            token: claim.token,
            left: effort,
            effort,
        }));
    }
    Ok(None)
}

/// The product backlog: 45 tasks of 1 to 8 points across three skills, some depending on an
/// earlier task, and an urgent `hotfix` that nobody planned.
fn backlog() -> WorkflowSpec {
    let mut spec = WorkflowSpec::new("product", Mode::Dag);
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let sizes = [1.0, 2.0, 3.0, 5.0, 8.0];
    let skills = [("rust", 3), ("web", 2), ("docs", 2), ("rust", 2)];
    for i in 1..=45 {
        let (skill, level) = skills[next(skills.len() as u64) as usize];
        let mut task = TaskSpec::new(format!("t{i:02}"), format!("Story {i}"))
            .estimate(sizes[next(sizes.len() as u64) as usize])
            .priority(90 - i)
            .skill(skill, level);
        if i > 3 && next(10) < 3 {
            task = task.after([format!("t{:02}", i - 1 - next(3) as i64)]);
        }
        spec = spec.task(task);
    }
    spec.task(
        TaskSpec::new("hotfix", "Urgent fix reported by a customer")
            .estimate(3.0)
            .priority(5)
            .skill("rust", 2),
    )
}

fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0).expect("a time"))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}%", x * 100.0))
}
