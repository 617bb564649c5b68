//! Targets' health, as ELB reports it: every registered target starts `initial`, becomes
//! `healthy` after the group's healthy threshold of passed checks in a row and `unhealthy`
//! after its unhealthy threshold of failed ones; a deregistered target is `draining` until the
//! group's deregistration delay has passed. Pure: the checker feeds it outcomes, the proxy and
//! DescribeTargetHealth read it.

use crate::model::Target;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
            State::Draining => "draining",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// An HTTP answer with a code the matcher does not accept.
    Code(u16),
    Timeout,
    /// No connection, or a broken answer.
    Failed,
}

/// One target's health in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub state: State,
    passed: u32,
    failed: u32,
    last: Option<Outcome>,
    /// When a draining target leaves.
    pub until: Option<Instant>,
    /// When it was last checked.
    pub checked: Option<Instant>,
    /// When it last became healthy (slow start counts from here).
    pub healthy_since: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: State::Initial,
            passed: 0,
            failed: 0,
            last: None,
            until: None,
            checked: None,
            healthy_since: None,
        }
    }
}

impl Health {
    /// Counts a check's outcome against the thresholds.
    pub fn observe(&mut self, outcome: Outcome, healthy: u32, unhealthy: u32, at: Instant) {
        self.checked = Some(at);
        if self.state == State::Draining {
            return;
        }
        if outcome == Outcome::Passed {
            self.passed += 1;
            self.failed = 0;
            if self.passed >= healthy.max(1) && self.state != State::Healthy {
                self.state = State::Healthy;
                self.healthy_since = Some(at);
            }
        } else {
            self.failed += 1;
            self.passed = 0;
            if self.failed >= unhealthy.max(1) {
                self.state = State::Unhealthy;
            }
        }
        self.last = Some(outcome);
    }

    /// ELB's reason code and description for the state.
    pub fn reason(&self) -> Option<(&'static str, String)> {
        match (self.state, &self.last) {
            (State::Healthy, _) => None,
            (State::Draining, _) => Some((
                "Target.DeregistrationInProgress",
                "Target deregistration is in progress".into(),
            )),
            (State::Initial, _) => Some((
                "Elb.InitialHealthChecking",
                "Initial health checks in progress".into(),
            )),
            (State::Unhealthy, Some(Outcome::Code(c))) => Some((
                "Target.ResponseCodeMismatch",
                format!("Health checks failed with these codes: [{c}]"),
            )),
            (State::Unhealthy, Some(Outcome::Timeout)) => {
                Some(("Target.Timeout", "Request timed out".into()))
            }
            (State::Unhealthy, _) => {
                Some(("Target.FailedHealthChecks", "Health checks failed".into()))
            }
        }
    }
}

/// Whether `code` is one the matcher (`200`, `200,202`, `200-299`) accepts.
pub fn code_matches(matcher: &str, code: u16) -> bool {
    matcher.split(',').any(|part| {
        let part = part.trim();
        match part.split_once('-') {
            Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                (Ok(lo), Ok(hi)) => (lo..=hi).contains(&code),
                _ => false,
            },
            None => part.parse::<u16>() == Ok(code),
        }
    })
}

/// Whether a matcher is well formed (codes 200 to 499).
pub fn valid_matcher(matcher: &str) -> bool {
    !matcher.trim().is_empty()
        && matcher.split(',').all(|part| {
            let ok = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .is_ok_and(|c| (200..=499).contains(&c))
            };
            match part.split_once('-') {
                Some((lo, hi)) => ok(lo) && ok(hi),
                None => ok(part),
            }
        })
}

/// Every target's health, by group ARN.
#[derive(Debug, Default)]
pub struct HealthTable {
    groups: Mutex<HashMap<String, HashMap<Target, Health>>>,
}

impl HealthTable {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, HashMap<Target, Health>>) -> T) -> T {
        match self.groups.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Brings a group's entries in line with its registered targets: new ones start
    /// `initial`; ones no longer registered start draining for `delay` (or go, when they
    /// were draining already and their time is up).
    pub fn sync(&self, group: &str, targets: &[Target], delay: std::time::Duration, now: Instant) {
        self.with(|g| {
            let entries = g.entry(group.to_string()).or_default();
            for t in targets {
                let e = entries.entry(t.clone()).or_default();
                if e.state == State::Draining {
                    // Registered again while draining: checked afresh.
                    *e = Health::default();
                }
            }
            entries.retain(|t, h| {
                if targets.contains(t) {
                    return true;
                }
                if h.state != State::Draining {
                    h.state = State::Draining;
                    h.until = Some(now + delay);
                }
                h.until.is_some_and(|u| u > now)
            });
        });
    }

