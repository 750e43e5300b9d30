//! qdrant-snapshot through the real CLI and host against the Qdrant test
//! double (`tests/src/qdrant_double.rs`): real HTTP on 127.0.0.1, snapshot
//! files on disk, point counts that show which snapshot is in place, every
//! request recorded. (The plugin's logic also has unit tests against an
//! in-memory fake in `plugins/qdrant-snapshot/src/ops_tests.rs`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use backout_tests::cli::{EXIT_UNDONE, Output, Sandbox, sha256_file, snapshot};
use backout_tests::http_server::{Recorded, Response, TestServer};
use backout_tests::qdrant_double::{QdrantDouble, SnapshotInfo, multipart_field};
use backout_tests::{QDRANT_SNAPSHOT, SMOKE_TEST};
use serde_json::{Value, json};

use crate::bin;

const KEY: &str = "qd-4f1c9b7e2a6d";

/// A sandbox with the plugin registered, a Qdrant double with collection
/// `docs` (150 points), and a backup directory `backups/`.
struct Site {
    sb: Sandbox,
    q: QdrantDouble,
    backups: PathBuf,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(QDRANT_SNAPSHOT);
        let q = QdrantDouble::start();
        q.create_collection("docs", 150);
        let backups = sb.mkdir("backups");
        Self { sb, q, backups }
    }

    /// One `[[step]]` of the plugin on collection `docs`: `with` is TOML for
    /// `[step.with]` (after `url` and `collection`), `grants` more lines for
    /// `[step.grants]` (after `net`), `extra` more step keys.
    fn step(&self, id: &str, with: &str, grants: &str, extra: &str) -> String {
        let url = self.q.url();
        format!(
            "[[step]]\nid = \"{id}\"\nuses = \"qdrant-snapshot@0.1\"\n{extra}\n\n[step.grants]\nnet = [\"{url}\"]\n{grants}\n\n\
             [step.with]\nurl = \"{url}\"\ncollection = \"docs\"\n{with}\n\n"
        )
    }

    /// `backups/` granted as `/backups`.
    fn backups_grant(&self, mode: &str) -> String {
        format!("dirs = [{{ host = \"{}\", guest = \"/backups\", mode = \"{mode}\" }}]", self.backups.display())
    }

    fn runbook(&self, steps: &str) -> PathBuf {
        self.sb.write("runbook.toml", format!("version = 1\nname = \"vectors\"\n\n{steps}"))
    }

    /// `backout ARGS… RUNBOOK` with the API key in the environment.
    fn backout(&self, args: &[&str], runbook: &Path) -> Output {
        let args: Vec<&str> = args.iter().copied().chain([runbook.to_str().unwrap()]).collect();
        self.sb.run_with_env(&args, &[("QDRANT_API_KEY", &KEY)])
    }

    /// `run --yes --output json`; the report (null if stdout is not JSON).
    fn run_json(&self, runbook: &Path) -> (Output, Value) {
        let out = self.backout(&["--output", "json", "run", "--yes"], runbook);
        let report = backout_tests::events::try_report(&out.stdout).unwrap_or(Value::Null);
        (out, report)
    }

    /// Runs a runbook that must succeed; the outputs of step `i`.
    fn outputs(&self, runbook: &Path, i: usize) -> Value {
        let (out, report) = self.run_json(runbook);
        assert_eq!(out.code, 0, "{}", out.all());
        report["run"]["steps"][i]["outputs"].clone()
    }

    /// The files in `backups/`.
    fn backup_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Undo of step 0 of `runbook`, through the library (so a test can call it with outputs it chose; `backout undo` is tested in recover.rs and policy.rs).
    fn undo(&self, runbook: &Path, outputs: &Value) -> Result<String, String> {
        use backout::runtime::host_api::quiet;

        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let runtime = backout::runtime::Runtime::new().unwrap();
            let parsed = backout::runbook::load(runbook).unwrap();
            let options = backout::resolve::Options::new(self.sb.registry());
            let plan = backout::resolve::resolve(&parsed, &runtime, &options).await.unwrap();
            let step = &plan.steps[0];
            let config = step.config.render(&plan.vars, &Default::default()).unwrap();
            let ctx = backout::runtime::CallContext::new(&step.id, &step.grants, step.limits, quiet());
            match step.plugin.undo(&ctx, &config, &outputs.to_string()).await.result {
                Ok(outcome) => Ok(outcome.summary),
                Err(e) => Err(format!("{e:?}")),
            }
        })
    }
}

