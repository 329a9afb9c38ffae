//! Identifiers: UUID v7 newtypes for workflows and tasks, and the fencing token of a lease.
//!
//! UUID v7 ids sort by creation time, which keeps B-tree inserts local and makes ids readable in
//! logs in the order things happened.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id as a UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }

            pub(crate) fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// The id of a workflow.
    WorkflowId
);
uuid_id!(
    /// The id of a task; unique across workflows.
    TaskId
);

impl TaskId {
    /// `count` fresh ids in increasing order from one random draw: the UUID v7 of now, with its
    /// random bits counted up. One draw instead of one per task keeps a 100,000-task create from
    /// spending a tenth of its time in the kernel's random source, and increasing ids make the
    /// id index grow at its end.
    pub(crate) fn batch(count: usize) -> impl Iterator<Item = TaskId> {
        const LOW_62: u64 = (1 << 62) - 1;
        let base = Uuid::now_v7().into_bytes();
        let high: [u8; 8] = base[..8].try_into().unwrap_or_default();
        let low = u64::from_be_bytes(base[8..].try_into().unwrap_or_default());
        // Keep the variant bits (the top two of the low half) and count in the other 62.
        let variant = low & !LOW_62;
        (0..count as u64).map(move |i| {
            let counted = variant | (low.wrapping_add(i) & LOW_62);
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&high);
            bytes[8..].copy_from_slice(&counted.to_be_bytes());
            TaskId(Uuid::from_bytes(bytes))
        })
    }
}

/// The fencing token of a claim: it grows with every claim of the same task, so a report that
/// carries an older token than the task's current one comes from a lease that has been lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseToken(pub u64);

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