    /// Forgets groups that no longer exist.
    pub fn retain_groups(&self, keep: impl Fn(&str) -> bool) {
        self.with(|g| g.retain(|k, _| keep(k)));
    }

    pub fn observe(
        &self,
        group: &str,
        target: &Target,
        outcome: Outcome,
        thresholds: (u32, u32),
        at: Instant,
    ) {
        self.with(|g| {
            if let Some(h) = g.get_mut(group).and_then(|e| e.get_mut(target)) {
                h.observe(outcome, thresholds.0, thresholds.1, at);
            }
        });
    }

    /// A group's targets and their health.
    pub fn of(&self, group: &str) -> Vec<(Target, Health)> {
        self.with(|g| {
            let mut v: Vec<(Target, Health)> = g
                .get(group)
                .map(|e| e.iter().map(|(t, h)| (t.clone(), h.clone())).collect())
                .unwrap_or_default();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        })
    }

    /// The targets requests may go to: the healthy ones or, when none is, every target that
    /// is not draining (ELB fails open). Sorted, so that turns go round in a stable order.
    pub fn routable(&self, group: &str) -> Vec<Target> {
        self.routable_since(group)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// As [`Self::routable`], with when each target became healthy (`None` when it is not).
    pub fn routable_since(&self, group: &str) -> Vec<(Target, Option<Instant>)> {
        let mut out = self.with(|g| {
            let Some(entries) = g.get(group) else {
                return Vec::new();
            };
            let healthy: Vec<(Target, Option<Instant>)> = entries
                .iter()
                .filter(|(_, h)| h.state == State::Healthy)
                .map(|(t, h)| (t.clone(), h.healthy_since))
                .collect();
            if !healthy.is_empty() {
                return healthy;
            }
            entries
                .iter()
                .filter(|(_, h)| h.state != State::Draining)
                .map(|(t, _)| (t.clone(), None))
                .collect()
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(port: u16) -> Target {
        Target {
            id: "10.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn thresholds_move_a_target_between_states() {
        let now = Instant::now();
        let mut h = Health::default();
        h.observe(Outcome::Passed, 2, 2, now);
        assert_eq!(h.state, State::Initial);
        h.observe(Outcome::Passed, 2, 2, now);
        assert_eq!(h.state, State::Healthy);
        assert!(h.reason().is_none());
        h.observe(Outcome::Code(500), 2, 2, now);
        assert_eq!(h.state, State::Healthy);
        h.observe(Outcome::Code(500), 2, 2, now);
        assert_eq!(h.state, State::Unhealthy);
        assert_eq!(h.reason().unwrap().0, "Target.ResponseCodeMismatch");
        h.observe(Outcome::Timeout, 2, 2, now);
        assert_eq!(h.reason().unwrap().0, "Target.Timeout");
        h.observe(Outcome::Passed, 2, 2, now);
        h.observe(Outcome::Passed, 2, 2, now);
        assert_eq!(h.state, State::Healthy);
    }

    #[test]
    fn matchers_accept_codes_lists_and_ranges() {
        assert!(code_matches("200", 200));
        assert!(!code_matches("200", 204));
        assert!(code_matches("200,204", 204));
        assert!(code_matches("200-299", 250));
        assert!(!code_matches("200-299", 301));
        assert!(valid_matcher("200-299,301"));
        assert!(!valid_matcher("600"));
        assert!(!valid_matcher("ok"));
    }

    #[test]
    fn deregistered_targets_drain_for_the_delay_then_go() {
        let table = HealthTable::default();
        let now = Instant::now();
        table.sync("g", &[t(1), t(2)], Duration::from_secs(10), now);
        for p in [1, 2] {
            for _ in 0..2 {
                table.observe("g", &t(p), Outcome::Passed, (2, 2), now);
            }
        }
        assert_eq!(table.routable("g"), vec![t(1), t(2)]);
        table.sync("g", &[t(1)], Duration::from_secs(10), now);
        let states: Vec<State> = table.of("g").iter().map(|e| e.1.state).collect();
        assert_eq!(states, [State::Healthy, State::Draining]);
        assert_eq!(table.routable("g"), vec![t(1)]);
        table.sync(
            "g",
            &[t(1)],
            Duration::from_secs(10),
            now + Duration::from_secs(11),
        );
        assert_eq!(table.of("g").len(), 1);
    }

    #[test]
    fn with_no_healthy_target_every_one_not_draining_gets_traffic() {
        let table = HealthTable::default();
        let now = Instant::now();
        table.sync("g", &[t(1), t(2)], Duration::from_secs(1), now);
        assert_eq!(table.routable("g").len(), 2);
        for _ in 0..2 {
            table.observe("g", &t(1), Outcome::Failed, (2, 2), now);
        }
        assert_eq!(table.routable("g").len(), 2);
    }
}
