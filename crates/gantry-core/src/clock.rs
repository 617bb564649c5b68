//! Time as reconcilers see it: injected, so their rules are tested on a fake clock.

use std::sync::Mutex;

/// Seconds since the Unix epoch, with milliseconds, as ECS timestamps are.
pub trait Clock: Send + Sync {
    fn now(&self) -> f64;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_millis() as f64) / 1000.0
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct FakeClock(Mutex<f64>);

impl FakeClock {
    pub fn at(t: f64) -> Self {
        FakeClock(Mutex::new(t))
    }

    pub fn advance(&self, secs: f64) {
        if let Ok(mut t) = self.0.lock() {
            *t += secs;
        }
    }

    pub fn set(&self, t: f64) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> f64 {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clocks_move_when_told() {
        let c = FakeClock::at(100.0);
        c.advance(2.5);
        assert_eq!(c.now(), 102.5);
        c.set(7.0);
        assert_eq!(c.now(), 7.0);
        assert!(SystemClock.now() > 1.6e9);
    }
}
