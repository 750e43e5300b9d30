//! The operations against a small in-memory Qdrant (native, no host): the
//! order of requests, reconciliation, refusals and messages. The real wire
//! format and the real host are covered by `tests/e2e/qdrant.rs`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use backout_sdk::Validate;
use backout_sdk::http::{Body, Error as HttpError, Request, Response, ResponseHead};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::config::Config;
use crate::multipart::Multipart;

const KEY: &str = "qd-secret-key-123";
const BASE: &str = "http://127.0.0.1:6333";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What the next matching request gets instead of an answer.
#[derive(Debug, Clone)]
enum Fault {
    /// Do it, then time out (the answer is lost).
    DoThenTimeout,
    /// Answer this status and body without doing anything.
    Answer(u16, String),
    /// Time out without doing it (lost before Qdrant acted).
    Lose,
    /// Another client creates one too, then this one's answer is lost.
    DoTwiceThenTimeout,
}

#[derive(Debug, Default)]
struct Fake {
    points: Option<u64>,
    status: String,
    /// name → (description, points, bytes)
    snapshots: BTreeMap<String, (Snapshot, u64, Vec<u8>)>,
    clock: u32,
    seen: Vec<Seen>,
    faults: Vec<(String, Fault)>,
    required_key: Option<String>,
    corrupt_download: bool,
    /// As the host during `plan` and `verify`: only GET and HEAD.
    read_only: bool,
    granted: bool,
    env: BTreeMap<String, String>,
    logs: Vec<String>,
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Fake {
    fn new(points: u64) -> Self {
        Self { points: Some(points), status: "green".into(), granted: true, ..Self::default() }
    }

    fn add_snapshot(&mut self, points: u64) -> Snapshot {
        self.clock += 1;
        let name = format!("docs-7-2026-11-23-11-00-{:02}.snapshot", self.clock);
        let bytes = format!("snapshot {name} points={points}").into_bytes();
        let s = Snapshot {
            name: name.clone(),
            creation_time: Some(format!("2026-11-23T11:00:{:02}", self.clock)),
            size: bytes.len() as u64,
            checksum: Some(digest(&bytes)),
        };
        self.snapshots.insert(name, (s.clone(), points, bytes));
        s
    }

    fn fault(&mut self, prefix: &str, fault: Fault) {
        self.faults.push((prefix.to_owned(), fault));
    }

    fn methods(&self) -> Vec<String> {
        self.seen.iter().map(|s| format!("{} {}", s.method, s.path)).collect()
    }

    fn ok(result: Value) -> (u16, Vec<u8>) {
        (200, json!({ "result": result, "status": "ok", "time": 0.001 }).to_string().into_bytes())
    }

    fn error(status: u16, text: &str) -> (u16, Vec<u8>) {
        (status, json!({ "status": { "error": text }, "time": 0.001 }).to_string().into_bytes())
    }

    fn answer(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        match (method, route) {
            ("GET", "/") => (200, br#"{"title":"qdrant - vector search engine","version":"1.19.0"}"#.to_vec()),
            ("GET", "/readyz") => (200, b"all shards are ready".to_vec()),
            ("GET", "/collections/docs") => match self.points {
                Some(p) => Self::ok(json!({ "status": self.status, "points_count": p })),
                None => Self::error(404, "Not found: Collection `docs` doesn't exist!"),
            },
            ("POST", "/collections/docs/points/count") => {
                assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), json!({ "exact": true }));
                Self::ok(json!({ "count": self.points.unwrap() }))
            }
            ("GET", "/collections/docs/snapshots") => Self::ok(
                serde_json::to_value(self.snapshots.values().map(|v| v.0.clone()).collect::<Vec<_>>()).unwrap(),
            ),
            ("POST", "/collections/docs/snapshots") => {
                assert_eq!(query, "wait=true");
                let s = self.add_snapshot(self.points.unwrap());
                Self::ok(serde_json::to_value(s).unwrap())
            }
            ("PUT", "/collections/docs/snapshots/recover") => {
                assert_eq!(query, "wait=true");
                let b: Value = serde_json::from_slice(body).unwrap();
                let location = b["location"].as_str().unwrap();
                let name = location.split('?').next().unwrap().rsplit('/').next().unwrap();
                let Some((_, points, bytes)) = self.snapshots.get(name).cloned() else {
                    return Self::error(400, "Bad request: snapshot not found");
                };
                if let Some(sum) = b["checksum"].as_str()
                    && sum != digest(&bytes)
                {
                    return Self::error(400, "Bad request: Snapshot checksum mismatch");
                }
                self.points = Some(points);
                Self::ok(json!(true))
            }
            ("POST", "/collections/docs/snapshots/upload") => {
                let text = String::from_utf8_lossy(body).to_string();
                let points: u64 = text.split("points=").nth(1).unwrap().split('\r').next().unwrap().parse().unwrap();
                self.points = Some(points);
                Self::ok(json!(true))
            }
            ("GET", r) if r.starts_with("/collections/docs/snapshots/") => {
                let name = r.rsplit('/').next().unwrap();
                match self.snapshots.get(name) {
                    Some((_, _, bytes)) => {
                        let mut bytes = bytes.clone();
                        if self.corrupt_download {
                            bytes[0] ^= 1;
                        }
                        (200, bytes)
                    }
                    None => Self::error(404, "Not found: Snapshot not found"),
                }
            }
            ("DELETE", r) if r.starts_with("/collections/docs/snapshots/") => {
                let name = r.rsplit('/').next().unwrap();
                match self.snapshots.remove(name) {
                    Some(_) => Self::ok(json!(true)),
                    None => Self::error(404, "Not found: Snapshot not found"),
                }
            }
            other => panic!("unexpected request {other:?}"),
        }
    }