fn request_lines(requests: &[Recorded]) -> Vec<String> {
    requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn position(requests: &[Recorded], method: &str, path_prefix: &str) -> usize {
    requests
        .iter()
        .position(|r| r.method == method && r.path.starts_with(path_prefix))
        .unwrap_or_else(|| panic!("no {method} {path_prefix}… in {:?}", request_lines(requests)))
}

fn json_body(r: &Recorded) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// The snapshot the double stores under `name`.
fn stored(q: &QdrantDouble, name: &str) -> SnapshotInfo {
    q.snapshots("docs").into_iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no snapshot `{name}`"))
}

#[test]
fn create_then_download_writes_the_bytes_qdrant_lists() {
    let site = Site::new();
    let steps = site.step("snap", "action = \"create\"", "", "")
        + &site.step(
            "keep",
            "action = \"download\"\nsnapshot = \"${steps.snap.outputs.name}\"\nto = \"/backups\"",
            &site.backups_grant("rw"),
            "",
        );
    let runbook = site.runbook(&steps);
    let (out, report) = site.run_json(&runbook);
    assert_eq!(out.code, 0, "{}", out.all());
    let created = &report["run"]["steps"][0]["outputs"];
    let downloaded = &report["run"]["steps"][1]["outputs"];

    let snapshots = site.q.snapshots("docs");
    assert_eq!(snapshots.len(), 1, "exactly one snapshot was created");
    let s = &snapshots[0];
    assert_eq!(created["name"], s.name.as_str());
    assert_eq!(created["checksum"], s.checksum.as_str());
    assert_eq!(created["size"], s.size);
    assert_eq!(created["creation_time"], s.creation_time.as_str());

    // On disk: the same bytes, the digest Qdrant listed, no temp file left.
    assert_eq!(site.backup_files(), [s.name.as_str()]);
    let file = site.backups.join(&s.name);
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(site.q.snapshot_file("docs", &s.name)).unwrap());
    assert_eq!(sha256_file(&file), s.checksum);
    assert_eq!(downloaded["sha256"], s.checksum.as_str());
    assert_eq!(downloaded["path"], format!("/backups/{}", s.name));

    let requests = site.q.requests();
    let creates: Vec<&Recorded> =
        requests.iter().filter(|r| r.method == "POST" && r.path.contains("/snapshots")).collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].path, "/collections/docs/snapshots?wait=true");
    let downloads = requests.iter().filter(|r| r.path == format!("/collections/docs/snapshots/{}", s.name)).count();
    assert_eq!(downloads, 1);
}

#[test]
fn a_download_whose_digest_differs_is_refused_and_leaves_no_file() {
    let site = Site::new();
    let s = site.q.take_snapshot("docs");
    site.q.corrupt_next_download();
    let runbook =
        site.runbook(&site.step("keep", "action = \"download\"\nto = \"/backups\"", &site.backups_grant("rw"), ""));
    let before = snapshot(&site.backups);
    let out = site.backout(&["run", "--yes"], &runbook);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.all().contains(&format!("not Qdrant's checksum {}", s.checksum)), "{}", out.all());
    assert!(out.all().contains(&format!("nothing was left at /backups/{}", s.name)), "{}", out.all());
    assert_eq!(snapshot(&site.backups), before, "no file, not even a temp file");
}

