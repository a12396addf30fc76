//! One bot's count of its gameplay requests and what came back: requests sent, answered ok,
//! refused by kind, skipped by reason, the time from each request to its result, and the
//! combat events received. The report adds the bots' tallies up.
//!
//! Request-to-result time: from the request's send to the first pump after which its result
//! is polled. The bot pumps once per tick, so a sample is late by up to one tick (as for
//! input-to-ack).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use hdrhistogram::Histogram;
use mmo_core::gameplay::messages::{CombatEvent, CombatEventKind, Refusal};

/// The figures of one kind of request (abilities, or inventory operations).
#[derive(Debug)]
pub(crate) struct RequestTally {
    /// Steps of the scenario that would send one (sent plus skipped).
    pub steps: u64,
    /// Requests sent.
    pub sent: u64,
    /// Results without a refusal.
    pub ok: u64,
    /// Results with a refusal, by its kind.
    pub refused: BTreeMap<String, u64>,
    /// Steps that sent nothing, by reason (see `crate::gameplay`).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Request to result, microseconds.
    pub result_us: Histogram<u64>,
    /// Send time of each request not answered yet, by request number.
    pending: HashMap<u32, Instant>,
}

impl RequestTally {
    pub fn new() -> Self {
        RequestTally {
            steps: 0,
            sent: 0,
            ok: 0,
            refused: BTreeMap::new(),
            skipped: BTreeMap::new(),
            result_us: new_histogram(),
            pending: HashMap::new(),
        }
    }

    /// Records request `request` sent at `at`.
    pub fn sent(&mut self, request: u32, at: Instant) {
        self.steps += 1;
        self.sent += 1;
        self.pending.insert(request, at);
    }

    /// Records a step that sent nothing, for `reason`.
    pub fn skipped(&mut self, reason: &'static str) {
        self.steps += 1;
        *self.skipped.entry(reason).or_insert(0) += 1;
    }

    /// Records the result of `request` polled at `now`. A result for a request this bot did
    /// not send (or answered twice) is counted by outcome but has no time.
    pub fn answered(&mut self, request: u32, refusal: Option<&Refusal>, now: Instant) {
        match refusal {
            None => self.ok += 1,
            Some(r) => *self.refused.entry(r.kind.clone()).or_insert(0) += 1,
        }
        if let Some(sent) = self.pending.remove(&request) {
            let us = u64::try_from((now - sent).as_micros()).unwrap_or(u64::MAX);
            // Auto-resizing: recording cannot fail for a finite u64.
            let _ = self.result_us.record(us.max(1));
        }
    }

    /// Requests sent and not answered yet.
    pub fn unanswered(&self) -> u64 {
        self.pending.len() as u64
    }

    /// Whether a request is waiting for its result.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Everything one bot counted about gameplay.
#[derive(Debug)]
pub(crate) struct GameplayTally {
    pub abilities: RequestTally,
    pub inventory: RequestTally,
    /// Combat events received (as caster, target or observer).
    pub combat_events: u64,
    /// Of those, damage events.
    pub damage_events: u64,
}

impl GameplayTally {
    pub fn new() -> Self {
        GameplayTally {
            abilities: RequestTally::new(),
            inventory: RequestTally::new(),
            combat_events: 0,
            damage_events: 0,
        }
    }

    /// Records a combat event.
    pub fn combat(&mut self, event: &CombatEvent) {
        self.combat_events += 1;
        if matches!(event.kind, CombatEventKind::Damage { .. }) {
            self.damage_events += 1;
        }
    }

    /// Whether any request still waits for its result.
    pub fn waiting(&self) -> bool {
        self.abilities.waiting() || self.inventory.waiting()
    }
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    // Invariant: 3 significant figures is within hdrhistogram's 0..=5.
    let mut h = Histogram::new(3).expect("sigfig 3 is valid");
    h.auto(true);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_outcomes_and_times_answered_requests() {
        let mut t = RequestTally::new();
        let t0 = Instant::now();
        t.sent(1, t0);
        t.sent(2, t0);
        t.skipped("cooldown");
        assert!(t.waiting());
        t.answered(1, None, t0 + Duration::from_millis(40));
        let refusal = Refusal {
            kind: "ability_out_of_range".into(),
            message: "too far".into(),
        };
        t.answered(2, Some(&refusal), t0 + Duration::from_millis(60));
        assert!(!t.waiting());
        assert_eq!((t.steps, t.sent, t.ok, t.unanswered()), (3, 2, 1, 0));
        assert_eq!(t.refused.get("ability_out_of_range"), Some(&1));
        assert_eq!(t.skipped.get("cooldown"), Some(&1));
        assert_eq!(t.result_us.len(), 2);
        let p50_ms = t.result_us.value_at_quantile(0.5) as f64 / 1000.0;
        assert!((39.0..=41.0).contains(&p50_ms), "{p50_ms}");
    }
}
