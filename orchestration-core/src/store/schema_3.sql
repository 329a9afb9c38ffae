-- Schema version 3: collaboration. Messages fan out to one row per recipient at send time, so
-- each recipient acknowledges its own copy exactly once. Locks are advisory, held until
-- released by their owner or until they expire; waits record who waits for what, so that a
-- wait that would close a cycle can be refused.
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    sender    TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    workflow  INTEGER,
    body      TEXT    NOT NULL,
    acked_at  INTEGER
);

CREATE INDEX messages_inbox ON messages (recipient, id) WHERE acked_at IS NULL;

CREATE TABLE locks (
    resource    TEXT    NOT NULL,
    prefix      INTEGER NOT NULL,
    owner       TEXT    NOT NULL,
    mode        TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (resource, prefix, owner)
) WITHOUT ROWID;

CREATE TABLE lock_waits (
    waiter     TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    prefix     INTEGER NOT NULL,
    mode       TEXT    NOT NULL,
    since      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (waiter, resource, prefix)
) WITHOUT ROWID;