#[test]
fn a_download_cut_mid_body_leaves_no_file_and_a_retry_succeeds() {
    let site = Site::new();
    let s = site.q.take_snapshot("docs");
    site.q.cut_next_download(10_000);
    let runbook =
        site.runbook(&site.step("keep", "action = \"download\"\nto = \"/backups\"", &site.backups_grant("rw"), ""));
    let out = site.backout(&["run", "--yes"], &runbook);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.all().contains(&format!("nothing was left at /backups/{}", s.name)), "{}", out.all());
    assert!(site.backup_files().is_empty(), "{:?}", site.backup_files());

    // A download is a read: running again is safe, and gives the whole file.
    let outputs = site.outputs(&runbook, 0);
    assert_eq!(outputs["sha256"], s.checksum.as_str());
    assert_eq!(site.backup_files(), [s.name.as_str()]);
    assert_eq!(sha256_file(site.backups.join(&s.name)), s.checksum);
}

/// The collection has 150 points now; the snapshot to go back to has 100.
fn site_with_good_snapshot() -> (Site, SnapshotInfo) {
    let site = Site::new();
    site.q.set_points("docs", 100);
    let good = site.q.take_snapshot("docs");
    site.q.set_points("docs", 150);
    (site, good)
}

fn restore_by_name(site: &Site, name: &str, extra_with: &str) -> PathBuf {
    site.runbook(&site.step(
        "restore",
        &format!("action = \"restore\"\nsource = {{ name = \"{name}\" }}\nexpect = {{ points = 100 }}\n{extra_with}"),
        "",
        "",
    ))
}

#[test]
fn restore_by_name_takes_an_emergency_snapshot_first_and_verifies_the_exact_count() {
    let (site, good) = site_with_good_snapshot();
    let runbook = restore_by_name(&site, &good.name, "");
    let outputs = site.outputs(&runbook, 0);
    assert_eq!(site.q.points("docs"), Some(100));

    // The emergency snapshot holds the collection as it was, and the outputs name it.
    let emergency = stored(&site.q, outputs["emergency"]["name"].as_str().unwrap());
    assert_eq!(emergency.points, 150);
    assert_eq!(outputs["emergency"]["checksum"], emergency.checksum.as_str());
    assert_eq!((outputs["points_before"].as_u64(), outputs["points_after"].as_u64()), (Some(150), Some(100)));

    // It was taken before the recovery, which got Qdrant's own URL and checksum.
    let requests = site.q.requests();
    let create = position(&requests, "POST", "/collections/docs/snapshots?wait=true");
    let recover = position(&requests, "PUT", "/collections/docs/snapshots/recover");
    assert!(create < recover, "{:?}", request_lines(&requests));
    assert_eq!(requests[recover].path, "/collections/docs/snapshots/recover?wait=true");
    assert_eq!(
        json_body(&requests[recover]),
        json!({ "location": format!("{}/collections/docs/snapshots/{}", site.q.url(), good.name),
                "priority": "snapshot", "checksum": good.checksum })
    );
    // run counted exactly after the recovery (a POST: verify may only GET),
    // and verify asked /readyz.
    let counts: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path == "/collections/docs/points/count")
        .map(|(i, r)| {
            assert_eq!(json_body(r), json!({ "exact": true }));
            i
        })
        .collect();
    assert!(counts.iter().any(|i| *i > recover), "{:?}", request_lines(&requests));
    assert!(position(&requests, "GET", "/readyz") > recover);
}