    fn handle(&mut self, mut request: Request) -> Result<Response, HttpError> {
        let path = request.url.strip_prefix(BASE).expect("only the configured base").to_owned();
        let body = match std::mem::replace(&mut request.body, Body::Empty) {
            Body::Empty => Vec::new(),
            Body::Bytes(b) => b,
            Body::Reader { mut reader, len } => {
                let mut b = Vec::new();
                reader.read_to_end(&mut b).unwrap();
                assert_eq!(Some(b.len() as u64), len, "the announced length");
                b
            }
        };
        if self.read_only && !matches!(request.method.as_str(), "GET" | "HEAD") {
            return Err(HttpError::Denied(format!(
                "`verify` may only send GET and HEAD requests, not {}",
                request.method
            )));
        }
        self.seen.push(Seen {
            method: request.method.clone(),
            path: path.clone(),
            headers: request.headers.clone(),
            body: body.clone(),
        });
        if let Some(required) = &self.required_key
            && !path.starts_with("/?")
            && path != "/"
            && request.headers.iter().find(|(n, _)| n == "api-key").map(|(_, v)| v) != Some(required)
        {
            return Ok(Response { status: 401, headers: vec![], body: b"Invalid API key or JWT".to_vec() });
        }
        let key = format!("{} {}", request.method, path);
        if let Some(i) = self.faults.iter().position(|(p, _)| key.starts_with(p.as_str())) {
            let (_, fault) = self.faults.remove(i);
            match fault {
                Fault::DoThenTimeout => {
                    self.answer(&request.method, &path, &body);
                    return Err(HttpError::Timeout(format!("{} took longer than 1s", key)));
                }
                Fault::Lose => return Err(HttpError::Timeout(format!("{key} took longer than 1s"))),
                Fault::DoTwiceThenTimeout => {
                    self.answer(&request.method, &path, &body);
                    self.answer(&request.method, &path, &body);
                    return Err(HttpError::Timeout(format!("{key} took longer than 1s")));
                }
                Fault::Answer(status, text) => {
                    return Ok(Response { status, headers: vec![], body: Fake::error(status, &text).1 });
                }
            }
        }
        let (status, body) = self.answer(&request.method, &path, &body);
        Ok(Response { status, headers: vec![], body })
    }
}

/// The fake behind the `Env` the operations use.
#[derive(Clone)]
struct Shared(Rc<RefCell<Fake>>);

