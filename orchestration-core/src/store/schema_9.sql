-- Schema 9, for agent performance over windows of many attempts.
--
-- Per agent, skill and bucket of time, what the attempts that ended in it add up to, kept by
-- the transaction that ends each attempt and moved by a re-estimate, so a window reads a few
-- rows per agent and day instead of every attempt. `span` is the bucket's length in
-- milliseconds (an hour or a day) and `bucket` its start: it holds the attempts that ended in
-- `(bucket, bucket + span]`. `skill` is empty for all of the agent's attempts, else a skill
-- their tasks require. The sums are exact: attempts, the succeeded, the succeeded at the first
-- attempt, retries, expired leases, the points of the succeeded in millionths, and, of the
-- succeeded that reported an effort, how many and the sum of `ln(actual / estimate)` in
-- billionths. `cycle` (cycle times in hours) and `errors` (`|actual - estimate| / actual`) are
-- sketches, log-scale bins within 1% of the values they hold, encoded by the code
-- (`agent::summary::Sketch`), which also fills the table from `attempts` after this script.
CREATE TABLE agent_summaries (
    span       INTEGER NOT NULL,
    bucket     INTEGER NOT NULL,
    agent      TEXT    NOT NULL,
    skill      TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    succeeded  INTEGER NOT NULL,
    first_pass INTEGER NOT NULL,
    retries    INTEGER NOT NULL,
    expired    INTEGER NOT NULL,
    points     INTEGER NOT NULL,
    ratios     INTEGER NOT NULL,
    log_ratio  INTEGER NOT NULL,
    cycle      BLOB    NOT NULL,
    errors     BLOB    NOT NULL,
    -- A window reads one range of the key per span and edge.
    PRIMARY KEY (span, bucket, agent, skill)
) WITHOUT ROWID;
