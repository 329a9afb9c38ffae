-- Schema version 4: sprints. A sprint's tasks are rows of sprint_tasks; a task is in at most one
-- sprint that is not closed (the partial unique index), and the rows of closed sprints stay as
-- their history. Scope changes after the start are events with the sprint's id, so every report
-- can be rebuilt from the log and these rows.
CREATE TABLE sprints (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    goal         TEXT,
    start_date   TEXT    NOT NULL,
    end_date     TEXT    NOT NULL,
    -- Working weekdays as a bit set, Monday = 1.
    work_week    INTEGER NOT NULL,
    -- Names of the workflows planning chooses from, comma-separated; empty for all.
    workflows    TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL,
    -- The focus factor given or learnt when the sprint started.
    focus_factor REAL,
    -- Available person-days × points per day, before the focus factor: what the focus factor of
    -- later sprints is learnt against.
    raw_capacity REAL,
    capacity     REAL,
    -- Jira's commitment: the points in the sprint when it started.
    committed    REAL,
    -- Points done when it closed, and done per working day (comma-separated), for velocity and
    -- the throughput history of forecasts.
    completed    REAL,
    daily_done   TEXT,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    closed_at    INTEGER
);

CREATE TABLE sprint_members (
    sprint       INTEGER NOT NULL,
    agent        TEXT    NOT NULL,
    availability REAL    NOT NULL,
    -- Dates off, comma-separated ISO dates.
    days_off     TEXT    NOT NULL,
    PRIMARY KEY (sprint, agent)
) WITHOUT ROWID;

-- One row per stay of a task in a sprint: a task removed and added again has two.
CREATE TABLE sprint_tasks (
    id            INTEGER PRIMARY KEY,
    sprint        INTEGER NOT NULL,
    task          INTEGER NOT NULL,
    added_at      INTEGER NOT NULL,
    removed_at    INTEGER,
    -- The estimate when the task joined (or when the sprint started, for committed tasks).
    estimate      REAL    NOT NULL,
    in_commitment INTEGER NOT NULL DEFAULT 0,
    -- The member planning allocated it to, if any.
    planned_for   TEXT,
    -- 1 while the sprint is not closed and the task was not removed.
    current       INTEGER NOT NULL DEFAULT 1,
    carried_over  INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX sprint_tasks_by_sprint ON sprint_tasks (sprint);
CREATE INDEX sprint_tasks_by_task ON sprint_tasks (task);
CREATE UNIQUE INDEX sprint_tasks_current ON sprint_tasks (task) WHERE current = 1;

ALTER TABLE events ADD COLUMN sprint INTEGER;
CREATE INDEX events_by_sprint ON events (sprint, seq) WHERE sprint IS NOT NULL;

-- Who finished each task and when its first attempt started: the task row forgets its agent when
-- the lease ends, and keeps only the latest attempt's start.
ALTER TABLE tasks ADD COLUMN done_by TEXT;
ALTER TABLE tasks ADD COLUMN first_started_at INTEGER;

UPDATE tasks SET first_started_at = s.at
FROM (SELECT task, min(at) AS at FROM events
      WHERE kind = 'task_state' AND to_state = 'running' GROUP BY task) AS s
WHERE s.task = tasks.id;

UPDATE tasks SET done_by = s.agent
FROM (SELECT task, agent, max(seq) FROM events
      WHERE kind = 'task_state' AND to_state = 'succeeded' GROUP BY task) AS s
WHERE s.task = tasks.id AND tasks.state = 'succeeded';