impl Env for Shared {
    fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        self.0.borrow_mut().handle(request)
    }
    fn send_to(&mut self, request: Request, sink: &mut dyn Write) -> Result<ResponseHead, HttpError> {
        let r = self.0.borrow_mut().handle(request)?;
        sink.write_all(&r.body).unwrap();
        Ok(ResponseHead { status: r.status, headers: r.headers })
    }
    fn check(&mut self, method: &str, url: &str) -> Result<(), String> {
        assert_eq!(method, "GET");
        if self.0.borrow().granted && url.starts_with(BASE) {
            Ok(())
        } else {
            Err(format!("{url} is not granted (the step's `net` grant: http://127.0.0.1:9999)"))
        }
    }
    fn var(&self, name: &str) -> Option<String> {
        self.0.borrow().env.get(name).cloned()
    }
    fn sleep(&mut self, _duration: Duration) {}
    fn info(&mut self, line: String) {
        self.0.borrow_mut().logs.push(line);
    }
    fn warn(&mut self, line: String) {
        self.0.borrow_mut().logs.push(format!("warn: {line}"));
    }
    fn progress_reporter(&self) -> Box<dyn FnMut(u64, Option<u64>)> {
        Box::new(|_, _| {})
    }
}

fn shared(fake: Fake) -> Shared {
    Shared(Rc::new(RefCell::new(fake)))
}

fn valid(with: Value) -> Valid {
    let mut config = json!({ "url": BASE, "collection": "docs" });
    for (k, v) in with.as_object().unwrap() {
        config[k] = v.clone();
    }
    serde_json::from_value::<Config>(config).unwrap().validate().unwrap()
}

#[test]
fn plan_sends_only_gets_and_says_what_restore_will_do() {
    let mut fake = Fake::new(150);
    let s = fake.add_snapshot(100);
    fake.read_only = true;
    let mut env = shared(fake);
    let v = valid(json!({ "action": "restore", "source": { "name": s.name }, "expect": { "points": 100 } }));
    let actions = plan(&v, &mut env).unwrap();
    let text: Vec<String> =
        actions.iter().map(|a| format!("{} | {}", a.summary, a.detail.clone().unwrap_or_default())).collect();
    let all = text.join("\n");
    assert!(all.contains("qdrant - vector search engine 1.19.0"), "{all}");
    assert!(all.contains("create an emergency snapshot of collection `docs` first"), "{all}");
    assert!(all.contains(&format!("recover from snapshot `{}` on the server", s.name)), "{all}");
    assert!(all.contains(s.checksum.as_deref().unwrap()), "{all}");
    assert!(all.contains("exactly 100 points"), "{all}");
    let fake = env.0.borrow();
    assert!(fake.seen.iter().all(|r| r.method == "GET"), "{:?}", fake.methods());
    assert_eq!(fake.snapshots.len(), 1, "plan created nothing");
}

