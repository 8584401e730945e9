//! `expireAfter`: a claim older than it is deleted, whatever the budgets
//! (Karpenter v1's forceful expiration); its drain is bounded by the
//! claim's `terminationGracePeriod`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// When a claim created at `created` expires (`None`: `Never`).
pub fn expires_at(created: Timestamp, expire_after: Option<Duration>) -> Option<Timestamp> {
    let d = SignedDuration::try_from(expire_after?).ok()?;
    created.checked_add(d).ok()
}

/// How long until it expires (zero once expired), `None` for `Never`.
pub fn expires_in(
    created: Timestamp,
    expire_after: Option<Duration>,
    now: Timestamp,
) -> Option<Duration> {
    let at = expires_at(created, expire_after)?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_expires_its_expire_after_past_its_creation() {
        let created: Timestamp = "2026-12-01T00:00:00Z".parse().expect("time");
        let two_min = Some(Duration::from_secs(120));
        let now: Timestamp = "2026-12-01T00:01:30Z".parse().expect("time");
        assert_eq!(
            expires_in(created, two_min, now),
            Some(Duration::from_secs(30))
        );
        let later: Timestamp = "2026-12-01T00:05:00Z".parse().expect("time");
        assert_eq!(expires_in(created, two_min, later), Some(Duration::ZERO));
        assert_eq!(expires_in(created, None, later), None);
    }
}
