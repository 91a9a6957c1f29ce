//! Sliding windows of event counts, in ten buckets.

pub(super) const BUCKETS: usize = 10;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    slot: i64,
    count: u64,
    first_index: u64,
}

/// Events of one key in the last `BUCKETS` slots.
#[derive(Clone, Debug, Default)]
pub(super) struct Window {
    buckets: [Bucket; BUCKETS],
}

impl Window {
    /// Adds `n` events at `slot`; returns the events within the window and the first one's index.
    pub(super) fn add(&mut self, slot: i64, n: u64, index: u64) -> (u64, u64) {
        let at = usize::try_from(slot.rem_euclid(BUCKETS as i64)).unwrap_or(0);
        let bucket = &mut self.buckets[at];
        // A bucket last used a whole window ago starts again; an entry stamped a little earlier
        // than the newest (times are not strictly ordered) joins the newer bucket.
        if bucket.slot < slot || bucket.count == 0 {
            *bucket = Bucket {
                slot,
                count: 0,
                first_index: index,
            };
        }
        bucket.count = bucket.count.saturating_add(n);
        self.live(slot)
    }

    fn live(&self, now_slot: i64) -> (u64, u64) {
        self.buckets
            .iter()
            .filter(|b| b.count > 0 && b.slot > now_slot - BUCKETS as i64)
            .fold((0, u64::MAX), |(sum, first), b| {
                (sum.saturating_add(b.count), first.min(b.first_index))
            })
    }

    /// The newest slot with events; None once counting started afresh.
    pub(super) fn newest_slot(&self) -> Option<i64> {
        self.buckets
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| b.slot)
            .max()
    }
}