#[test]
fn restore_by_upload_sends_the_file_as_the_multipart_field_snapshot() {
    let site = Site::new();
    let bytes = QdrantDouble::snapshot_bytes("docs", 42, "offsite copy");
    std::fs::write(site.backups.join("docs-offsite.snapshot"), &bytes).unwrap();
    let sum = sha256_file(site.backups.join("docs-offsite.snapshot"));
    let runbook = site.runbook(&site.step(
        "restore",
        "action = \"restore\"\nsource = { file = \"/backups/docs-offsite.snapshot\" }\nexpect = { points = 42 }",
        &site.backups_grant("ro"),
        "",
    ));
    let outputs = site.outputs(&runbook, 0);
    assert_eq!(site.q.points("docs"), Some(42));
    assert_eq!(outputs["checksum"], sum.as_str());
    assert_eq!(stored(&site.q, outputs["emergency"]["name"].as_str().unwrap()).points, 150);

    let requests = site.q.requests();
    let upload = &requests[position(&requests, "POST", "/collections/docs/snapshots/upload")];
    assert_eq!(upload.path, format!("/collections/docs/snapshots/upload?wait=true&priority=snapshot&checksum={sum}"));
    let content_type = upload.header("content-type").unwrap();
    let boundary = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
    assert_eq!(multipart_field(&upload.body, boundary, "snapshot").unwrap(), bytes);
    assert_eq!(upload.header("content-length").unwrap(), upload.body.len().to_string(), "a known length, not chunked");
    assert!(upload.header("transfer-encoding").is_none());
    assert!(
        position(&requests, "POST", "/collections/docs/snapshots?wait=true")
            < position(&requests, "POST", "/collections/docs/snapshots/upload")
    );
}

#[test]
fn restore_from_a_url_is_fetched_by_qdrant_which_never_gets_the_key() {
    let site = Site::new();
    site.q.require_api_key(KEY);
    let bytes = QdrantDouble::snapshot_bytes("docs", 7, "from the file server");
    let sum = sha256_file({
        let p = site.backups.join("x.snapshot");
        std::fs::write(&p, &bytes).unwrap();
        p
    });
    let files = TestServer::start(move |_, _| Response::bytes(200, bytes.clone()));
    let runbook = site.runbook(&site.step(
        "restore",
        &format!(
            "action = \"restore\"\napi_key_env = \"QDRANT_API_KEY\"\nsource = {{ url = \"{}/x.snapshot\", checksum = \"{sum}\" }}",
            files.url()
        ),
        "env = [\"QDRANT_API_KEY\"]",
        "",
    ));
    let outputs = site.outputs(&runbook, 0);
    assert_eq!(site.q.points("docs"), Some(7));
    assert_eq!(outputs["source"]["url"], format!("{}/x.snapshot", files.url()));
    // Qdrant fetched it (the plugin's grant names only Qdrant), without the key.
    assert_eq!(files.requests().len(), 1);
    assert!(files.requests()[0].header("api-key").is_none());
    let requests = site.q.requests();
    let recover = &requests[position(&requests, "PUT", "/collections/docs/snapshots/recover")];
    assert_eq!(json_body(recover).get("api_key"), None);
    assert_eq!(json_body(recover)["checksum"], sum.as_str());
}

#[test]
fn undo_recovers_the_emergency_snapshot_with_its_checksum() {
    let (site, good) = site_with_good_snapshot();
    let runbook = restore_by_name(&site, &good.name, "");
    let outputs = site.outputs(&runbook, 0);
    assert_eq!(site.q.points("docs"), Some(100));
    let emergency = stored(&site.q, outputs["emergency"]["name"].as_str().unwrap());

    // Written to since the run: undo would lose that, so it refuses and changes nothing.
    site.q.set_points("docs", 101);
    let refused = site.undo(&runbook, &outputs).unwrap_err();
    assert!(refused.contains("Precondition") && refused.contains("101 points, not the 100"), "{refused}");
    assert_eq!(site.q.points("docs"), Some(101));

    site.q.set_points("docs", 100);
    let summary = site.undo(&runbook, &outputs).unwrap();
    assert!(summary.contains(&emergency.name), "{summary}");
    assert_eq!(site.q.points("docs"), Some(150), "the emergency snapshot's count is back");
    let requests = site.q.requests();
    let last = requests.iter().rev().find(|r| r.method == "PUT").unwrap();
    assert_eq!(
        json_body(last),
        json!({ "location": format!("{}/collections/docs/snapshots/{}", site.q.url(), emergency.name),
                "priority": "snapshot", "checksum": emergency.checksum })
    );
}