#[test]
fn an_ungranted_url_is_an_invalid_config_naming_the_grant() {
    let mut fake = Fake::new(1);
    fake.granted = false;
    let mut env = shared(fake);
    let e = plan(&valid(json!({ "action": "list" })), &mut env).unwrap_err();
    match e {
        StepError::InvalidConfig(m) => {
            assert!(m.contains("`net` grant") && m.contains("http://127.0.0.1:9999"), "{m}");
            assert!(m.contains("net = [\"http://127.0.0.1:6333\"]"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(env.0.borrow().seen.is_empty());
}

#[test]
fn restore_by_name_takes_the_emergency_snapshot_first_and_sends_the_checksum() {
    let mut fake = Fake::new(150);
    let s = fake.add_snapshot(100);
    fake.required_key = Some(KEY.into());
    fake.env.insert("QDRANT_API_KEY".into(), KEY.into());
    let mut env = shared(fake);
    let v = valid(json!({ "action": "restore", "source": { "name": s.name }, "api_key_env": "QDRANT_API_KEY" }));
    let outcome = run(&v, &mut env).unwrap();
    let Outputs::Restore(o) = &outcome.outputs else { panic!() };
    let fake = env.0.borrow();
    assert_eq!(fake.points, Some(100));
    let emergency = o.emergency.clone().unwrap();
    assert_eq!(emergency.points, Some(150));
    assert_eq!(fake.snapshots[&emergency.name].1, 150, "the emergency snapshot holds the old count");
    assert_eq!((o.points_before, o.points_after), (Some(150), Some(100)));
    assert_eq!(o.checksum, s.checksum);
    let order: Vec<String> = fake.methods().into_iter().filter(|m| !m.starts_with("GET")).collect();
    assert_eq!(
        order,
        [
            "POST /collections/docs/points/count",
            "POST /collections/docs/snapshots?wait=true",
            "PUT /collections/docs/snapshots/recover?wait=true",
            "POST /collections/docs/points/count",
        ]
    );
    let recover = fake.seen.iter().find(|r| r.method == "PUT").unwrap();
    let body: Value = serde_json::from_slice(&recover.body).unwrap();
    assert_eq!(
        body,
        json!({ "location": format!("{BASE}/collections/docs/snapshots/{}", s.name), "priority": "snapshot",
                "checksum": s.checksum, "api_key": KEY })
    );
    assert!(fake.seen.iter().all(|r| r.headers.iter().any(|(n, v)| n == "api-key" && v == KEY)));
    // The key is nowhere in what the operator sees.
    let shown = format!("{} {} {:?}", outcome.summary, serde_json::to_string(&outcome.outputs).unwrap(), fake.logs);
    assert!(!shown.contains(KEY), "{shown}");
}

#[test]
fn a_500_on_recover_quotes_qdrant_and_names_the_emergency_snapshot() {
    let mut fake = Fake::new(150);
    let s = fake.add_snapshot(100);
    fake.fault(
        "PUT /collections/docs/snapshots/recover",
        Fault::Answer(500, "Service internal error: No space left on device".into()),
    );
    let mut env = shared(fake);
    let v = valid(json!({ "action": "restore", "source": { "name": s.name } }));
    let e = run(&v, &mut env).unwrap_err();
    let StepError::Failed(m) = e else { panic!("{e:?}") };
    assert!(m.contains("Qdrant answered 500 to PUT /collections/docs/snapshots/recover: Service internal error: No space left on device"), "{m}");
    let fake = env.0.borrow();
    let emergency = fake.snapshots.keys().find(|n| **n != s.name).unwrap();
    assert!(m.contains(&format!("the emergency snapshot `{emergency}`")), "{m}");
    assert!(m.contains("the collection now reports status green"), "{m}");
}

#[test]
fn a_recover_without_an_answer_is_not_resent_and_names_the_emergency_snapshot() {
    let mut fake = Fake::new(150);
    let s = fake.add_snapshot(100);
    fake.fault("PUT /collections/docs/snapshots/recover", Fault::DoThenTimeout);
    let mut env = shared(fake);
    let e = run(&valid(json!({ "action": "restore", "source": { "name": s.name } })), &mut env).unwrap_err();
    let StepError::Failed(m) = e else { panic!("{e:?}") };
    let fake = env.0.borrow();
    let emergency = fake.snapshots.keys().find(|n| **n != s.name).unwrap();
    assert!(m.contains("the outcome is unknown") && m.contains("not sent again"), "{m}");
    assert!(m.contains("the collection now reports status green, about 100 points"), "{m}");
    assert!(m.contains(&format!("the emergency snapshot `{emergency}`")), "{m}");
    assert_eq!(fake.seen.iter().filter(|r| r.method == "PUT").count(), 1);
}

#[test]
fn a_create_without_an_answer_is_reconciled_by_listing_and_never_resent() {
    let mut fake = Fake::new(5);
    fake.fault("POST /collections/docs/snapshots", Fault::DoThenTimeout);
    let mut env = shared(fake);
    let outcome = run(&valid(json!({ "action": "create" })), &mut env).unwrap();
    let Outputs::Create(o) = outcome.outputs else { panic!() };
    let fake = env.0.borrow();
    assert!(o.reconciled);
    assert_eq!(fake.snapshots.keys().collect::<Vec<_>>(), [&o.name]);
    assert_eq!(fake.methods().iter().filter(|m| m.starts_with("POST")).count(), 1);
    assert!(
        fake.logs.iter().any(|l| l.contains("outcome is unknown") && l.contains("not sent again")),
        "{:?}",
        fake.logs
    );
}

#[test]
fn a_gateway_error_on_create_is_reported_not_reconciled() {
    let mut fake = Fake::new(5);
    fake.fault("POST /collections/docs/snapshots", Fault::Answer(504, "gateway timeout".into()));
    let mut env = shared(fake);
    let e = run(&valid(json!({ "action": "create" })), &mut env).unwrap_err();
    assert!(matches!(&e, StepError::Failed(m) if m.contains("504") && m.contains("was not created")), "{e:?}");
}

#[test]
fn a_lost_create_that_never_appears_is_transient_and_not_resent() {
    let mut fake = Fake::new(5);
    fake.add_snapshot(5);
    fake.fault("POST /collections/docs/snapshots", Fault::Lose);
    let mut env = shared(fake);
    let e = run(&valid(json!({ "action": "create" })), &mut env).unwrap_err();
    assert!(
        matches!(&e, StepError::Transient(m) if m.contains("no new snapshot appeared after listing 3 times")),
        "{e:?}"
    );
    let fake = env.0.borrow();
    let methods = fake.methods();
    assert_eq!(methods.iter().filter(|m| m.starts_with("POST")).count(), 1, "{methods:?}");
    assert_eq!(methods.iter().filter(|m| *m == "GET /collections/docs/snapshots").count(), 1 + 3, "{methods:?}");
    assert_eq!(fake.snapshots.len(), 1);
}

#[test]
fn two_new_snapshots_after_a_lost_create_are_not_claimed() {
    let mut fake = Fake::new(5);
    fake.fault("POST /collections/docs/snapshots", Fault::DoTwiceThenTimeout);
    let mut env = shared(fake);
    let e = run(&valid(json!({ "action": "create" })), &mut env).unwrap_err();
    assert!(
        matches!(&e, StepError::Failed(m) if m.contains("2 new snapshots") && m.contains("none is claimed")),
        "{e:?}"
    );
}

#[test]
fn a_download_is_checked_and_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap().to_owned();
    let mut fake = Fake::new(5);
    let s = fake.add_snapshot(5);
    let bytes = fake.snapshots[&s.name].2.clone();
    let mut env = shared(fake);
    let v = valid(json!({ "action": "download", "to": to }));
    let outcome = run(&v, &mut env).unwrap();
    let Outputs::Download(o) = outcome.outputs.clone() else { panic!() };
    assert_eq!(o.path, format!("{to}/{}", s.name));
    assert_eq!(std::fs::read(&o.path).unwrap(), bytes);
    assert_eq!(Some(o.sha256.clone()), s.checksum);
    env.0.borrow_mut().read_only = true;
    verify(&v, &outcome.outputs, &mut env).unwrap();
    env.0.borrow_mut().read_only = false;
    // Again: already there, nothing written.
    let again = run(&v, &mut env).unwrap();
    let Outputs::Download(o2) = again.outputs else { panic!() };
    assert!(o2.already_present);
    // Undo removes what the first run wrote.
    undo(&v, outcome.outputs, &mut env).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_planned_download_says_the_file_gets_the_default_mode_and_the_directory_must_keep_others_out() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap().to_owned();
    let mut fake = Fake::new(5);
    fake.add_snapshot(5);
    fake.read_only = true;
    let mut env = shared(fake);
    let actions = plan(&valid(json!({ "action": "download", "to": to })), &mut env).unwrap();
    let download = actions.iter().find(|a| a.summary.starts_with("download snapshot")).expect("a download action");
    let detail = download.detail.as_deref().unwrap();
    assert!(detail.contains("default file mode (0666 less its umask)"), "{detail}");
    assert!(detail.contains(&format!("keep {to} a directory only its owner can enter")), "{detail}");
}

#[test]
fn a_download_with_the_wrong_digest_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap().to_owned();
    let mut fake = Fake::new(5);
    let s = fake.add_snapshot(5);
    fake.corrupt_download = true;
    let mut env = shared(fake);
    let e = run(&valid(json!({ "action": "download", "to": to, "snapshot": s.name })), &mut env).unwrap_err();
    let StepError::Failed(m) = e else { panic!("{e:?}") };
    assert!(m.contains("not Qdrant's checksum") && m.contains("nothing was left"), "{m}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file, not even a temp file");
}

#[test]
fn a_download_answered_with_an_error_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap().to_owned();
    let mut fake = Fake::new(5);
    let s = fake.add_snapshot(5);
    fake.fault(
        &format!("GET /collections/docs/snapshots/{}", s.name),
        Fault::Answer(500, "Service internal error: broken".into()),
    );
    let mut env = shared(fake);
    let e = run(&valid(json!({ "action": "download", "to": to })), &mut env).unwrap_err();
    assert!(e.message().contains("Service internal error: broken"), "{e:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn restore_from_a_file_uploads_multipart_with_the_checksum_in_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.snapshot");
    std::fs::write(&file, b"snapshot x points=42").unwrap();
    let sum = digest(b"snapshot x points=42");
    let mut env = shared(Fake::new(7));
    let v = valid(json!({ "action": "restore", "source": { "file": file.to_str().unwrap() }, "priority": "replica" }));
    let outcome = run(&v, &mut env).unwrap();
    let Outputs::Restore(o) = outcome.outputs else { panic!() };
    assert_eq!(o.points_after, Some(42));
    assert_eq!(o.checksum.as_deref(), Some(sum.as_str()));
    let fake = env.0.borrow();
    let upload = fake.seen.iter().find(|r| r.path.contains("/upload")).unwrap();
    assert_eq!(upload.path, format!("/collections/docs/snapshots/upload?wait=true&priority=replica&checksum={sum}"));
    let ct = upload.headers.iter().find(|(n, _)| n == "content-type").unwrap().1.clone();
    let m = Multipart::for_file("x.snapshot", &sum);
    assert_eq!(ct, m.content_type());
    let mut expected = m.head.clone();
    expected.extend_from_slice(b"snapshot x points=42");
    expected.extend_from_slice(&m.tail);
    assert_eq!(upload.body, expected);
}

#[test]
fn a_url_source_on_another_origin_never_gets_the_key() {
    let mut fake = Fake::new(7);
    fake.env.insert("K".into(), KEY.into());
    let s = fake.add_snapshot(3);
    let mut env = shared(fake);
    let other = format!("https://backups.example/snap/{}?X-Amz-Signature=abc", s.name);
    let v = valid(
        json!({ "action": "restore", "source": { "url": other }, "api_key_env": "K", "emergency_snapshot": false }),
    );
    let outcome = run(&v, &mut env).unwrap();
    let fake = env.0.borrow();
    let recover = fake.seen.iter().find(|r| r.method == "PUT").unwrap();
    let body: Value = serde_json::from_slice(&recover.body).unwrap();
    assert_eq!(body.get("api_key"), None);
    assert_eq!(body.get("checksum"), None, "none given, none sent");
    let Outputs::Restore(o) = outcome.outputs else { panic!() };
    assert_eq!(o.source.url.as_deref(), Some(format!("https://backups.example/snap/{}?…", s.name).as_str()));
    assert!(o.emergency.is_none());
    assert!(o.warnings.iter().any(|w| w.contains("undo is not possible")));
}

#[test]
fn undo_recovers_the_emergency_snapshot_only_while_the_collection_is_unchanged() {
    let mut fake = Fake::new(150);
    let s = fake.add_snapshot(100);
    let mut env = shared(fake);
    let v = valid(json!({ "action": "restore", "source": { "name": s.name } }));
    let outcome = run(&v, &mut env).unwrap();
    let Outputs::Restore(o) = &outcome.outputs else { panic!() };
    let emergency = o.emergency.clone().unwrap();

    env.0.borrow_mut().points = Some(101);
    let e = undo(&v, outcome.outputs.clone(), &mut env).unwrap_err();
    assert!(matches!(&e, StepError::Precondition(m) if m.contains("101 points, not the 100")), "{e:?}");
    assert_eq!(env.0.borrow().points, Some(101), "nothing changed");

    env.0.borrow_mut().points = Some(100);
    let undone = undo(&v, outcome.outputs.clone(), &mut env).unwrap();
    assert_eq!(env.0.borrow().points, Some(150));
    let Outputs::Restore(u) = undone.outputs else { panic!() };
    assert_eq!(u.undone_from.as_deref(), Some(emergency.name.as_str()));
    let fake = env.0.borrow();
    let last = fake.seen.iter().rev().find(|r| r.method == "PUT").unwrap();
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["checksum"].as_str(), emergency.checksum.as_deref());
}

