-- Schema version 1. Applied in one transaction; PRAGMA user_version records it.
-- Internal integer ids are used for joins; the UUIDs are what callers see.

CREATE TABLE workflows (
    id                  INTEGER PRIMARY KEY,
    uuid                BLOB    NOT NULL UNIQUE,
    name                TEXT    NOT NULL UNIQUE,
    description         TEXT,
    mode                TEXT    NOT NULL,
    on_failure          TEXT    NOT NULL,
    retry_initial_ms    INTEGER NOT NULL,
    retry_coefficient   REAL    NOT NULL,
    retry_max_ms        INTEGER NOT NULL,
    status              TEXT    NOT NULL,
    -- Tasks not in a terminal state; the workflow ends when it reaches zero.
    open_tasks          INTEGER NOT NULL,
    fail_fast_triggered INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    idempotency_key     TEXT UNIQUE,
    fingerprint         INTEGER NOT NULL
);

CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,
    uuid         BLOB    NOT NULL UNIQUE,
    workflow     INTEGER NOT NULL,
    key          TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    description  TEXT,
    estimate     REAL    NOT NULL,
    priority     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    -- Longest estimate-weighted path to the end of the workflow: the claim order's tie-break.
    b_level      REAL    NOT NULL,
    has_skills   INTEGER NOT NULL,
    is_leaf      INTEGER NOT NULL,
    -- Dependencies that do not allow this task to run yet.
    unmet        INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    reason       TEXT,
    attempt      INTEGER NOT NULL DEFAULT 0,
    agent        TEXT,
    -- Fencing token: moves on every claim and every end of a lease.
    token        INTEGER NOT NULL DEFAULT 0,
    -- Lease expiry while leased, next attempt while waiting to retry, NULL otherwise.
    deadline     INTEGER,
    ready_at     INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    note         TEXT,
    result       TEXT,
    error        TEXT,
    actual       REAL,
    UNIQUE (workflow, key)
);

-- The claim order within a workflow. Claims across workflows take the head of each running
-- workflow's order, so there is no global index to keep up on every claim.
CREATE INDEX tasks_ready_in_workflow ON tasks (workflow, priority DESC, b_level DESC, ready_at, id)
    WHERE state = 'ready';
CREATE INDEX tasks_deadline ON tasks (deadline) WHERE deadline IS NOT NULL;
-- Queries repeat this index's WHERE clause word for word, so SQLite can use it without
-- re-preparing the statement for each agent name.
CREATE INDEX tasks_leased ON tasks (agent, state) WHERE state IN ('assigned', 'running');

CREATE TABLE deps (
    task INTEGER NOT NULL,
    dep  INTEGER NOT NULL,
    PRIMARY KEY (task, dep)
) WITHOUT ROWID;

CREATE INDEX deps_dependents ON deps (dep, task);

CREATE TABLE task_skills (
    task  INTEGER NOT NULL,
    skill TEXT    NOT NULL,
    level INTEGER NOT NULL,
    PRIMARY KEY (task, skill)
) WITHOUT ROWID;

CREATE TABLE agents (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    status         TEXT    NOT NULL,
    max_concurrent INTEGER NOT NULL,
    points_per_day REAL    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_active_at INTEGER
);

CREATE TABLE agent_skills (
    agent INTEGER NOT NULL,
    skill TEXT    NOT NULL,
    level INTEGER NOT NULL,
    PRIMARY KEY (agent, skill)
) WITHOUT ROWID;

-- Append-only: every change, written in the transaction that makes it.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    workflow   INTEGER,
    task       INTEGER,
    agent      TEXT,
    from_state TEXT,
    to_state   TEXT,
    attempt    INTEGER,
    value      REAL,
    detail     TEXT
);
