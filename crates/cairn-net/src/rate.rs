//! A token bucket: a rate per second with a burst of one second's worth.

use std::time::Instant;

/// A rate with a burst of one second's worth.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    pub per_second: u32,
    tokens: f64,
    filled: Instant,
}

impl TokenBucket {
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            tokens: f64::from(per_second),
            filled: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.per_second);
        let elapsed = now.saturating_duration_since(self.filled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.filled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
