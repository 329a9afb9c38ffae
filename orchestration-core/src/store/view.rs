//! The public view of a task, with what it depends on and requires loaded from its rows.

use std::collections::BTreeMap;

use super::db::Tx;

use crate::error::Result;
pub(crate) use crate::workflow::TaskView;
pub(crate) use crate::workflow::view_with;

use super::refs::{TaskRow, task_skills};

/// The public view of a task row.
pub(crate) fn view(conn: &Tx<'_>, row: &TaskRow) -> Result<TaskView> {
    let depends_on = conn
        .prepare_cached(
            "SELECT key FROM tasks WHERE id IN (SELECT dep FROM deps WHERE task = ?1) ORDER BY id",
        )?
        .query_map([row.id], |r| r.get(0))?
        .collect::<Result<_>>()?;
    let skills = if row.has_skills {
        task_skills(conn, row.id)?
    } else {
        BTreeMap::new()
    };
    Ok(view_with(row, skills, depends_on))
}
