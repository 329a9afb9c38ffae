-- Schema version 2: per-agent aggregates for scoring, kept in the transaction of each attempt's
-- end. Backfilled from the event log; the log ratios are backfilled by the migration code,
-- since this SQLite build has no ln().
CREATE TABLE agent_stats (
    agent           TEXT    PRIMARY KEY,
    succeeded       INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    log_ratio_sum   REAL    NOT NULL DEFAULT 0,
    log_ratio_count INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO agent_stats (agent, succeeded, attempts)
SELECT agent, sum(to_state = 'succeeded'), count(*)
FROM events
WHERE kind = 'task_state' AND from_state = 'running' AND agent IS NOT NULL
  AND (to_state IN ('succeeded', 'failed', 'waiting_retry')
       OR (to_state = 'ready' AND detail = 'lease_expired'))
GROUP BY agent;