/// `verify` fails after the restore changed the collection: run's outputs
/// were journaled before verify ran, so the default policy undoes the step
/// with them, and the emergency snapshot brings the points back.
#[test]
fn a_wrong_count_fails_verify_and_the_policy_undoes_it_from_the_kept_outputs() {
    let (site, good) = site_with_good_snapshot();
    let runbook = site.runbook(&site.step(
        "restore",
        &format!(
            "action = \"restore\"\nsource = {{ name = \"{}\" }}\nexpect = {{ points = 120, tolerance = \"10%\" }}",
            good.name
        ),
        "",
        "",
    ));
    let (out, report) = site.run_json(&runbook);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    let step = &report["run"]["steps"][0];
    assert_eq!(step["failed_in"], "verify", "{}", out.all());
    assert!(
        out.all().contains("had 100 points right after the restore (exact count), expected 120 ± 10%"),
        "{}",
        out.all()
    );
    // The host kept run's outputs when verify failed: undo had the emergency snapshot.
    let outputs = step["outputs"].clone();
    assert!(outputs["emergency"]["name"].is_string(), "{outputs}");
    assert_eq!(step["undo"]["state"], "undone", "{}", out.all());
    assert_eq!(site.q.points("docs"), Some(150), "the emergency snapshot's points are back");
}

#[test]
fn a_500_mid_restore_shows_qdrants_error_and_the_emergency_snapshot_brings_it_back() {
    let (site, good) = site_with_good_snapshot();
    let error = "Service internal error: No space left on device (os error 28)";
    site.q.fail_next_recover(error);
    let out = site.backout(&["run", "--yes"], &restore_by_name(&site, &good.name, ""));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(
        out.all().contains(&format!("Qdrant answered 500 to PUT /collections/docs/snapshots/recover: {error}")),
        "{}",
        out.all()
    );
    assert_eq!(site.q.status("docs").as_deref(), Some("red"));
    assert!(out.all().contains("the collection now reports status red"), "{}", out.all());

    // The message names the emergency snapshot, which holds the 150 points.
    let emergency = site.q.snapshots("docs").into_iter().find(|s| s.name != good.name).unwrap();
    assert_eq!(emergency.points, 150);
    assert!(
        out.all().contains(&format!("the emergency snapshot `{}` (sha256 {})", emergency.name, emergency.checksum)),
        "{}",
        out.all()
    );

    // Following the message restores the collection.
    let back = site.runbook(&site.step(
        "back",
        &format!("action = \"restore\"\nsource = {{ name = \"{}\" }}\nexpect = {{ points = 150 }}", emergency.name),
        "",
        "",
    ));
    site.outputs(&back, 0);
    assert_eq!((site.q.points("docs"), site.q.status("docs").as_deref()), (Some(150), Some("green")));
}

#[test]
fn a_create_answered_too_late_is_reconciled_by_listing_not_resent() {
    let site = Site::new();
    site.q.delay_next_change(Duration::from_secs(4));
    let runbook = site.runbook(&site.step("snap", "action = \"create\"\ntimeout = \"1s\"", "", ""));
    let (out, report) = site.run_json(&runbook);
    assert_eq!(out.code, 0, "{}", out.all());
    let outputs = &report["run"]["steps"][0]["outputs"];
    let snapshots = site.q.snapshots("docs");
    assert_eq!(snapshots.len(), 1, "one snapshot: the create was not sent twice");
    assert_eq!(outputs["name"], snapshots[0].name.as_str());
    assert_eq!(outputs["checksum"], snapshots[0].checksum.as_str());
    assert_eq!(outputs["reconciled"], true);
    assert!(out.stderr.contains("the outcome is unknown") && out.stderr.contains("not sent again"), "{}", out.all());

    let requests = site.q.requests();
    let posts =
        requests.iter().filter(|r| r.method == "POST" && r.path.starts_with("/collections/docs/snapshots")).count();
    assert_eq!(posts, 1, "{:?}", request_lines(&requests));
    let create = position(&requests, "POST", "/collections/docs/snapshots");
    assert!(
        requests[create + 1..].iter().any(|r| r.method == "GET" && r.path == "/collections/docs/snapshots"),
        "listed again after the create: {:?}",
        request_lines(&requests)
    );
}

