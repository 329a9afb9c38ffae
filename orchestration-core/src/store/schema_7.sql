-- Schema 7: the claim order over every workflow's ready tasks, so that a claim naming no
-- workflow walks one index instead of probing the head of each running workflow's order. It
-- ends with the task's workflow and whether it needs skills, so a claim skips the ready tasks
-- of workflows that are not running (only a paused one keeps them) without reading their rows.
CREATE INDEX tasks_ready_anywhere ON tasks (priority DESC, b_level DESC, ready_at, id, workflow, has_skills)
    WHERE state = 'ready';
