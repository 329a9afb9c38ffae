//! The claim order: which of several ready tasks goes first. Claims, the ready list of a
//! workflow report and batch delegation all follow it; the store's SQL says the same order in
//! `store::sql::CLAIM_ORDER`.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

/// A ready task's place in the claim order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClaimRank {
    /// 0 to 100; higher goes first.
    pub(crate) priority: i64,
    /// How well the claiming agent's skills fit the task (1 without skills to fit); a better
    /// fit goes first among tasks of one priority.
    pub(crate) fit: f64,
    /// The longest estimate-weighted path to the end; longer goes first.
    pub(crate) b_level: f64,
    /// When the task became ready; the longest wait goes first.
    pub(crate) ready_at: Option<DateTime<Utc>>,
    /// Creation order, the last tie-break; earlier goes first.
    pub(crate) created: i64,
}

impl ClaimRank {
    /// `Less` when `self` goes before `other`.
    pub(crate) fn cmp(&self, other: &ClaimRank) -> Ordering {
        other
            .priority
            .cmp(&self.priority)
            .then(other.fit.total_cmp(&self.fit))
            .then(other.b_level.total_cmp(&self.b_level))
            .then(self.ready_at.cmp(&other.ready_at))
            .then(self.created.cmp(&other.created))
    }

    /// Whether `self` goes before `other`.
    pub(crate) fn before(&self, other: &ClaimRank) -> bool {
        self.cmp(other).is_lt()
    }
}
