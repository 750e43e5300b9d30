//! The run report (`backout show RUN --html FILE`) in a real browser: real
//! runs of env-toggle on a real `.env`, their reports loaded in headless
//! Chromium through chromedriver, and the rendered DOM checked at a desktop
//! and at a phone width. Screenshots are left in `target/test-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`tests/setup.sh`
//! installs them); without them the test fails and says so.

use std::path::{Path, PathBuf};

use backout::report::html::file_url;
use backout_tests::ENV_TOGGLE;
use backout_tests::browser::Chromedriver;
use backout_tests::cli::{Sandbox, safety_copies};
use serde_json::Value;

use crate::bin;

/// What the test reads from a rendered report: every fact it asserts, in one
/// round trip. Texts are whitespace-collapsed `textContent` (what is on the
/// page, not the markup).
const PROBE: &str = r#"
const text = e => e ? e.textContent.replace(/\s+/g, ' ').trim() : null;
const rows = [...document.querySelectorAll('#timeline .row')].map(row => {
  const track = row.querySelector('.track').getBoundingClientRect();
  const bars = [...row.querySelectorAll('.bar')];
  const bar = bars.length ? bars[0].getBoundingClientRect() : null;
  return {
    step: row.dataset.step,
    bars: bars.length,
    outcome: bars.length ? bars[0].classList[1] : null,
    width: bar ? bar.width : 0,
    inside: bar ? bar.left >= track.left - 0.5 && bar.right <= track.right + 0.5 : false,
  };
});
const steps = [...document.querySelectorAll('article.step')].map(a => ({
  id: a.id,
  outcome: a.dataset.outcome,
  outputs: [...a.querySelectorAll('.outputs li')].map(text),
  undo: text(a.querySelector('.undo')),
  failure: text(a.querySelector('.failure')),
  log: text(a.querySelector('details.log')),
}));
return {
  title: document.title,
  state: text(document.querySelector('#state')),
  verdict: text(document.querySelector('#rto')),
  headline: text(document.querySelector('#headline')),
  next: text(document.querySelector('#next')),
  rows, steps,
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  scripts: document.scripts.length,
  images: document.images.length,
  pwned: window.__pwned === undefined ? null : window.__pwned,
};
"#;

/// Markup a plugin's output and log carry into the failing run's report: it
/// must show as text, never run.
const ATTACK: &str = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>";

/// A sandbox with env-toggle in its registry and an app directory with a `.env`.
struct App {
    sb: Sandbox,
    dir: PathBuf,
}

impl App {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(ENV_TOGGLE);
        let dir = sb.mkdir("app");
        sb.write("app/.env", "INSIGHTS_ENABLED=true\nBANNER=on\n");
        Self { sb, dir }
    }

    /// A runbook named `name` with an RTO of `rto` whose steps are `(id,
    /// with)` env-toggle steps on the app directory, each expected to take
    /// at most 10 s.
    fn runbook(&self, name: &str, rto: &str, steps: &[(&str, String)]) -> PathBuf {
        let mut text = format!("version = 1\nname = \"{name}\"\nrto = \"{rto}\"\n");
        for (id, with) in steps {
            text.push_str(&format!(
                "\n[[step]]\nid = \"{id}\"\nuses = \"env-toggle@0.1.0\"\nexpected = \"10s\"\nwith = {with}\n\n\
                 [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\n",
                self.dir.display()
            ));
        }
        self.sb.write(&format!("{name}.toml"), text)
    }

    /// Runs `runbook` (expecting exit `code`) and writes the last run's report to `NAME.html`.
    fn run_and_report(&self, runbook: &Path, code: i32) -> PathBuf {
        let out = self.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
        assert_eq!(out.code, code, "{}", out.all());
        let html = self.sb.path().join(runbook.with_extension("html").file_name().unwrap());
        let out = self.sb.run(&["show", "last", "--html", html.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains(&file_url(&html)), "{}", out.all());
        html
    }
}

