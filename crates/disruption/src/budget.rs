//! Disruption budgets (`spec.disruption.budgets`), with Karpenter's
//! arithmetic: a budget's `nodes` is a count or a percentage of the pool's
//! nodes (rounded up), it applies to the reasons it lists (all when none),
//! and while its cron `schedule` has fired within the last `duration` (UTC;
//! always, without a schedule). A pool allows the minimum over its active
//! budgets for a reason; a budget that cannot be read allows nothing (fail
//! closed). The nodes already being disrupted or not ready are taken off
//! ([`allowed_now`]).

use std::{fmt, str::FromStr, time::Duration};

use jiff::Timestamp;

/// Why a node is disrupted, as budgets name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Empty,
    Underutilized,
    Drifted,
}

impl Reason {
    pub const ALL: [Reason; 3] = [Reason::Empty, Reason::Underutilized, Reason::Drifted];

    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Empty => "Empty",
            Reason::Underutilized => "Underutilized",
            Reason::Drifted => "Drifted",
        }
    }

    /// As Karpenter's metrics label it.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::Underutilized => "underutilized",
            Reason::Drifted => "drifted",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "Empty" => Ok(Reason::Empty),
            "Underutilized" => Ok(Reason::Underutilized),
            "Drifted" => Ok(Reason::Drifted),
            _ => Err(format!("unknown disruption reason {s:?}")),
        }
    }
}

/// What "no limit" is, as Karpenter returns it (`math.MaxInt32`).
pub const UNLIMITED: u32 = i32::MAX as u32;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    /// `"10"` or `"10%"`.
    pub nodes: String,
    /// Empty: every reason.
    pub reasons: Vec<Reason>,
    /// A cron schedule (five fields, or `@yearly`, `@monthly`, `@weekly`,
    /// `@daily`, `@midnight`, `@hourly`), in UTC.
    pub schedule: Option<String>,
    pub duration: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error("invalid cron {schedule:?}: {reason}")]
    Schedule { schedule: String, reason: String },
    #[error("invalid value for nodes {0:?}: not a count or a percentage")]
    Nodes(String),
}

impl Budget {
    /// Whether the budget applies now: no schedule, or a hit of its
    /// schedule within the last `duration`.
    pub fn is_active(&self, now: Timestamp) -> Result<bool, BudgetError> {
        if self.schedule.is_none() && self.duration.is_none() {
            return Ok(true);
        }
        let cron = Schedule::parse(self.schedule.as_deref().unwrap_or(""))?;
        let since = now
            - jiff::SignedDuration::try_from(self.duration.unwrap_or_default())
                .unwrap_or(jiff::SignedDuration::MAX);
        Ok(cron.next_after(since).is_some_and(|hit| hit <= now))
    }

    /// The nodes this budget allows to be disrupted out of `nodes`;
    /// [`UNLIMITED`] when it is not active; 0 and the error when it cannot
    /// be read.
    pub fn allowed(&self, now: Timestamp, nodes: u32) -> Result<u32, BudgetError> {
        if !self.is_active(now)? {
            return Ok(UNLIMITED);
        }
        scaled(&self.nodes, nodes)
    }

    /// When the current window ends, for an active scheduled budget
    /// (windows that overlap are one window).
    pub fn active_until(&self, now: Timestamp) -> Option<Timestamp> {
        let schedule = self.schedule.as_deref()?;
        let cron = Schedule::parse(schedule).ok()?;
        let d = jiff::SignedDuration::try_from(self.duration.unwrap_or_default()).ok()?;
        let mut hit = cron.previous_at_or_before(now)?;
        let mut end = hit + d;
        if end <= now {
            return None;
        }
        // A window that starts before this one ends extends it.
        let horizon = now + jiff::SignedDuration::from_hours(24 * 366);
        for _ in 0..10_000 {
            match cron.next_after(hit) {
                Some(next) if next < end && next <= horizon => {
                    hit = next;
                    end = end.max(next + d);
                }
                _ => break,
            }
        }
        Some(end)
    }

    fn applies_to(&self, reason: Reason) -> bool {
        self.reasons.is_empty() || self.reasons.contains(&reason)
    }
}

/// `intstr.GetScaledValueFromIntOrPercent(nodes, total, roundUp=true)`.
fn scaled(nodes: &str, total: u32) -> Result<u32, BudgetError> {
    if let Ok(n) = nodes.parse::<i64>() {
        return Ok(n.clamp(0, UNLIMITED as i64) as u32);
    }
    let pct = nodes
        .strip_suffix('%')
        .and_then(|p| p.parse::<i64>().ok())
        .ok_or_else(|| BudgetError::Nodes(nodes.to_string()))?;
    let v = (pct.max(0) as u128 * total as u128).div_ceil(100);
    Ok(v.min(UNLIMITED as u128) as u32)
}

/// The least a pool's budgets allow for `reason` out of `nodes` (a budget
/// that cannot be read counts as 0 when it applies), and the errors.
pub fn allowed_by_reason(
    budgets: &[Budget],
    now: Timestamp,
    nodes: u32,
    reason: Reason,
) -> (u32, Vec<BudgetError>) {
    let mut allowed = UNLIMITED;
    let mut errors = vec![];
    for b in budgets {
        let v = match b.allowed(now, nodes) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                0
            }
        };
        if b.applies_to(reason) {
            allowed = allowed.min(v);
        }
    }
    (allowed, errors)
}

