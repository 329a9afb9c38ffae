-- Schema 9 (PostgreSQL, as SQLite's schema_9.sql), for agent performance over windows of many attempts.
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
    span       BIGINT NOT NULL,
    bucket     BIGINT NOT NULL,
    agent      TEXT COLLATE "C" NOT NULL,
    skill      TEXT COLLATE "C" NOT NULL,
    attempts   BIGINT NOT NULL,
    succeeded  BIGINT NOT NULL,
    first_pass BIGINT NOT NULL,
    retries    BIGINT NOT NULL,
    expired    BIGINT NOT NULL,
    points     BIGINT NOT NULL,
    ratios     BIGINT NOT NULL,
    log_ratio  BIGINT NOT NULL,
    cycle      BYTEA NOT NULL,
    errors     BYTEA NOT NULL,
    -- A window reads one range of the key per span and edge.
    PRIMARY KEY (span, bucket, agent, skill)
);
