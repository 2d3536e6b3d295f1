//! The memory that request bodies may hold at once ([`InflightBudget`],
//! charged as a body grows; see the ingest module's `# Backpressure`) and
//! how slowly a body may arrive ([`BodyPace`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::run::body::{BodyError, Budget};

/// The in-flight memory budget shared by every request (KiB permits).
#[derive(Debug, Clone)]
pub(super) struct InflightBudget {
    permits: Arc<Semaphore>,
    total_kib: usize,
}

impl InflightBudget {
    pub(super) fn new(mib: usize) -> Self {
        let total_kib = (mib.max(1) * 1024).min(Semaphore::MAX_PERMITS);
        InflightBudget {
            permits: Arc::new(Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// An empty reservation for one request.
    pub(super) fn reserve(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            permit: None,
        }
    }

    /// KiB held by requests now.
    #[cfg(test)]
    pub(super) fn held_kib(&self) -> usize {
        self.total_kib - self.permits.available_permits()
    }
}

/// What one request holds of the [`InflightBudget`]; released when dropped.
pub(super) struct Reservation {
    budget: InflightBudget,
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    fn kib(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

impl Budget for Reservation {
    fn hold(&mut self, bytes: usize) -> Result<(), BodyError> {
        let want = bytes.div_ceil(1024);
        let have = self.kib();
        if want > self.budget.total_kib {
            return Err(BodyError::OverBudget {
                limit_mib: self.budget.total_kib / 1024,
            });
        }
        if want > have {
            let more = u32::try_from(want - have).map_err(|_| BodyError::Busy)?;
            let extra = self
                .budget
                .permits
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| BodyError::Busy)?;
            match &mut self.permit {
                Some(permit) => permit.merge(extra),
                None => self.permit = Some(extra),
            }
        } else if want < have
            && let Some(permit) = &mut self.permit
        {
            drop(permit.split(have - want));
        }
        Ok(())
    }
}

/// How slowly a body may arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodyPace {
    /// Time allowed before the rate counts.
    pub timeout: Duration,
    /// Bytes per second that earn one more second.
    pub min_rate: u64,
}

/// How long after its headers a body that has delivered `received` bytes
/// may still take: `timeout + received / min_rate` seconds.
pub(super) fn body_deadline(pace: BodyPace, received: usize) -> Duration {
    let rate = pace.min_rate.max(1) as f64;
    pace.timeout + Duration::from_secs_f64(received as f64 / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_what_arrived() {
        let pace = BodyPace {
            timeout: Duration::from_secs(10),
            min_rate: 32 * 1024,
        };
        assert_eq!(body_deadline(pace, 0), Duration::from_secs(10));
        assert_eq!(body_deadline(pace, 64 * 1024), Duration::from_secs(12));
        // 16 MiB at the minimum rate: 512 s more.
        assert_eq!(body_deadline(pace, 16 << 20), Duration::from_secs(522));
        // A byte a second never earns much.
        assert!(body_deadline(pace, 20) < Duration::from_millis(10_001));
    }

    #[test]
    fn reservations_grow_shrink_and_release() {
        let budget = InflightBudget::new(1);
        let mut a = budget.reserve();
        let mut b = budget.reserve();
        a.hold(600 * 1024).unwrap();
        assert_eq!(budget.held_kib(), 600);
        assert_eq!(b.hold(500 * 1024).unwrap_err(), BodyError::Busy);
        assert_eq!(budget.held_kib(), 600, "a refused charge takes nothing");
        a.hold(100 * 1024 + 1).unwrap();
        assert_eq!(budget.held_kib(), 101);
        b.hold(500 * 1024).unwrap();
        assert_eq!(
            b.hold(2 << 20).unwrap_err(),
            BodyError::OverBudget { limit_mib: 1 }
        );
        drop(a);
        assert_eq!(budget.held_kib(), 500);
        drop(b);
        assert_eq!(budget.held_kib(), 0);
    }
}
