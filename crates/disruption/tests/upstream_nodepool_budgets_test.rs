//! Karpenter v1.12.1's `pkg/apis/v1/nodepool_budgets_test.go`, ported case
//! by case over `outrigger_disruption::budget` (`Describe("Budgets")`).
//! Each test is named after its `It(...)`.

use std::time::Duration;

use jiff::Timestamp;
use outrigger_disruption::budget::{Budget, Reason, UNLIMITED, allowed_by_reason};

/// "the middle of the year of 2000, the best year ever".
fn fake_clock() -> Timestamp {
    "2000-06-15T12:30:30Z".parse().expect("time")
}

fn hours(h: u64) -> Option<Duration> {
    Some(Duration::from_secs(h * 3600))
}

/// The `BeforeEach`'s six budgets.
fn budgets() -> Vec<Budget> {
    let every = |nodes: &str, reasons: Vec<Reason>| Budget {
        nodes: nodes.into(),
        reasons,
        schedule: Some("* * * * *".into()),
        duration: hours(1),
    };
    vec![
        every("10", vec![]),
        every("100", vec![]),
        every("100%", vec![]),
        every("15", vec![Reason::Drifted, Reason::Underutilized]),
        every("5", vec![Reason::Drifted]),
        Budget {
            nodes: "0".into(),
            reasons: vec![Reason::Underutilized, Reason::Drifted, Reason::Empty],
            schedule: Some("@weekly".into()),
            duration: hours(1),
        },
    ]
}

fn allowed(budgets: &[Budget], clock: Timestamp, reason: Reason) -> (u32, bool) {
    let (v, errs) = allowed_by_reason(budgets, clock, 100, reason);
    (v, errs.is_empty())
}

// Context("GetAllowedDisruptionsByReason")

#[test]
fn get_allowed_disruptions_by_reason_should_return_0_for_all_reasons_if_a_budget_is_active_for_all_reasons()
 {
    let mut b = budgets();
    b[5].schedule = Some("* * * * *".into());
    b[5].duration = hours(1);
    for reason in Reason::ALL {
        assert_eq!(allowed(&b, fake_clock(), reason), (0, true));
    }
}

#[test]
fn get_allowed_disruptions_by_reason_should_return_max_int32_for_all_reasons_when_there_are_no_active_budgets()
 {
    let mut b = budgets();
    for x in &mut b {
        x.schedule = Some("@yearly".into());
        x.duration = hours(1);
    }
    for reason in Reason::ALL {
        assert_eq!(allowed(&b, fake_clock(), reason), (UNLIMITED, true));
    }
    assert_eq!(UNLIMITED, i32::MAX as u32);
}

#[test]
fn get_allowed_disruptions_by_reason_should_ignore_reason_defined_budgets_when_inactive() {
    let mut b = budgets();
    b[3].schedule = Some("@yearly".into());
    b[4].schedule = Some("@yearly".into());
    for reason in Reason::ALL {
        assert_eq!(allowed(&b, fake_clock(), reason), (10, true));
    }
}

#[test]
fn get_allowed_disruptions_by_reason_should_return_the_budget_for_all_disruption_reasons_when_undefined()
 {
    let b = budgets()[..1].to_vec();
    assert!(b[0].reasons.is_empty());
    for reason in Reason::ALL {
        assert_eq!(allowed(&b, fake_clock(), reason), (10, true));
    }
}

#[test]
fn get_allowed_disruptions_by_reason_should_get_the_minimum_budget_for_each_reason() {
    let mut b = budgets();
    b.push(Budget {
        nodes: "4".into(),
        reasons: vec![Reason::Empty],
        schedule: Some("* * * * *".into()),
        duration: hours(1),
    });
    assert_eq!(allowed(&b, fake_clock(), Reason::Empty), (4, true));
    assert_eq!(allowed(&b, fake_clock(), Reason::Drifted), (5, true));
    // The budget without reasons overrides the one naming the reason.
    assert_eq!(allowed(&b, fake_clock(), Reason::Underutilized), (10, true));
}

// Context("AllowedDisruptions")

#[test]
fn allowed_disruptions_should_return_zero_values_if_a_schedule_is_invalid() {
    let mut b = budgets();
    b[0].schedule = Some("@wrongly".into());
    assert!(b[0].allowed(fake_clock(), 100).is_err());
    // Fail closed: the pool allows nothing.
    assert_eq!(allowed(&b[..1], fake_clock(), Reason::Empty), (0, false));
}