#[test]
fn the_api_key_is_sent_as_api_key_and_never_shown() {
    let (site, good) = site_with_good_snapshot();
    site.q.require_api_key(KEY);
    let runbook = restore_by_name(&site, &good.name, "api_key_env = \"QDRANT_API_KEY\"");
    let runbook_text = std::fs::read_to_string(&runbook)
        .unwrap()
        .replace("[step.grants]\n", "[step.grants]\nenv = [\"QDRANT_API_KEY\"]\n");
    std::fs::write(&runbook, runbook_text).unwrap();

    let plan = site.backout(&["plan"], &runbook);
    assert_eq!(plan.code, 0, "{}", plan.all());
    let (out, report) = site.run_json(&runbook);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(site.q.points("docs"), Some(100));

    let requests = site.q.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.header("api-key"), Some(KEY), "{} {} went without the key", r.method, r.path);
    }
    // Qdrant fetches its own snapshot with the key from the recover body.
    let recover = &requests[position(&requests, "PUT", "/collections/docs/snapshots/recover")];
    assert_eq!(json_body(recover)["api_key"], KEY);

    for (what, text) in [
        ("plan", plan.all()),
        ("run", out.all()),
        ("outputs", report["run"]["steps"][0]["outputs"].to_string()),
        ("journal", site.sb.journals()),
    ] {
        assert!(!text.contains(KEY), "the API key appears in the {what}:\n{text}");
    }
    assert!(site.sb.journals().contains("step-finished"), "the journal was written");
}

#[test]
fn a_url_outside_the_grant_is_refused_before_any_request() {
    let site = Site::new();
    let elsewhere = TestServer::start(|_, _| Response::json(200, &json!({ "title": "qdrant", "version": "1.19.0" })));
    // The step names another server than the one it is granted.
    let step = site
        .step("snap", "action = \"create\"", "", "")
        .replace(&format!("url = \"{}\"", site.q.url()), &format!("url = \"{}\"", elsewhere.url()));
    let runbook = site.runbook(&step);
    for args in [&["plan"][..], &["run", "--yes"][..]] {
        let out = site.backout(args, &runbook);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(out.stderr.contains("invalid config"), "{}", out.all());
        assert!(out.stderr.contains("`net` grant"), "{}", out.all());
        assert!(out.stderr.contains(&site.q.url()), "the message names the grant:\n{}", out.all());
    }
    assert_eq!(elsewhere.count(), 0, "{:?}", elsewhere.requests());
    assert!(site.q.requests().is_empty());
    assert!(site.q.snapshots("docs").is_empty());
}

#[test]
fn plan_only_reads_and_says_what_will_change() {
    let (site, good) = site_with_good_snapshot();
    let runbook = restore_by_name(&site, &good.name, "source_version = \"1.17.2\"");
    let out = site.backout(&["plan"], &runbook);
    assert_eq!(out.code, 0, "{}", out.all());
    for expected in [
        "reach Qdrant at",
        "qdrant - vector search engine 1.19.0",
        "2 minor versions ahead of the snapshot's 1.17.2",
        "create an emergency snapshot of collection `docs` first",
        "about 150 points",
        &format!("recover from snapshot `{}` on the server", good.name),
        &good.checksum,
        "exactly 100 points (an exact count, taken by run right after the recovery)",
    ] {
        assert!(out.stdout.contains(expected), "plan lacks `{expected}`:\n{}", out.all());
    }
    let requests = site.q.requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "{:?}", request_lines(&requests));
    assert_eq!(site.q.snapshots("docs").len(), 1, "plan created nothing");
    assert_eq!(site.q.points("docs"), Some(150));
}

