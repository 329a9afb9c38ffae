-- Schema 5: a task's events by task, so that a task's whole history (its attempts and notes)
-- is read without scanning the log.
CREATE INDEX events_by_task ON events (task, seq) WHERE task IS NOT NULL;
