-- Schema 8 (PostgreSQL, as SQLite's schema_8.sql), for the reads of large workflows and long
-- logs.
--
-- Every attempt an agent ended, one row each, written in the transaction that ends
-- it, so agent performance reads the attempts of its window as one range instead of
-- scanning the event log. The rows say what the event log says (the log stays the source:
-- this table is rebuilt from it below), plus the task's estimate, kept current when a task is
-- re-estimated, and whether the task has skills to look up.
--
-- `outcome` is how the attempt ended: `succeeded`, `failed` (for good), `retried` (failed and
-- another attempt follows) or `expired` (the lease ran out). Releases, cancellations and
-- rebalancing end no attempt here, as they count for nothing in performance.
CREATE TABLE attempts (
    ended_at   BIGINT NOT NULL,
    -- The event that ended the attempt: the log's order of the attempts that end at once.
    seq        BIGINT NOT NULL,
    agent      TEXT COLLATE "C" NOT NULL,
    task       BIGINT NOT NULL,
    number     BIGINT NOT NULL,
    started_at BIGINT,
    outcome    TEXT NOT NULL,
    estimate   DOUBLE PRECISION NOT NULL,
    actual     DOUBLE PRECISION,
    has_skills BIGINT NOT NULL,
    -- A window is one range of the key.
    PRIMARY KEY (ended_at, seq)
);
-- A re-estimate, rare and made by a person, scans the table for its task's attempts rather
-- than have every attempt's end keep an index by task.

-- The attempts already in the log: an end is a task state event from `running` that names an
-- agent; its start is the task's latest start before it, when that start's attempt number is
-- the end's. The same statement as SQLite's.
INSERT INTO attempts (ended_at, seq, agent, task, number, started_at, outcome, estimate, actual, has_skills)
SELECT e.at, e.seq, e.agent, e.task, coalesce(e.attempt, 0),
       (SELECT CASE WHEN coalesce(s.attempt, 0) = coalesce(e.attempt, 0) THEN s.at END
          FROM events s
         WHERE s.task = e.task AND s.seq < e.seq AND s.kind = 'task_state'
           AND s.agent IS NOT NULL AND s.to_state = 'running'
         ORDER BY s.seq DESC LIMIT 1),
       CASE
           WHEN e.to_state = 'succeeded' THEN 'succeeded'
           WHEN e.to_state = 'waiting_retry' THEN 'retried'
           WHEN e.to_state = 'failed' AND e.detail = 'lease_expired' THEN 'expired'
           WHEN e.to_state = 'failed' THEN 'failed'
           ELSE 'expired'
       END,
       coalesce(t.estimate, 0.0), e.value, coalesce(t.has_skills, 0)
  FROM events e LEFT JOIN tasks t ON t.id = e.task
 WHERE e.kind = 'task_state' AND e.agent IS NOT NULL AND e.task IS NOT NULL
   AND e.from_state = 'running'
   AND (e.to_state IN ('succeeded', 'waiting_retry', 'failed')
        OR (e.to_state = 'ready' AND e.detail = 'lease_expired'));

-- Each workflow's tasks by state, kept by the transaction that changes a task's state or
-- estimate, so a status reads a few rows instead of every task. Each state's count is split
-- over eight rows by task id (`shard`): the transactions that move two tasks of one workflow
-- then update the same row one time in eight, not every time, which keeps the counts from
-- becoming the one row every writer of a busy workflow waits for. Points are millionths of a
-- point, so sums that go up and down many times stay exact. `done_millis` and `done_points`
-- are the time from start to finish and the points of the succeeded tasks that have both
-- times, the pace the forecast reads.
CREATE TABLE task_counts (
    workflow    BIGINT NOT NULL,
    state       TEXT    NOT NULL,
    shard       BIGINT NOT NULL,
    tasks       BIGINT NOT NULL,
    points      BIGINT NOT NULL,
    done_millis BIGINT NOT NULL,
    done_points BIGINT NOT NULL,
    PRIMARY KEY (workflow, state, shard)
);
INSERT INTO task_counts (workflow, state, shard, tasks, points, done_millis, done_points)
SELECT workflow, state, id % 8, count(*), sum(CAST(round(estimate * 1000000) AS BIGINT)),
       sum(CASE WHEN state = 'succeeded' AND finished_at > started_at
                THEN finished_at - started_at ELSE 0 END),
       sum(CASE WHEN state = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL
                THEN CAST(round(estimate * 1000000) AS BIGINT) ELSE 0 END)
  FROM tasks GROUP BY workflow, state, id % 8;

-- The tasks a status lists as blocked, in the order they were created, each state's first
-- ones without reading the others. Claims and completions do not touch it; a task enters or
-- leaves it when it waits, fails or is unblocked.
CREATE INDEX tasks_blocked ON tasks (workflow, state, id)
    WHERE state IN ('pending', 'waiting_retry', 'failed', 'upstream_failed', 'awaiting_approval');