/// A pool's room for more disruptions now: what its budgets allow for
/// `reason` out of its initialized nodes, less the nodes being disrupted
/// or not ready (never below 0).
pub fn allowed_now(
    budgets: &[Budget],
    now: Timestamp,
    initialized: u32,
    disrupting_or_not_ready: u32,
    reason: Reason,
) -> u32 {
    allowed_by_reason(budgets, now, initialized, reason)
        .0
        .saturating_sub(disrupting_or_not_ready)
}

/// Which budget holds a pool at zero for `reason`, and until when (for
/// `why-kept`): the first active budget that allows nothing, with the end
/// of its window when it has a schedule.
pub fn blocking(
    budgets: &[Budget],
    now: Timestamp,
    nodes: u32,
    reason: Reason,
) -> Option<(usize, Option<Timestamp>)> {
    budgets.iter().enumerate().find_map(|(i, b)| {
        (b.applies_to(reason) && b.allowed(now, nodes).unwrap_or(0) == 0)
            .then(|| (i, b.active_until(now)))
    })
}

/// A standard cron schedule in UTC, as Karpenter reads it (robfig/cron's
/// `ParseStandard`: five fields or a descriptor).
struct Schedule(croner::Cron);

impl Schedule {
    fn parse(s: &str) -> Result<Self, BudgetError> {
        let err = |reason: String| BudgetError::Schedule {
            schedule: s.to_string(),
            reason,
        };
        let pattern = match s.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            d if d.starts_with('@') => return Err(err(format!("unrecognized descriptor: {d}"))),
            p => p,
        };
        let fields: Vec<&str> = pattern.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "expected exactly 5 fields, found {}",
                fields.len()
            )));
        }
        check_ranges(&fields).map_err(err)?;
        croner::Cron::from_str(pattern)
            .map(Schedule)
            .map_err(|e| err(e.to_string()))
    }

    /// The first hit strictly after `t`.
    fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let from = to_chrono(t)?;
        self.0
            .find_next_occurrence(&from, false)
            .ok()
            .and_then(|d| from_chrono(&d))
    }

    /// The last hit at or before `t`.
    fn previous_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let from = to_chrono(t)?;
        self.0
            .find_previous_occurrence(&from, true)
            .ok()
            .and_then(|d| from_chrono(&d))
    }
}

/// robfig/cron refuses what croner may accept: a range whose start is
/// past its end (`tue-mon`), values outside a field's bounds, and the
/// extensions (`L`, `W`, `#`, `?` aside).
fn check_ranges(fields: &[&str]) -> Result<(), String> {
    const BOUNDS: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    for (i, field) in fields.iter().enumerate() {
        let (lo, hi) = BOUNDS[i];
        let value = |s: &str| -> Result<u32, String> {
            let l = s.to_ascii_lowercase();
            let named = match i {
                3 => MONTHS.iter().position(|m| *m == l).map(|p| p as u32 + 1),
                4 => DAYS.iter().position(|d| *d == l).map(|p| p as u32),
                _ => None,
            };
            named
                .or_else(|| s.parse::<u32>().ok())
                .ok_or_else(|| format!("failed to parse int from {s}"))
        };
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            if let Some(s) = step {
                let n: u32 = s
                    .parse()
                    .map_err(|_| format!("failed to parse int from {s}"))?;
                if n == 0 {
                    return Err(format!("step of range should be a positive number: {part}"));
                }
            }
            if range == "*" || range == "?" {
                continue;
            }
            let (start, end) = match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None => {
                    let v = value(range)?;
                    (v, if step.is_some() { hi } else { v })
                }
            };
            if start < lo {
                return Err(format!(
                    "beginning of range ({start}) below minimum ({lo}): {part}"
                ));
            }
            if end > hi {
                return Err(format!("end of range ({end}) above maximum ({hi}): {part}"));
            }
            if start > end {
                return Err(format!(
                    "beginning of range ({start}) beyond end of range ({end}): {part}"
                ));
            }
        }
    }
    Ok(())
}

fn to_chrono(t: Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
}

fn from_chrono(d: &chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Timestamp::new(d.timestamp(), d.timestamp_subsec_nanos() as i32).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a time")
    }

    #[test]
    fn percentages_round_up_and_counts_are_counts() {
        assert_eq!(scaled("10%", 5), Ok(1));
        assert_eq!(scaled("10%", 10), Ok(1));
        assert_eq!(scaled("10%", 11), Ok(2));
        assert_eq!(scaled("0%", 11), Ok(0));
        assert_eq!(scaled("3", 1), Ok(3));
        assert!(scaled("ten", 1).is_err());
        assert!(scaled("5%%", 1).is_err());
    }

    #[test]
    fn a_window_ends_a_duration_after_its_last_hit() {
        let b = Budget {
            nodes: "0".into(),
            reasons: vec![],
            schedule: Some("0 9 * * *".into()),
            duration: Some(Duration::from_secs(8 * 3600)),
        };
        let now = at("2026-12-01T10:00:00Z");
        assert_eq!(b.is_active(now), Ok(true));
        assert_eq!(b.active_until(now), Some(at("2026-12-01T17:00:00Z")));
        assert_eq!(b.is_active(at("2026-12-01T17:00:01Z")), Ok(false));
        assert_eq!(b.active_until(at("2026-12-01T18:00:00Z")), None);
    }

    #[test]
    fn overlapping_windows_are_one() {
        let b = Budget {
            nodes: "0".into(),
            reasons: vec![],
            schedule: Some("@daily".into()),
            duration: Some(Duration::from_secs(48 * 3600)),
        };
        // Every hit extends the window by a day: it never ends; the search
        // stops a year ahead.
        let now = at("2026-12-01T10:00:00Z");
        assert!(
            b.active_until(now)
                .is_some_and(|e| e > at("2027-12-01T00:00:00Z"))
        );
    }
}