#[test]
fn undo_of_a_create_deletes_only_the_snapshot_it_created() {
    let mut env = shared(Fake::new(5));
    let v = valid(json!({ "action": "create" }));
    let outcome = run(&v, &mut env).unwrap();
    let Outputs::Create(o) = outcome.outputs.clone() else { panic!() };
    // Tampered: the same name with other bytes.
    env.0.borrow_mut().snapshots.get_mut(&o.name).unwrap().0.checksum = Some("0".repeat(64));
    assert!(matches!(undo(&v, outcome.outputs.clone(), &mut env), Err(StepError::Precondition(_))));
    env.0.borrow_mut().snapshots.get_mut(&o.name).unwrap().0.checksum = o.checksum.clone();
    undo(&v, outcome.outputs.clone(), &mut env).unwrap();
    assert!(env.0.borrow().snapshots.is_empty());
    // Again: nothing to undo.
    let again = undo(&v, outcome.outputs, &mut env).unwrap();
    assert!(again.summary.starts_with("nothing to undo"), "{}", again.summary);
}

#[test]
fn prune_keeps_the_newest_and_the_protected() {
    let mut fake = Fake::new(5);
    let s: Vec<Snapshot> = (0..5).map(|_| fake.add_snapshot(5)).collect();
    let mut env = shared(fake);
    let v = valid(json!({ "action": "prune", "keep_last": 2, "protect": [s[0].name] }));
    let outcome = run(&v, &mut env).unwrap();
    let Outputs::Prune(o) = &outcome.outputs else { panic!() };
    let deleted: Vec<&str> = o.deleted.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(deleted, [s[2].name.as_str(), s[1].name.as_str()]);
    let left: Vec<String> = env.0.borrow().snapshots.keys().cloned().collect();
    assert_eq!(left, [s[0].name.clone(), s[3].name.clone(), s[4].name.clone()]);
    env.0.borrow_mut().read_only = true;
    verify(&v, &outcome.outputs, &mut env).unwrap();
    env.0.borrow_mut().read_only = false;
    assert!(matches!(undo(&v, outcome.outputs, &mut env), Err(StepError::Precondition(_))));
}

