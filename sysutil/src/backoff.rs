//! Exponential retry delays with one warning per outage and one line when
//! it ends.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);

pub struct Backoff {
    max: Duration,
    next: Duration,
    failing: Option<&'static str>,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff {
            max,
            next: FIRST,
            failing: None,
        }
    }

    /// `what` worked: logs the end of its outage, if any, and starts the
    /// delays over.
    pub fn reset(&mut self, what: &'static str) {
        if self.failing == Some(what) {
            log::info!("{what} is reachable again");
            self.failing = None;
        }
        self.next = FIRST;
    }

    /// Records a failure (warning once per outage) and returns how long to
    /// wait before the next try.
    pub fn fail(&mut self, what: &'static str, err: &str) -> Duration {
        if self.failing != Some(what) {
            log::warn!(
                "{what} unavailable, retrying with backoff up to {:?}: {err}",
                self.max
            );
            self.failing = Some(what);
        } else {
            log::debug!("{what} still unavailable: {err}");
        }
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let delays: Vec<_> = (0..5)
            .map(|_| b.fail("store", "down").as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        b.reset("store");
        assert_eq!(b.fail("store", "down"), FIRST);
    }
}
