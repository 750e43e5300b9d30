//! The recovery time objective through the real CLI on the three-step
//! rollback of `rollback_site`: plan weighs the steps' timeouts and
//! `expected` durations against `rto`; the run's summary, `show` and the
//! JSON report say whether the run met it.

use backout_tests::cli::{EXIT_SUCCEEDED, EXIT_UNDONE};

use crate::rollback_site::{Site, Spec};

#[test]
fn plan_warns_when_the_steps_timeouts_alone_could_exceed_the_rto() {
    let site = Site::small();
    let out = site.cli(&["plan"], &Spec { rto: Some("1m"), ..Spec::default() });
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    // Three steps at the default 60 s timeout.
    assert!(
        out.all().contains("the steps' timeouts add up to 3m (with retries), more than the RTO of 1m"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("RTO: 1m. The steps' timeouts add up to 3m."), "{}", out.stdout);

    let out = site.cli(&["--output", "json", "plan"], &Spec { rto: Some("1m"), ..Spec::default() });
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["rto_ms"], 60_000);
    assert_eq!(plan["worst_case_ms"], 180_000);
    assert_eq!(plan["expected_ms"], serde_json::Value::Null);
}

#[test]
fn plan_warns_louder_when_the_expected_durations_exceed_the_rto() {
    let site = Site::small();
    let out = site.cli(&["plan"], &Spec { rto: Some("10s"), expected: Some("30s"), ..Spec::default() });
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert!(
        out.all().contains("the steps' `expected` durations add up to 30s, more than the RTO of 10s"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("expected to take 30s"), "{}", out.stdout);
}

#[test]
fn an_rto_the_timeouts_fit_in_draws_no_warning() {
    let site = Site::small();
    let out = site.cli(&["plan"], &Spec { rto: Some("1h"), expected: Some("2s"), ..Spec::default() });
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert!(!out.all().contains("warning"), "{}", out.all());
    assert!(out.stdout.contains("RTO: 1h. The steps' timeouts add up to 3m; expected 2s."), "{}", out.stdout);
}

#[test]
fn an_expected_duration_longer_than_the_timeout_is_refused_where_it_is_written() {
    let site = Site::small();
    let out = site.cli(&["plan"], &Spec { expected: Some("2m"), ..Spec::default() });
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("`expected = \"2m\"` is longer than the step's timeout, 1m"), "{}", out.stderr);
    assert!(out.stderr.contains("rollback.toml:14:12"), "the error points into the runbook:\n{}", out.stderr);
}

#[test]
fn a_malformed_rto_is_refused() {
    let site = Site::small();
    let out = site.cli(&["plan"], &Spec { rto: Some("5 minutes"), ..Spec::default() });
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("bad `rto`"), "{}", out.stderr);
}

#[test]
fn a_run_within_its_rto_meets_it_and_says_so_everywhere() {
    let site = Site::small();
    let spec = Spec { rto: Some("1h"), ..Spec::default() };
    let out = site.cli(&["run", "--yes"], &spec);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert!(out.stdout.contains("RTO: MET — succeeded in "), "{}", out.stdout);
    assert!(out.stdout.contains("within the RTO of 1h"), "{}", out.stdout);
    assert!(out.stdout.contains("; slowest step `"), "{}", out.stdout);

    let show = site.sb.run(&["show", "last"]);
    assert!(show.stdout.contains("  rto       MET — succeeded in "), "{}", show.stdout);

    let json = site.sb.run(&["--output", "json", "show", "last"]);
    let view: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let rto = &view["run"]["rto"];
    assert_eq!(rto["verdict"], "met", "{rto}");
    assert_eq!(rto["target_ms"], 3_600_000);
    let steps = view["run"]["steps"].as_array().unwrap();
    let slowest = steps.iter().max_by_key(|s| s["elapsed_ms"].as_u64().unwrap()).unwrap();
    assert_eq!(rto["slowest_step"], slowest["id"], "{rto}");
    assert_eq!(rto["actual_ms"], view["run"]["elapsed_ms"]);
    // The grants and limits each step ran with are in the report too.
    assert_eq!(steps[1]["grants"]["dirs"][0]["guest"], "/data");
    assert_eq!(steps[1]["timeout_ms"], 60_000);
}

#[test]
fn a_run_that_is_undone_misses_its_rto_however_quick() {
    let site = Site::small();
    let spec = Spec { rto: Some("1h"), fail: Some(2), ..Spec::default() };
    let out = site.cli(&["run", "--yes"], &spec);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("RTO: MISSED — the run ended undone after "), "{}", out.stdout);
    let json = site.sb.run(&["--output", "json", "show", "last"]);
    let view: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(view["run"]["rto"]["verdict"], "missed");
}

#[test]
fn a_run_without_an_rto_has_no_verdict() {
    let site = Site::small();
    let out = site.cli(&["run", "--yes"], &Spec::default());
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert!(!out.stdout.contains("RTO"), "{}", out.stdout);
    let json = site.sb.run(&["--output", "json", "show", "last"]);
    let view: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(view["run"]["rto"], serde_json::Value::Null);
}
