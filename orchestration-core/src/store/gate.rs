//! A person's decision on a gate: approve (it succeeds, its dependents move) or reject (it
//! fails for good, under the workflow's failure policy). The decision's rules are the pure
//! `workflow::decide_gate`; this loads the task and saves the step.

use crate::error::Result;
use crate::workflow::{GateDecision, decide_gate};

use super::Store;
use super::refs::{TaskRef, TaskRow, WorkflowRow};
use super::task::UpdateOutcome;
use super::transition::{apply, settle};
use super::view::view;

impl Store {
    /// Approves or rejects the gate `task`, which must be waiting for approval; `note` says
    /// why, and is kept as the gate's result (approved) or error (rejected). Both are in the
    /// event log as the task's change of state.
    pub fn decide_gate(
        &self,
        task: &TaskRef,
        decision: GateDecision,
        note: Option<&str>,
    ) -> Result<UpdateOutcome> {
        if let Some(note) = note {
            super::task::check_length("note", note, crate::limits::MAX_DESCRIPTION_LEN)?;
        }
        self.write(|tx, now| {
            let mut row = TaskRow::resolve(tx, task)?;
            let (event, change) = decide_gate(&row, decision, note)?;
            apply(tx, now, &mut row, event, change)?;
            let mut workflow = WorkflowRow::by_id(tx, row.workflow)?;
            let unblocked = settle(tx, now, &mut workflow, vec![(row.id, row.state)])?;
            let row = TaskRow::by_id(tx, row.id)?;
            Ok(UpdateOutcome {
                task: view(tx, &row)?,
                workflow_status: WorkflowRow::by_id(tx, row.workflow)?.status,
                unblocked,
            })
        })
    }
}