#[test]
fn create_with_keep_last_never_deletes_the_new_snapshot() {
    let mut fake = Fake::new(5);
    for _ in 0..3 {
        fake.add_snapshot(5);
    }
    let mut env = shared(fake);
    let outcome = run(&valid(json!({ "action": "create", "keep_last": 1 })), &mut env).unwrap();
    let Outputs::Create(o) = outcome.outputs else { panic!() };
    assert_eq!(o.pruned.len(), 3);
    assert_eq!(env.0.borrow().snapshots.keys().collect::<Vec<_>>(), [&o.name]);
}

#[test]
fn verify_checks_status_readyz_and_the_exact_count() {
    let mut fake = Fake::new(150);
    let s = fake.add_snapshot(100);
    let mut env = shared(fake);
    let v = valid(
        json!({ "action": "restore", "source": { "name": s.name }, "expect": { "points": 98, "tolerance": 1, "status": ["green"] } }),
    );
    let outcome = run(&v, &mut env).unwrap();
    env.0.borrow_mut().read_only = true;
    let e = verify(&v, &outcome.outputs, &mut env).unwrap_err();
    assert!(
        matches!(&e, StepError::Precondition(m) if m.contains("had 100 points right after the restore (exact count), expected 98 ± 1") && m.contains("emergency snapshot")),
        "{e:?}"
    );
    env.0.borrow_mut().status = "yellow".into();
    let v = valid(json!({ "action": "restore", "source": { "name": s.name }, "expect": { "points": 100 } }));
    verify(&v, &outcome.outputs, &mut env).unwrap();
    env.0.borrow_mut().status = "red".into();
    let e = verify(&v, &outcome.outputs, &mut env).unwrap_err();
    assert!(e.message().contains("status `red`, expected `green` or `yellow`"), "{e:?}");
}

