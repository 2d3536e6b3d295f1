//! Which windows a service logged in lately, and whether that makes an
//! established rhythm: a `silence` rule only speaks for a service that had
//! events in at least `min_active` of the `windows` windows before the one
//! judged, so a service seen once (a sample file, a one-off job) never
//! raises a silence alert. Pure: window starts are passed in.

/// How many recent windows are remembered per service (the most
/// `rhythm_windows` may be).
pub const MAX_WINDOWS: u32 = 64;

/// The silence rule's idea of an established rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rhythm {
    /// Windows with events needed among the last `windows`.
    pub min_active: u32,
    /// How many windows back to look, 1 to [`MAX_WINDOWS`].
    pub windows: u32,
}

/// The windows a service had events in, relative to the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// Start of the latest window with events.
    last_window: i64,
    /// Bit `i`: events in the window starting `i` windows before `last_window`.
    recent: u64,
}

impl Activity {
    /// A service first seen in the window starting at `start`.
    pub fn new(start: i64) -> Self {
        Activity {
            last_window: start,
            recent: 1,
        }
    }

    /// Start of the latest window with events.
    pub fn last_window(&self) -> i64 {
        self.last_window
    }

    /// Notes events in the window starting at `start` (windows of `size_ms`).
    pub fn record(&mut self, start: i64, size_ms: i64) {
        let size_ms = size_ms.max(1);
        if start <= self.last_window {
            let back = (self.last_window - start) / size_ms;
            if back < i64::from(MAX_WINDOWS) {
                self.recent |= 1 << back;
            }
            return;
        }
        let shift = (start - self.last_window) / size_ms;
        self.recent = if shift >= i64::from(MAX_WINDOWS) {
            0
        } else {
            self.recent << shift
        };
        self.recent |= 1;
        self.last_window = start;
    }

    /// How many of the `windows` windows before the one starting at `start`
    /// had events.
    pub fn active_before(&self, start: i64, size_ms: i64, windows: u32) -> u32 {
        let size_ms = size_ms.max(1);
        // The window `j` before `start` is bit `j - ahead`.
        let ahead = (start - self.last_window) / size_ms;
        (1..=i64::from(windows.min(MAX_WINDOWS)))
            .map(|j| j - ahead)
            .filter(|bit| (0..i64::from(MAX_WINDOWS)).contains(bit))
            .filter(|bit| self.recent & (1 << bit) != 0)
            .count() as u32
    }

    /// Whether the service logged in at least `rhythm.min_active` of the
    /// `rhythm.windows` windows before the one starting at `start`.
    pub fn established(&self, start: i64, size_ms: i64, rhythm: Rhythm) -> bool {
        self.active_before(start, size_ms, rhythm.windows) >= rhythm.min_active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 300_000;
    const DEFAULT: Rhythm = Rhythm {
        min_active: 3,
        windows: 12,
    };

    fn seen_in(windows: &[i64]) -> Activity {
        let mut a = Activity::new(windows[0] * W);
        for w in &windows[1..] {
            a.record(w * W, W);
        }
        a
    }

    #[test]
    fn a_service_seen_once_has_no_rhythm() {
        let a = seen_in(&[100]);
        assert_eq!(a.active_before(101 * W, W, 12), 1);
        assert!(!a.established(101 * W, W, DEFAULT));
        assert!(!a.established(105 * W, W, DEFAULT));
    }

    #[test]
    fn three_windows_in_the_last_twelve_make_a_rhythm() {
        let a = seen_in(&[100, 101, 102]);
        assert!(a.established(103 * W, W, DEFAULT));
        // Gaps are fine while three stay within the last twelve.
        let a = seen_in(&[100, 104, 110]);
        assert!(a.established(111 * W, W, DEFAULT));
        assert!(a.established(112 * W, W, DEFAULT));
        // Window 100 falls out of the last twelve before 113.
        assert_eq!(a.active_before(113 * W, W, 12), 2);
        assert!(!a.established(113 * W, W, DEFAULT));
    }

    #[test]
    fn the_judged_window_itself_does_not_count() {
        let a = seen_in(&[100, 101, 102]);
        assert_eq!(a.active_before(102 * W, W, 12), 2);
        assert_eq!(a.active_before(103 * W, W, 12), 3);
    }

    #[test]
    fn late_windows_and_long_gaps_are_recorded() {
        // A window older than the latest (late data) still counts.
        let a = seen_in(&[102, 100, 101]);
        assert_eq!(a.active_before(103 * W, W, 12), 3);
        // A gap longer than the memory clears it.
        let a = seen_in(&[100, 101, 102, 300]);
        assert_eq!(a.active_before(301 * W, W, 64), 1);
        assert_eq!(a.last_window(), 300 * W);
    }

    #[test]
    fn a_custom_rhythm_is_honoured() {
        let once = Rhythm {
            min_active: 1,
            windows: 1,
        };
        let a = seen_in(&[100]);
        assert!(a.established(101 * W, W, once));
        assert!(!a.established(102 * W, W, once));
    }
}
