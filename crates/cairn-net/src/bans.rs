//! A ban list with a fixed capacity whose bans expire. Identities cost nothing, so a list
//! that grew with every banned identity could be grown without bound by cycling them: when
//! full, the ban that would end soonest makes room for the new one.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct BanList<K> {
    until: HashMap<K, Instant>,
    /// The same bans ordered by when they end, so the soonest is found at once.
    by_end: BTreeSet<(Instant, K)>,
    capacity: usize,
}

impl<K: Copy + Ord + Hash> BanList<K> {
    pub fn new(capacity: usize) -> Self {
        Self {
            until: HashMap::new(),
            by_end: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Bans `key` until `until` (a longer ban is kept if it has one). Returns the key whose
    /// ban was dropped to make room, if the list was full.
    pub fn insert(&mut self, key: K, until: Instant) -> Option<K> {
        if let Some(previous) = self.until.get(&key).copied() {
            if previous >= until {
                return None;
            }
            self.by_end.remove(&(previous, key));
            self.by_end.insert((until, key));
            self.until.insert(key, until);
            return None;
        }
        let dropped = if self.until.len() >= self.capacity {
            self.by_end.pop_first().map(|(_, soonest)| {
                self.until.remove(&soonest);
                soonest
            })
        } else {
            None
        };
        self.until.insert(key, until);
        self.by_end.insert((until, key));
        dropped
    }

    pub fn contains(&self, key: &K) -> bool {
        self.until.contains_key(key)
    }

    /// Lifts every ban that has ended by `now`, and returns the keys it lifted.
    pub fn expire(&mut self, now: Instant) -> Vec<K> {
        let mut lifted = Vec::new();
        while let Some(&(end, key)) = self.by_end.first() {
            if end > now {
                break;
            }
            self.by_end.pop_first();
            self.until.remove(&key);
            lifted.push(key);
        }
        lifted
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.until.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cycling_ten_thousand_identities_keeps_the_list_at_its_capacity() {
        let mut bans = BanList::new(1_000);
        let start = Instant::now();
        let mut dropped = 0;
        for identity in 0..10_000u32 {
            let until = start + Duration::from_secs(600) + Duration::from_millis(identity.into());
            if let Some(soonest) = bans.insert(identity, until) {
                dropped += 1;
                assert!(
                    soonest < identity,
                    "the ban ending soonest makes room, not the new one"
                );
            }
            assert!(bans.len() <= 1_000);
        }
        assert_eq!(bans.len(), 1_000);
        assert_eq!(bans.by_end.len(), 1_000, "both views hold the same bans");
        assert_eq!(dropped, 9_000);
        assert!(bans.contains(&9_999) && !bans.contains(&0));
    }

    #[test]
    fn bans_end_in_order_and_a_longer_ban_stands() {
        let mut bans = BanList::new(10);
        let now = Instant::now();
        bans.insert('a', now + Duration::from_secs(1));
        bans.insert('b', now + Duration::from_secs(5));
        bans.insert('a', now + Duration::from_secs(10));
        bans.insert('b', now + Duration::from_secs(2));
        assert_eq!(
            bans.expire(now + Duration::from_secs(3)),
            Vec::<char>::new()
        );
        assert_eq!(bans.expire(now + Duration::from_secs(6)), vec!['b']);
        assert_eq!(bans.expire(now + Duration::from_secs(10)), vec!['a']);
        assert_eq!(bans.len(), 0);
    }
}