#[test]
fn a_missing_api_key_variable_is_an_invalid_config() {
    let mut env = shared(Fake::new(1));
    let e = plan(&valid(json!({ "action": "list", "api_key_env": "QDRANT_API_KEY" })), &mut env).unwrap_err();
    assert!(matches!(&e, StepError::InvalidConfig(m) if m.contains("env = [\"QDRANT_API_KEY\"]")), "{e:?}");
}

#[test]
fn a_refused_key_says_so_without_showing_it() {
    let mut fake = Fake::new(1);
    fake.required_key = Some("the-right-one".into());
    fake.env.insert("K".into(), KEY.into());
    let mut env = shared(fake);
    let e = run(&valid(json!({ "action": "list", "api_key_env": "K" })), &mut env).unwrap_err();
    let StepError::Precondition(m) = e else { panic!("{e:?}") };
    assert!(m.contains("401") && m.contains("Invalid API key or JWT") && m.contains("refused the API key"), "{m}");
    assert!(!m.contains(KEY));
}

#[test]
fn outputs_of_another_action_are_refused() {
    let mut env = shared(Fake::new(1));
    let listed = run(&valid(json!({ "action": "list" })), &mut env).unwrap();
    let e = verify(&valid(json!({ "action": "create" })), &listed.outputs, &mut env).unwrap_err();
    assert!(matches!(e, StepError::InvalidConfig(_)));
}