#[test]
fn allowed_disruptions_should_return_zero_values_if_a_nodes_value_is_invalid() {
    let mut b = budgets();
    b[0].nodes = "1000a%".into();
    assert!(b[0].allowed(fake_clock(), 100).is_err());
    assert_eq!(allowed(&b[..1], fake_clock(), Reason::Empty), (0, false));
}

#[test]
fn allowed_disruptions_should_return_max_int32_when_a_budget_is_inactive() {
    let mut b = budgets();
    b[0].schedule = Some("@yearly".into());
    b[0].duration = hours(1);
    assert_eq!(b[0].allowed(fake_clock(), 100), Ok(UNLIMITED));
}

#[test]
fn allowed_disruptions_should_return_the_int_value_when_a_budget_is_active() {
    assert_eq!(budgets()[0].allowed(fake_clock(), 100), Ok(10));
}

#[test]
fn allowed_disruptions_should_return_the_string_value_when_a_budget_is_active() {
    assert_eq!(budgets()[2].allowed(fake_clock(), 100), Ok(100));
}

// Context("IsActive")

#[test]
fn is_active_should_always_consider_a_schedule_and_time_in_utc() {
    // time.Date(2000, time.June, 0, 0, 0, 0, 0, +01:00): Go normalizes
    // day 0 to May 31st, 00:00 at +01:00, which is May 30th 23:00 UTC.
    let clock: Timestamp = "2000-05-30T23:00:00Z".parse().expect("time");
    let mut b = budgets();
    b[0].schedule = Some("@daily".into());
    b[0].duration = Some(Duration::from_secs(30 * 60));
    assert_eq!(b[0].is_active(clock), Ok(false));
}

#[test]
fn is_active_should_return_that_a_schedule_is_active_when_schedule_and_duration_are_nil() {
    let mut b = budgets();
    b[0].schedule = None;
    b[0].duration = None;
    assert_eq!(b[0].is_active(fake_clock()), Ok(true));
}

#[test]
fn is_active_should_return_that_a_schedule_is_active() {
    assert_eq!(budgets()[0].is_active(fake_clock()), Ok(true));
}

#[test]
fn is_active_should_return_that_a_schedule_is_inactive() {
    let mut b = budgets();
    b[0].schedule = Some("@yearly".into());
    assert_eq!(b[0].is_active(fake_clock()), Ok(false));
}

#[test]
fn is_active_should_return_that_a_schedule_is_active_when_the_schedule_hit_is_in_the_middle_of_the_duration()
 {
    // "the start of the year 1000, the best year ever".
    let clock: Timestamp = "1000-01-01T12:00:00Z".parse().expect("time");
    let mut b = budgets();
    b[0].schedule = Some("@yearly".into());
    b[0].duration = hours(24);
    assert_eq!(b[0].is_active(clock), Ok(true));
}

#[test]
fn is_active_should_return_that_a_schedule_is_active_when_the_duration_is_longer_than_the_recurrence()
 {
    let clock: Timestamp = "2024-01-07T00:00:00Z".parse().expect("time");
    let mut b = budgets();
    b[0].schedule = Some("@daily".into());
    b[0].duration = hours(48);
    assert_eq!(b[0].is_active(clock), Ok(true));
}

#[test]
fn is_active_should_return_that_a_schedule_is_inactive_when_the_schedule_hit_is_after_the_duration()
{
    let clock: Timestamp = "2024-01-07T00:00:00Z".parse().expect("time");
    let mut b = budgets();
    b[0].schedule = Some("30 6 * * SUN".into());
    b[0].duration = hours(6);
    assert_eq!(b[0].is_active(clock), Ok(false));
}

#[test]
fn is_active_should_return_an_error_indicating_why_the_cron_fails_to_parse() {
    let clock: Timestamp = "2024-01-07T00:00:00Z".parse().expect("time");
    let mut b = budgets();
    b[0].schedule = Some("0 0 * * tue-mon".into());
    b[0].duration = hours(6);
    let err = b[0].is_active(clock).expect_err("an invalid range");
    assert!(
        err.to_string()
            .contains("beginning of range (2) beyond end of range (1)"),
        "{err}"
    );
}
