//! A fetch budget shared by many key sources: at most N documents (discovery or JWKS) fetched in
//! any 60-second window. Tenant issuers created from a template share one, so a flood of tokens
//! naming invented or rarely seen tenants cannot make jwtgate fetch more than N documents a
//! minute, however many concrete issuers it names.

use crate::clock::Clock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The window the budget counts over.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(60);

/// Default documents per minute for all tenants of all issuer templates together.
pub const DEFAULT_TENANT_FETCHES_PER_MINUTE: usize = 60;

/// At most `per_minute` fetches in any [`BUDGET_WINDOW`] (a sliding window of the last fetches'
/// times, so the bound holds for every window, not only aligned ones).
pub struct FetchBudget {
    per_minute: usize,
    clock: Arc<dyn Clock>,
    taken: Mutex<VecDeque<Duration>>,
}

impl std::fmt::Debug for FetchBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchBudget")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl FetchBudget {
    /// A budget of `per_minute` fetches (0 allows none), timed by `clock`.
    pub fn new(per_minute: usize, clock: Arc<dyn Clock>) -> FetchBudget {
        FetchBudget {
            per_minute,
            clock,
            taken: Mutex::new(VecDeque::with_capacity(per_minute.min(4096))),
        }
    }

    /// Fetches allowed per minute.
    pub fn per_minute(&self) -> usize {
        self.per_minute
    }

    /// Takes one fetch from the budget; false when `per_minute` were taken in the last minute.
    pub fn try_take(&self) -> bool {
        let now = self.clock.elapsed();
        let mut taken = match self.taken.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        while taken
            .front()
            .is_some_and(|at| now.saturating_sub(*at) >= BUDGET_WINDOW)
        {
            taken.pop_front();
        }
        if taken.len() >= self.per_minute {
            return false;
        }
        taken.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn at_most_n_in_any_minute() {
        let clock = ManualClock::new();
        let budget = FetchBudget::new(3, Arc::new(clock.clone()));
        assert!(budget.try_take());
        clock.advance(Duration::from_secs(30));
        assert!(budget.try_take());
        assert!(budget.try_take());
        assert!(!budget.try_take());
        clock.advance(Duration::from_secs(29));
        assert!(!budget.try_take(), "the first fetch is 59 s old");
        clock.advance(Duration::from_secs(1));
        assert!(budget.try_take(), "the first fetch left the window");
        assert!(!budget.try_take());
        assert!(!FetchBudget::new(0, Arc::new(clock)).try_take());
    }
}