/// Facts that hold for every report at every width: one bar per step, each
/// visible inside its track, no script and no image in the page, and no
/// horizontal scrolling.
fn check_layout(dom: &Value, steps: &[&str], width: &str) {
    let rows = dom["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["step"].as_str().unwrap()).collect();
    assert_eq!(ids, steps, "{width}: one timeline row per step, in order");
    for row in rows {
        assert_eq!(row["bars"], 1, "{width}: exactly one bar in {row}");
        assert!(row["width"].as_f64().unwrap() >= 2.0, "{width}: a visible bar: {row}");
        assert_eq!(row["inside"], true, "{width}: the bar stays in its track: {row}");
    }
    let (scroll, inner) = (dom["scrollWidth"].as_i64().unwrap(), dom["innerWidth"].as_i64().unwrap());
    assert!(scroll <= inner, "{width}: horizontal overflow: scrollWidth {scroll} > innerWidth {inner}");
    assert_eq!(dom["scripts"], 0, "{width}: the page has no script");
    assert_eq!(dom["images"], 0, "{width}: no plugin text became an image");
    assert_eq!(dom["pwned"], Value::Null, "{width}: plugin text ran as script");
}

#[test]
fn the_run_report_renders_in_chromium_at_desktop_and_phone_widths() {
    // First, so that a machine without Chromium fails at once, saying why.
    let driver = Chromedriver::start();
    let app = App::new();
    let ok = app.runbook(
        "flags-off",
        "10m",
        &[
            ("insights-off", r#"{ file = "/app/.env", set = { INSIGHTS_ENABLED = "false" } }"#.to_string()),
            ("banner-off", r#"{ file = "/app/.env", set = { BANNER = "off" } }"#.to_string()),
        ],
    );
    let ok_html = app.run_and_report(&ok, 0);
    let copies = safety_copies(&app.dir);
    assert_eq!(copies.len(), 2, "one safety copy per step");

    // A step planned when it runs (its config uses an output) finds no file,
    // fails at run time, and the default policy undoes the step before it;
    // the third never runs. The first step's output and log carry markup.
    let broken = app.runbook(
        "broken",
        "10m",
        &[
            ("insights-off", format!(r#"{{ file = "/app/.env", set = {{ INSIGHTS_ENABLED = "{ATTACK}" }} }}"#)),
            ("banner-off", r#"{ file = "${steps.insights-off.outputs.file}.gone", set = { BANNER = "off" } }"#.into()),
            ("never", r#"{ file = "/app/.env", set = { BANNER = "x" } }"#.to_string()),
        ],
    );
    let broken_html = app.run_and_report(&broken, backout_tests::cli::EXIT_UNDONE);

    let browser = driver.browser(1280, 900);
    for (width, height, label) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        browser.resize(width, height);

        browser.goto(&file_url(&ok_html));
        let dom = browser.execute(PROBE);
        let viewport = dom["innerWidth"].as_i64().unwrap();
        assert!((viewport - i64::from(width)).abs() <= 20, "{label}: the viewport is {viewport}px wide, not {width}");
        check_layout(&dom, &["insights-off", "banner-off"], label);
        assert_eq!(dom["state"], "succeeded", "{dom}");
        let verdict = dom["verdict"].as_str().unwrap();
        assert!(verdict.starts_with("RTO met: "), "{verdict}");
        assert!(verdict.contains("Succeeded in ") && verdict.contains("within the RTO of 10m"), "{verdict}");
        assert!(verdict.contains("Slowest step: "), "{verdict}");
        let outcomes: Vec<&Value> = dom["rows"].as_array().unwrap().iter().map(|r| &r["outcome"]).collect();
        assert_eq!(outcomes, ["succeeded", "succeeded"], "{dom}");
        // The first step's outputs: the safety copy as a guest path, its host path beside it.
        let outputs = dom["steps"][0]["outputs"].as_array().unwrap();
        let copy = outputs.iter().filter_map(Value::as_str).find(|o| o.starts_with("safety_copy:")).unwrap();
        assert!(copy.contains("/app/.env.backout-"), "{copy}");
        assert!(
            copies.iter().any(|c| copy.contains(&format!("(host: {})", c.display()))),
            "{copy} names no copy of {copies:?}"
        );
        assert!(
            dom["steps"][0]["undo"].as_str().unwrap().starts_with("available: backout undo "),
            "{}",
            dom["steps"][0]
        );
        assert!(dom["next"].as_str().unwrap().contains("backout undo"), "{dom}");
        browser.save_screenshot(Path::new(bin()), &format!("report-succeeded-{label}"));

        browser.goto(&file_url(&broken_html));
        let dom = browser.execute(PROBE);
        check_layout(&dom, &["insights-off", "banner-off", "never"], label);
        assert_eq!(dom["state"], "undone", "{dom}");
        // Quick, but nothing was recovered: the RTO is missed.
        let verdict = dom["verdict"].as_str().unwrap();
        assert!(verdict.starts_with("RTO missed: "), "{verdict}");
        assert!(verdict.contains("The run ended undone after "), "{verdict}");
        let outcomes: Vec<&Value> = dom["rows"].as_array().unwrap().iter().map(|r| &r["outcome"]).collect();
        assert_eq!(outcomes, ["undone", "failed", "not-run"], "{dom}");
        assert!(dom["steps"][1]["failure"].as_str().unwrap().starts_with("in plan: "), "{}", dom["steps"][1]);
        assert!(dom["steps"][0]["undo"].as_str().unwrap().starts_with("undone: restored /app/.env"), "{dom}");
        // The markup is on the page as text, in the output and in the folded log.
        let outputs = dom["steps"][0]["outputs"].to_string();
        assert!(outputs.contains(ATTACK), "{outputs}");
        assert!(dom["steps"][0]["log"].as_str().unwrap().contains(ATTACK), "{}", dom["steps"][0]);
        browser.save_screenshot(Path::new(bin()), &format!("report-undone-{label}"));
        // On a phone the timeline is below the fold: a second picture of it.
        browser.execute("document.getElementById('timeline-section').scrollIntoView(); return null;");
        browser.save_screenshot(Path::new(bin()), &format!("report-undone-{label}-timeline"));
    }

    // `show --output json` carries what the page shows: the same outcomes
    // and verdict for the same run.
    let out = app.sb.run(&["--output", "json", "show", "last"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    let outcomes: Vec<&Value> = json["report"]["steps"].as_array().unwrap().iter().map(|s| &s["outcome"]).collect();
    assert_eq!(outcomes, ["undone", "failed", "not-run"], "{json}");
    assert_eq!(json["run"]["rto"]["verdict"], "missed", "{json}");
    assert_eq!(json["run"]["state"], "undone", "{json}");
}

#[test]
fn the_report_goes_to_stdout_with_a_dash_and_an_unwritable_file_is_an_error() {
    let app = App::new();
    let runbook = app.runbook(
        "flags-off",
        "10m",
        &[("insights-off", r#"{ file = "/app/.env", set = { INSIGHTS_ENABLED = "false" } }"#.to_string())],
    );
    let out = app.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());

    let out = app.sb.run(&["show", "last", "--html", "-"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.starts_with("<!DOCTYPE html>") && out.stdout.trim_end().ends_with("</html>"), "{}", out.all());
    assert_eq!(out.stdout.matches("<div class=\"bar ").count(), 1, "{}", out.stdout);
    assert!(!out.stdout.contains("<script") && !out.stdout.contains("src=\"http"), "self-contained, no script");

    let missing = app.sb.path().join("no-such-dir/report.html");
    let out = app.sb.run(&["show", "last", "--html", missing.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains(&format!("error: failed to write `{}`", missing.display())), "{}", out.all());
    assert!(out.stderr.contains("hint: `--html` needs a file in a directory that exists"), "{}", out.all());
    assert!(!missing.parent().unwrap().exists());
    // Nothing half-written is left beside a file that could be written.
    let out = app.sb.run(&["show", "last", "--html", "report.html"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let names: Vec<String> = std::fs::read_dir(app.sb.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("backout-report"))
        .collect();
    assert!(names.is_empty(), "temporary files left: {names:?}");
    assert!(std::fs::read_to_string(app.sb.path().join("report.html")).unwrap().contains("RTO met"));
}