#[test]
fn prune_keeps_the_newest_and_never_what_this_run_created() {
    let site = Site::new();
    let old: Vec<SnapshotInfo> = (0..4).map(|_| site.q.take_snapshot("docs")).collect();
    let steps = site.step("snap", "action = \"create\"", "", "")
        + &site.step(
            "prune",
            &format!(
                "action = \"prune\"\nkeep_last = 2\nprotect = [\"${{steps.snap.outputs.name}}\", \"{}\"]",
                old[0].name
            ),
            "",
            "",
        );
    let (out, report) = site.run_json(&site.runbook(&steps));
    assert_eq!(out.code, 0, "{}", out.all());
    let created = report["run"]["steps"][0]["outputs"]["name"].as_str().unwrap().to_owned();
    let mut left: Vec<String> = site.q.snapshots("docs").into_iter().map(|s| s.name).collect();
    left.sort();
    let mut expected = vec![old[0].name.clone(), old[3].name.clone(), created];
    expected.sort();
    assert_eq!(left, expected);
    let deleted: Vec<&str> = report["run"]["steps"][1]["outputs"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, [old[2].name.as_str(), old[1].name.as_str()]);
}

/// The database-rollback runbook of the plugin's README: restore the
/// collection (emergency snapshot first, exact count verified), keep a copy
/// of the emergency snapshot off the server, then a smoke test of `/readyz`.
#[test]
fn runbook_emergency_snapshot_restore_verify_and_smoke_test() {
    let (site, good) = site_with_good_snapshot();
    site.sb.add(SMOKE_TEST);
    let url = site.q.url();
    let steps = site.step(
        "restore-vectors",
        &format!("action = \"restore\"\nsource = {{ name = \"{}\" }}\nexpect = {{ points = 100 }}", good.name),
        "",
        "",
    ) + &site.step(
        "keep-emergency",
        "action = \"download\"\nsnapshot = \"${steps.restore-vectors.outputs.emergency.name}\"\nto = \"/backups\"",
        &site.backups_grant("rw"),
        "",
    ) + &format!(
        "[[step]]\nid = \"smoke\"\nuses = \"smoke-test@0.1\"\n\n[step.grants]\nnet = [\"{url}\"]\n\n\
         [[step.with.checks]]\nname = \"qdrant ready\"\nurl = \"{url}/readyz\"\n\
         expect = {{ status = 200, body_contains = \"all shards are ready\" }}\n"
    );
    let (out, report) = site.run_json(&site.runbook(&steps));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(report["run"]["succeeded"], true);
    assert_eq!(site.q.points("docs"), Some(100));

    let emergency = report["run"]["steps"][0]["outputs"]["emergency"].clone();
    let kept = stored(&site.q, emergency["name"].as_str().unwrap());
    assert_eq!(kept.points, 150);
    assert_eq!(site.backup_files(), [kept.name.as_str()]);
    assert_eq!(sha256_file(site.backups.join(&kept.name)), kept.checksum);
    assert_eq!(report["run"]["steps"][1]["outputs"]["sha256"], emergency["checksum"]);

    // The smoke test ran last, after the recovery.
    let requests = site.q.requests();
    let recover = position(&requests, "PUT", "/collections/docs/snapshots/recover");
    let last_readyz = requests.iter().rposition(|r| r.path == "/readyz").unwrap();
    assert!(last_readyz > recover);
    assert_eq!(requests.last().unwrap().path, "/readyz", "{:?}", request_lines(&requests));
}
