//! What this node lets others fill its disk with. Identities cost nothing, so a quota per
//! organisation alone would give every fresh identity a fresh quota. This module owns:
//! - the budgets for *strangers* (organisations neither this node's own nor followed):
//!   entries and bytes kept from each, and bytes from all of them together;
//! - the disk ceiling: intake from other organisations stops, with a reason to show, while
//!   the store's files pass their limit or the disk's free space falls below its floor.
//!   Nothing stored is ever dropped for it, and the node's own entries still go in;
//! - the bound on the record of refused entries (tombstones): past it, the oldest go.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_core::OrgId;

use crate::orgs::OrgIndex;
use crate::{Error, Store, layout, lock};

/// How often the disk is looked at; intake in between goes by the last look.
const DISK_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The limits (set from [`crate::Config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Entries and frame bytes kept from one stranger organisation.
    pub stranger_entries: u64,
    pub stranger_bytes: u64,
    /// Frame bytes kept from all strangers together.
    pub strangers_bytes: u64,
    /// Intake stops while the store's files take more than this...
    pub max_disk_bytes: u64,
    /// ...or the disk has less than this free.
    pub min_free_disk_bytes: u64,
    /// Refused entries remembered, so sync does not fetch them again; the oldest go first.
    pub max_refused: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            stranger_entries: 100,
            stranger_bytes: 1_000_000,
            strangers_bytes: 100_000_000,
            max_disk_bytes: 20_000_000_000,
            min_free_disk_bytes: 1_000_000_000,
            max_refused: 200_000,
        }
    }
}

impl Budgets {
    /// No budget for strangers, no disk ceiling and no bound on the refused record: for
    /// tools and tests that fill a store with other organisations' entries on purpose.
    pub const fn unlimited() -> Self {
        Self {
            stranger_entries: u64::MAX,
            stranger_bytes: u64::MAX,
            strangers_bytes: u64::MAX,
            max_disk_bytes: u64::MAX,
            min_free_disk_bytes: 0,
            max_refused: u64::MAX,
        }
    }
}

/// The disk as last looked at.
#[derive(Debug, Default)]
pub(crate) struct DiskState {
    checked: Option<Instant>,
    /// Why intake is stopped, if it is.
    full: Option<String>,
}

/// What the budgets need to remember beside the policy.
#[derive(Debug, Default)]
pub(crate) struct BudgetState {
    pub budgets: Budgets,
    /// The node's own organisation, never a stranger (set by the node at start).
    pub own: Option<OrgId>,
    /// Frame bytes held from all strangers; `None` until worked out again (after a change
    /// of who is followed, or of the index of organisations).
    pub strangers_bytes: Option<u64>,
}

impl BudgetState {
    pub fn is_stranger(&self, policy: &crate::Policy, org: &OrgId) -> bool {
        is_stranger(self.own, policy, org)
    }
}

/// Whether `org` is neither the node's own (`own`) nor followed.
fn is_stranger(own: Option<OrgId>, policy: &crate::Policy, org: &OrgId) -> bool {
    own != Some(*org) && !policy.followed.contains(org)
}

/// Why a stranger's entry does not fit, if it does not.
pub(crate) fn stranger_refusal(
    budget: &mut BudgetState,
    policy: &crate::Policy,
    orgs: &OrgIndex,
    org: &OrgId,
    frame_len: u64,
) -> Option<cairn_core::Error> {
    if !budget.is_stranger(policy, org) {
        return None;
    }
    let budgets = budget.budgets;
    let (entries, bytes) = orgs
        .get(org)
        .map_or((0, 0), |stats| (stats.count, stats.bytes));
    if entries >= budgets.stranger_entries
        || bytes.saturating_add(frame_len) > budgets.stranger_bytes
    {
        return Some(cairn_core::Error::StrangerBudget {
            org: *org,
            entries: budgets.stranger_entries,
            bytes: budgets.stranger_bytes,
        });
    }
    let own = budget.own;
    let all = *budget.strangers_bytes.get_or_insert_with(|| {
        orgs.iter()
            .filter(|(org, _)| is_stranger(own, policy, org))
            .map(|(_, stats)| stats.bytes)
            .sum()
    });
    if all.saturating_add(frame_len) > budgets.strangers_bytes {
        return Some(cairn_core::Error::StrangersFull {
            bytes: budgets.strangers_bytes,
        });
    }
    None
}

impl Store {
    /// Sets the node's own organisation: its entries are never a stranger's, and never
    /// refused for want of room.
    pub fn set_own_org(&self, org: OrgId) {
        let mut state = lock(&self.policy);
        state.budget.own = Some(org);
        state.budget.strangers_bytes = None;
    }

    pub fn budgets(&self) -> Budgets {
        lock(&self.policy).budget.budgets
    }

    /// Why intake from other organisations is stopped, if it is (looking at the disk again
    /// if the last look is old).
    pub fn intake_stopped(&self) -> Option<String> {
        self.disk_refusal().err()
    }

    /// `Err(reason)` while the disk ceiling stops intake.
    pub(crate) fn disk_refusal(&self) -> Result<(), String> {
        let mut disk = lock(&self.disk);
        let now = Instant::now();
        if disk
            .checked
            .is_none_or(|checked| now.duration_since(checked) >= DISK_CHECK_INTERVAL)
        {
            let was_full = disk.full.is_some();
            disk.full = self.look_at_disk();
            disk.checked = Some(now);
            match (&disk.full, was_full) {
                (Some(reason), false) => tracing::warn!("intake stopped: {reason}"),
                (None, true) => tracing::info!("intake resumed: the disk has room again"),
                _ => {}
            }
        }
        disk.full.clone().map_or(Ok(()), Err)
    }

    fn look_at_disk(&self) -> Option<String> {
        let budgets = self.budgets();
        let used = self.db.size_on_disk().unwrap_or(0) + self.frames.len();
        if used >= budgets.max_disk_bytes {
            return Some(format!(
                "the store takes {} MB, its ceiling is {} MB; raise [store] max_disk_mb or remove organisations' entries (`cairn block`)",
                used / 1_000_000,
                budgets.max_disk_bytes / 1_000_000
            ));
        }
        let free = free_disk_bytes(&self.path)?;
        (free < budgets.min_free_disk_bytes).then(|| {
            format!(
                "the disk holding {} has {} MB free, below the floor of {} MB; free some space or lower [store] min_free_disk_mb",
                self.path.display(),
                free / 1_000_000,
                budgets.min_free_disk_bytes / 1_000_000
            )
        })
    }

    /// Counts one more refused entry kept in the record; past the bound, forgets the oldest.
    pub(crate) fn count_refused(&self, added: u64) -> Result<(), Error> {
        let max = self.budgets().max_refused;
        let held = match self.refused.load(Ordering::Relaxed) {
            u64::MAX => self.entries.scan_prefix([layout::TOMBSTONE]).count() as u64,
            held => held + added,
        };
        let mut held = held;
        if held > max {
            // The oldest first within each space; spaces in name order.
            let excess = held - max;
            let mut removed = 0;
            for key in self.entries.scan_prefix([layout::TOMBSTONE]).keys() {
                if removed >= excess {
                    break;
                }
                self.entries.remove(key?)?;
                removed += 1;
            }
            held -= removed;
        }
        self.refused.store(held, Ordering::Relaxed);
        Ok(())
    }
}

/// Refused entries held, as the store counts them (`u64::MAX`: not counted yet).
pub(crate) fn refused_counter() -> AtomicU64 {
    AtomicU64::new(u64::MAX)
}

/// Free bytes on the disk that holds `path`, for an unprivileged writer; `None` if the
/// system will not say.
fn free_disk_bytes(path: &Path) -> Option<u64> {
    let stats = rustix::fs::statvfs(path).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}
