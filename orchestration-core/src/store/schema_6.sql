-- Schema 6: who finishes a task. 'work' is claimed by agents; a 'gate' waits for a person to
-- approve or reject it once its dependencies are done.
ALTER TABLE tasks ADD COLUMN kind TEXT NOT NULL DEFAULT 'work';
