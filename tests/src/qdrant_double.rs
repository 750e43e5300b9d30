//! A **test double** of Qdrant's REST API: not Qdrant, but a small server
//! that answers the endpoints the `qdrant-snapshot` plugin uses the way
//! Qdrant's OpenAPI document v1.19.0 (`/work/shared/reference/
//! qdrant-openapi-v1.19.0.json`) and the observed answers of a real Qdrant
//! 1.19.0 (`FACTS.md`) describe them, so the plugin's tests run against
//! real HTTP on a real socket with real files, where Qdrant itself cannot run.
//!
//! It is built on [`TestServer`] (a real HTTP/1.1 server that records every
//! request with its headers) and keeps a **real on-disk store**: each
//! collection's snapshots are files in a temp directory
//! (`<dir>/<collection>/<name>`, with Qdrant's `<name>.checksum` beside
//! each), and each collection has a point count. A snapshot file records the
//! count it was taken at; recovering it (by `location` or by upload) sets the
//! collection to that count, so a test can prove which snapshot is in place.
//!
//! Implemented, as the document describes them (status codes, the
//! `{"result": …, "status": "ok", "time": …}` envelope, error bodies
//! `{"status": {"error": "…"}, "time": …}`, `202 {"status": "accepted",
//! "time": …}` with no `result` for `wait=false`):
//!
//! * `GET /` (`VersionInfo`), `GET /healthz`, `GET /livez`, `GET /readyz`
//!   (200 `all shards are ready` / 503 `some shards are not ready`); these
//!   need no key, as in Qdrant;
//! * `GET /collections/{c}` (`CollectionInfo` with `status` and the
//!   approximate `points_count`), `GET /collections/{c}/exists`,
//!   `POST /collections/{c}/points/count` (`CountRequest`; the double's
//!   count is always exact);
//! * `GET|POST /collections/{c}/snapshots` (list, create), `GET|DELETE
//!   /collections/{c}/snapshots/{name}` (download as octet-stream, delete),
//!   `PUT /collections/{c}/snapshots/recover` (`SnapshotRecover`: `location`
//!   required, `priority` one of `no_sync`/`snapshot`/`replica`, `checksum`
//!   verified before anything changes, `api_key` used to fetch the location),
//!   `POST /collections/{c}/snapshots/upload?wait&priority&checksum`
//!   (`multipart/form-data`, field `snapshot`, parsed for real);
//! * the `api-key` header (or `Authorization: Bearer`) when a key is
//!   required: 401 with a plain-text body, as Qdrant's auth layer answers.
//!
//! Not implemented (and where it differs from Qdrant): snapshot files are
//! not tar archives but a small text header plus filler bytes; points,
//! vectors and payloads do not exist beyond a count; `wait=false` still
//! carries the change out before answering 202; `priority` is checked but has
//! no effect (one node, no replicas); a `location` on the double's own
//! address is read from its store instead of over HTTP (it still requires the
//! body's `api_key` when a key is configured, as Qdrant's download from
//! itself would), other `http://` locations are fetched with a plain HTTP
//! GET (sending `api_key` as the `api-key` header, as Qdrant does), `https`
//! and `file://` locations are refused; snapshot times advance at least one
//! second per snapshot so names never collide (a real server would collide
//! within a second); no full-storage or shard snapshots, no cluster, no
//! other endpoints (404 with an empty body, as an unknown route gets); the
//! error texts are close to Qdrant's but not guaranteed to be identical.
//!
//! Faults a test can inject: a 500 on the next recover or upload (after the
//! checksum check, leaving the collection `red` with 0 points, as a
//! recovery that broke midway), the next download cut after N bytes or with
//! one byte flipped, the next change (create, delete, recover, upload)
//! carried out but answered only after a delay (an "outcome unknown" for a
//! client whose timeout is shorter), `/readyz` answering 503, a required key.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::Digest;

use crate::http_server::{Recorded, Response, TestServer};

/// The version the double reports by default: the document it follows.
pub const VERSION: &str = "1.19.0";

/// The peer id in snapshot names (`{collection}-{peer}-{time}.snapshot`).
pub const PEER_ID: u64 = 3_953_992_725_780_281;

/// Bytes of filler after a snapshot file's header, so downloads span many
/// reads and can be cut midway.
const FILLER: usize = 48 * 1024;

/// One snapshot as the double stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    /// sha256 hex of the file, as `<name>.checksum` holds it.
    pub checksum: String,
    pub size: u64,
    pub creation_time: String,
    /// The point count the snapshot was taken at.
    pub points: u64,
}

#[derive(Debug, Clone)]
struct Collection {
    points: u64,
    status: String,
}

#[derive(Debug, Default)]
struct Faults {
    fail_next_recover: Option<String>,
    cut_next_download: Option<usize>,
    corrupt_next_download: bool,
    delay_next_change: Option<Duration>,
}

#[derive(Debug)]
struct State {
    dir: PathBuf,
    version: String,
    base_url: String,
    clock: u64,
    collections: BTreeMap<String, Collection>,
    api_key: Option<String>,
    ready: bool,
    faults: Faults,
}

/// A running Qdrant double on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct QdrantDouble {
    server: TestServer,
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
}

impl QdrantDouble {
    /// A double reporting Qdrant [`VERSION`], with no collections.
    pub fn start() -> Self {
        Self::start_with_version(VERSION)
    }

    pub fn start_with_version(version: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the double's snapshots");
        let state = Arc::new(Mutex::new(State {
            dir: dir.path().to_path_buf(),
            version: version.to_owned(),
            base_url: String::new(),
            clock: now_secs(),
            collections: BTreeMap::new(),
            api_key: None,
            ready: true,
            faults: Faults::default(),
        }));
        let shared = state.clone();
        let server = TestServer::start(move |req, _| handle(&shared, req));
        state.lock().unwrap().base_url = server.url();
        Self { server, state, _dir: dir }
    }

    /// `http://127.0.0.1:PORT`: the URL and the origin to grant.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every request received so far, with headers and bodies.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    pub fn create_collection(&self, name: &str, points: u64) {
        self.state.lock().unwrap().collections.insert(name.to_owned(), Collection { points, status: "green".into() });
    }

    /// Simulates writes: the collection now has `points` points.
    pub fn set_points(&self, collection: &str, points: u64) {
        self.with_collection(collection, |c| c.points = points);
    }

    pub fn points(&self, collection: &str) -> Option<u64> {
        self.state.lock().unwrap().collections.get(collection).map(|c| c.points)
    }

    pub fn set_status(&self, collection: &str, status: &str) {
        self.with_collection(collection, |c| c.status = status.to_owned());
    }

    pub fn status(&self, collection: &str) -> Option<String> {
        self.state.lock().unwrap().collections.get(collection).map(|c| c.status.clone())
    }

    fn with_collection(&self, name: &str, f: impl FnOnce(&mut Collection)) {
        let mut state = self.state.lock().unwrap();
        f(state.collections.get_mut(name).unwrap_or_else(|| panic!("the double has no collection `{name}`")));
    }

    /// Takes a snapshot now, as `POST /collections/{c}/snapshots` would.
    pub fn take_snapshot(&self, collection: &str) -> SnapshotInfo {
        let mut state = self.state.lock().unwrap();
        let points = state.collections[collection].points;
        state.create_snapshot(collection, points)
    }

    /// The collection's snapshots on disk, oldest first.
    pub fn snapshots(&self, collection: &str) -> Vec<SnapshotInfo> {
        self.state.lock().unwrap().stored(collection)
    }

    /// The file holding a snapshot.
    pub fn snapshot_file(&self, collection: &str, name: &str) -> PathBuf {
        self.state.lock().unwrap().dir.join(collection).join(name)
    }

    /// The bytes of a snapshot file of `collection` at `points` points, not
    /// stored on the server (to upload from a backup directory).
    pub fn snapshot_bytes(collection: &str, points: u64, tag: &str) -> Vec<u8> {
        snapshot_content(collection, points, tag)
    }

    /// Requests without the key (in `api-key` or `Authorization: Bearer`)
    /// get 401, except `/`, `/healthz`, `/livez` and `/readyz`.
    pub fn require_api_key(&self, key: &str) {
        self.state.lock().unwrap().api_key = Some(key.to_owned());
    }

    /// `/readyz` answers 503 while `false`.
    pub fn set_ready(&self, ready: bool) {
        self.state.lock().unwrap().ready = ready;
    }

    /// The next recover or upload passes the checksum check, then breaks the
    /// collection (`red`, 0 points) and answers 500 with `error`.
    pub fn fail_next_recover(&self, error: &str) {
        self.state.lock().unwrap().faults.fail_next_recover = Some(error.to_owned());
    }

    /// The next snapshot download announces the full length but the
    /// connection closes after `bytes` bytes.
    pub fn cut_next_download(&self, bytes: usize) {
        self.state.lock().unwrap().faults.cut_next_download = Some(bytes);
    }

    /// The next snapshot download has one byte flipped (its digest differs
    /// from the listed checksum).
    pub fn corrupt_next_download(&self) {
        self.state.lock().unwrap().faults.corrupt_next_download = true;
    }

    /// The next change (create, delete, recover, upload) is carried out,
    /// but its answer is sent only after `delay`.
    pub fn delay_next_change(&self, delay: Duration) {
        self.state.lock().unwrap().faults.delay_next_change = Some(delay);
    }
}

impl State {
    fn collection_dir(&self, collection: &str) -> PathBuf {
        self.dir.join(collection)
    }

    fn create_snapshot(&mut self, collection: &str, points: u64) -> SnapshotInfo {
        self.clock = now_secs().max(self.clock + 1);
        let (date, time) = civil(self.clock);
        let name = format!("{collection}-{PEER_ID}-{date}-{}.snapshot", time.replace(':', "-"));
        let creation_time = format!("{date}T{time}");
        let bytes = snapshot_content(collection, points, &creation_time);
        let dir = self.collection_dir(collection);
        std::fs::create_dir_all(&dir).expect("create the collection's snapshot dir");
        let checksum = sha256_hex(&bytes);
        std::fs::write(dir.join(&name), &bytes).expect("write snapshot");
        std::fs::write(dir.join(format!("{name}.checksum")), &checksum).expect("write checksum");
        SnapshotInfo { name, checksum, size: bytes.len() as u64, creation_time, points }
    }

    fn stored(&self, collection: &str) -> Vec<SnapshotInfo> {
        let Ok(entries) = std::fs::read_dir(self.collection_dir(collection)) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".checksum"))
            .collect();
        names.sort();
        names.into_iter().filter_map(|name| self.info(collection, &name)).collect()
    }

    fn info(&self, collection: &str, name: &str) -> Option<SnapshotInfo> {
        let path = self.collection_dir(collection).join(name);
        let bytes = std::fs::read(&path).ok()?;
        let checksum = std::fs::read_to_string(self.collection_dir(collection).join(format!("{name}.checksum")))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let header = parse_snapshot(&bytes);
        Some(SnapshotInfo {
            name: name.to_owned(),
            checksum,
            size: bytes.len() as u64,
            creation_time: header.as_ref().map(|h| h.taken.clone()).unwrap_or_default(),
            points: header.map(|h| h.points).unwrap_or(0),
        })
    }

    fn description(&self, s: &SnapshotInfo) -> Value {
        json!({
            "name": s.name,
            "creation_time": if s.creation_time.is_empty() { Value::Null } else { Value::from(s.creation_time.clone()) },
            "size": s.size,
            "checksum": if s.checksum.is_empty() { Value::Null } else { Value::from(s.checksum.clone()) },
        })
    }
}

// ---------------------------------------------------------------------------
// Snapshot files
// ---------------------------------------------------------------------------

const MAGIC: &str = "qdrant-double snapshot v1\n";

struct Header {
    points: u64,
    taken: String,
}

fn snapshot_content(collection: &str, points: u64, taken: &str) -> Vec<u8> {
    let mut bytes = format!("{MAGIC}collection: {collection}\npoints: {points}\ntaken: {taken}\n\n").into_bytes();
    // Deterministic filler (xorshift), different per snapshot.
    let mut x: u64 =
        sha2::Sha256::digest(&bytes)[..8].iter().fold(0x9e37_79b9_7f4a_7c15, |a, b| (a << 8) ^ u64::from(*b)) | 1;
    bytes.reserve(FILLER);
    for _ in 0..FILLER {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(x as u8);
    }
    bytes
}

fn parse_snapshot(bytes: &[u8]) -> Option<Header> {
    let rest = bytes.strip_prefix(MAGIC.as_bytes())?;
    let end = rest.windows(2).position(|w| w == b"\n\n")?;
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
    Some(Header { points: field("points:")?.parse().ok()?, taken: field("taken:")?.to_owned() })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

fn envelope(result: Value, started: Instant) -> Response {
    Response::json(200, &json!({ "result": result, "status": "ok", "time": started.elapsed().as_secs_f64() }))
}

fn accepted(started: Instant) -> Response {
    Response::json(202, &json!({ "status": "accepted", "time": started.elapsed().as_secs_f64() }))
}

fn error(status: u16, message: &str, started: Instant) -> Response {
    Response::json(status, &json!({ "status": { "error": message }, "time": started.elapsed().as_secs_f64() }))
}

fn not_found_collection(c: &str, started: Instant) -> Response {
    error(404, &format!("Not found: Collection `{c}` doesn't exist!"), started)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
}

/// `wait` as the document says: a boolean, default true.
fn waits(query: &str) -> Result<bool, String> {
    match query_param(query, "wait").as_deref() {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("Query deserialize error: invalid boolean `{other}` for `wait`")),
    }
}

fn check_priority(priority: Option<&str>) -> Result<(), String> {
    match priority {
        None | Some("no_sync" | "snapshot" | "replica") => Ok(()),
        Some(other) => Err(format!("unknown variant `{other}`, expected one of `no_sync`, `snapshot`, `replica`")),
    }
}

fn handle(state: &Mutex<State>, req: &Recorded) -> Response {
    let started = Instant::now();
    let mut s = state.lock().unwrap();
    let (path, query) = req.path.split_once('?').unwrap_or((req.path.as_str(), ""));
    match (req.method.as_str(), path) {
        ("GET", "/") => {
            return Response::json(
                200,
                &json!({ "title": "qdrant - vector search engine", "version": s.version, "commit": "0000000000000000000000000000000000000000" }),
            );
        }
        ("GET", "/healthz" | "/livez") => return Response::text(200, "healthz check passed"),
        ("GET", "/readyz") => {
            return if s.ready {
                Response::text(200, "all shards are ready")
            } else {
                Response::text(503, "some shards are not ready")
            };
        }
        _ => {}
    }
    if let Some(key) = &s.api_key {
        let given = req
            .header("api-key")
            .map(str::to_owned)
            .or_else(|| req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::to_owned));
        match given {
            None => return Response::text(401, "Must provide an API key or an Authorization bearer token"),
            Some(g) if g != *key => return Response::text(401, "Invalid API key or JWT"),
            Some(_) => {}
        }
    }
    let segments: Vec<String> = path.trim_start_matches('/').split('/').map(percent_decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method.as_str(), seg.as_slice()) {
        ("GET", ["collections", c]) => match s.collections.get(*c) {
            Some(col) => envelope(collection_info(col), started),
            None => not_found_collection(c, started),
        },
        ("GET", ["collections", c, "exists"]) => envelope(json!({ "exists": s.collections.contains_key(*c) }), started),
        ("POST", ["collections", c, "points", "count"]) => {
            let body: Value = if req.body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(&req.body) {
                    Ok(v) => v,
                    Err(e) => return error(400, &format!("Json deserialize error: {e}"), started),
                }
            };
            match s.collections.get(*c) {
                Some(col) if body.get("exact").is_none_or(|e| e.is_boolean()) => {
                    envelope(json!({ "count": col.points }), started)
                }
                Some(_) => error(400, "Json deserialize error: invalid type for `exact`, expected a boolean", started),
                None => not_found_collection(c, started),
            }
        }
        ("GET", ["collections", c, "snapshots"]) => {
            if !s.collections.contains_key(*c) {
                return not_found_collection(c, started);
            }
            let list: Vec<Value> = s.stored(c).iter().map(|i| s.description(i)).collect();
            envelope(Value::Array(list), started)
        }
        ("POST", ["collections", c, "snapshots"]) => {
            let wait = match waits(query) {
                Ok(w) => w,
                Err(e) => return error(400, &e, started),
            };
            let Some(points) = s.collections.get(*c).map(|col| col.points) else {
                return not_found_collection(c, started);
            };
            let info = s.create_snapshot(c, points);
            let answer = if wait { envelope(s.description(&info), started) } else { accepted(started) };
            delayed(&mut s, answer)
        }
        ("GET", ["collections", c, "snapshots", name]) => {
            let file = s.collection_dir(c).join(name);
            match std::fs::read(&file) {
                Ok(mut bytes) if !name.ends_with(".checksum") => {
                    if std::mem::take(&mut s.faults.corrupt_next_download) {
                        let mid = bytes.len() / 2;
                        bytes[mid] ^= 0x01;
                    }
                    let mut answer = Response::bytes(200, bytes);
                    if let Some(n) = s.faults.cut_next_download.take() {
                        answer = answer.cut_after(n);
                    }
                    answer
                }
                _ => error(404, &format!("Not found: Snapshot {name} not found"), started),
            }
        }
        ("DELETE", ["collections", c, "snapshots", name]) => {
            let wait = match waits(query) {
                Ok(w) => w,
                Err(e) => return error(400, &e, started),
            };
            let file = s.collection_dir(c).join(name);
            if name.ends_with(".checksum") || !file.is_file() {
                return error(404, &format!("Not found: Snapshot {name} not found"), started);
            }
            std::fs::remove_file(&file).expect("remove snapshot");
            let _ = std::fs::remove_file(s.collection_dir(c).join(format!("{name}.checksum")));
            let answer = if wait { envelope(json!(true), started) } else { accepted(started) };
            delayed(&mut s, answer)
        }
        ("PUT", ["collections", c, "snapshots", "recover"]) => {
            let answer = recover(&mut s, c, query, &req.body, started);
            delayed(&mut s, answer)
        }
        ("POST", ["collections", c, "snapshots", "upload"]) => {
            let answer = upload(&mut s, c, query, req, started);
            delayed(&mut s, answer)
        }
        _ => Response::new(404, "text/plain", Vec::new()),
    }
}

/// Applies `delay_next_change` to the answer of a change already carried out.
fn delayed(s: &mut State, answer: Response) -> Response {
    match s.faults.delay_next_change.take() {
        Some(d) => answer.delay(d),
        None => answer,
    }
}

fn collection_info(col: &Collection) -> Value {
    json!({
        "status": col.status,
        "optimizer_status": "ok",
        "indexed_vectors_count": 0,
        "points_count": col.points,
        "segments_count": 2,
        "config": {
            "params": { "vectors": { "size": 4, "distance": "Dot" }, "shard_number": 1, "replication_factor": 1,
                        "write_consistency_factor": 1, "on_disk_payload": true },
            "hnsw_config": { "m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0, "on_disk": false },
            "optimizer_config": { "deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0,
                                  "max_segment_size": null, "memmap_threshold": null, "indexing_threshold": 20000,
                                  "flush_interval_sec": 5, "max_optimization_threads": null },
            "wal_config": { "wal_capacity_mb": 32, "wal_segments_ahead": 0 }
        },
        "payload_schema": {}
    })
}

/// `PUT /collections/{c}/snapshots/recover`.
fn recover(s: &mut State, c: &str, query: &str, body: &[u8], started: Instant) -> Response {
    let wait = match waits(query) {
        Ok(w) => w,
        Err(e) => return error(400, &e, started),
    };
    let body: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error(400, &format!("Json deserialize error: {e}"), started),
    };
    let Some(location) = body.get("location").and_then(Value::as_str) else {
        return error(400, "Json deserialize error: missing field `location`", started);
    };
    if let Err(e) = check_priority(body.get("priority").and_then(Value::as_str)) {
        return error(400, &format!("Json deserialize error: {e}"), started);
    }
    let api_key = body.get("api_key").and_then(Value::as_str);
    let bytes = match fetch(s, location, api_key) {
        Ok(b) => b,
        Err((status, e)) => return error(status, &e, started),
    };
    let checksum = body.get("checksum").and_then(Value::as_str);
    apply(s, c, &bytes, checksum, wait, started)
}

/// `POST /collections/{c}/snapshots/upload`.
fn upload(s: &mut State, c: &str, query: &str, req: &Recorded, started: Instant) -> Response {
    let wait = match waits(query) {
        Ok(w) => w,
        Err(e) => return error(400, &e, started),
    };
    let priority = query_param(query, "priority");
    if let Err(e) = check_priority(priority.as_deref()) {
        return error(400, &format!("Query deserialize error: {e}"), started);
    }
    let Some(boundary) = req
        .header("content-type")
        .filter(|ct| ct.starts_with("multipart/form-data"))
        .and_then(|ct| ct.split(';').find_map(|p| p.trim().strip_prefix("boundary=")))
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return error(400, "Bad request: expected a multipart/form-data body with a boundary", started);
    };
    let Some(bytes) = multipart_field(&req.body, &boundary, "snapshot") else {
        return error(400, "Bad request: the multipart body has no `snapshot` field", started);
    };
    let checksum = query_param(query, "checksum");
    apply(s, c, &bytes, checksum.as_deref(), wait, started)
}

/// Checks the checksum, then recovers the collection from `bytes`.
fn apply(s: &mut State, c: &str, bytes: &[u8], checksum: Option<&str>, wait: bool, started: Instant) -> Response {
    if let Some(expected) = checksum {
        let actual = sha256_hex(bytes);
        if !expected.eq_ignore_ascii_case(&actual) {
            return error(
                400,
                &format!("Bad request: Snapshot checksum mismatch: expected {expected}, got {actual}"),
                started,
            );
        }
    }
    if let Some(message) = s.faults.fail_next_recover.take() {
        s.collections.insert(c.to_owned(), Collection { points: 0, status: "red".into() });
        return error(500, &message, started);
    }
    let Some(header) = parse_snapshot(bytes) else {
        return error(400, "Bad request: the snapshot is not a valid snapshot archive", started);
    };
    s.collections.insert(c.to_owned(), Collection { points: header.points, status: "green".into() });
    if wait { envelope(json!(true), started) } else { accepted(started) }
}

/// The bytes at a recover `location`.
fn fetch(s: &State, location: &str, api_key: Option<&str>) -> Result<Vec<u8>, (u16, String)> {
    let own = format!("{}/collections/", s.base_url);
    if let Some(rest) = location.strip_prefix(&own) {
        if let Some(key) = &s.api_key
            && api_key != Some(key.as_str())
        {
            return Err((
                500,
                format!("Service internal error: failed to download the snapshot from {location}: 401 Unauthorized"),
            ));
        }
        let parts: Vec<String> = rest.split('/').map(percent_decode).collect();
        return match parts.as_slice() {
            [collection, snapshots, name] if snapshots == "snapshots" => {
                std::fs::read(s.collection_dir(collection).join(name)).map_err(|_| {
                    (400, format!("Bad request: failed to download the snapshot from {location}: 404 Not Found"))
                })
            }
            _ => Err((400, format!("Bad request: failed to download the snapshot from {location}: 404 Not Found"))),
        };
    }
    if location.starts_with("http://") {
        let headers: Vec<(String, String)> =
            api_key.map(|k| ("api-key".to_owned(), k.to_owned())).into_iter().collect();
        return match http_request("GET", location, &headers, &[]) {
            Ok((200, _, body)) => Ok(body),
            Ok((status, _, _)) => {
                Err((400, format!("Bad request: failed to download the snapshot from {location}: status {status}")))
            }
            Err(e) => Err((400, format!("Bad request: failed to download the snapshot from {location}: {e}"))),
        };
    }
    Err((400, format!("Bad request: the Qdrant double cannot read the location `{location}`")))
}

/// The content of the form field `name` in a `multipart/form-data` body.
pub fn multipart_field(body: &[u8], boundary: &str, name: &str) -> Option<Vec<u8>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut at = find(body, &delimiter, 0)?;
    loop {
        let after = at + delimiter.len();
        if body[after..].starts_with(b"--") {
            return None;
        }
        let headers_start = after + 2; // CRLF after the delimiter
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = String::from_utf8_lossy(&body[headers_start..headers_end]).to_ascii_lowercase();
        let content_start = headers_end + 4;
        let next = find(body, &[b"\r\n".as_slice(), &delimiter].concat(), content_start)?;
        let disposition = headers.lines().find(|l| l.starts_with("content-disposition:"))?;
        if disposition.split(';').any(|p| p.trim() == format!("name=\"{name}\"")) {
            return Some(body[content_start..next].to_vec());
        }
        at = next + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// An answer read by [`http_request`]: status, headers (names lowercased), body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A plain HTTP/1.1 request to an `http://` URL (no TLS), reading the whole
/// answer: `(status, headers, body)`. For the double's remote locations and
/// for tests that talk to the double directly.
pub fn http_request(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> std::io::Result<Answer> {
    let rest = url.strip_prefix("http://").ok_or_else(|| std::io::Error::other("only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let end = find(&raw, b"\r\n\r\n", 0).ok_or_else(|| std::io::Error::other("no complete answer"))?;
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(len) = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()) {
        if body.len() < len {
            return Err(std::io::Error::other(format!("the body ended after {} of {len} bytes", body.len())));
        }
        body.truncate(len);
    }
    Ok((status, headers, body))
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `("YYYY-MM-DD", "HH:MM:SS")` in UTC.
fn civil(secs: u64) -> (String, String) {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (format!("{y:04}-{m:02}-{d:02}"), format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(q: &QdrantDouble, method: &str, path: &str, body: Value) -> (u16, Value) {
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        let (status, _, bytes) = http_request(method, &format!("{}{path}", q.url()), &headers, &body).unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[test]
    fn answers_in_the_documented_envelopes() {
        let q = QdrantDouble::start();
        q.create_collection("docs", 7);
        let (status, v) = call(&q, "GET", "/", Value::Null);
        assert_eq!((status, v["version"].as_str()), (200, Some(VERSION)));
        let (status, v) = call(&q, "GET", "/collections/docs", Value::Null);
        assert_eq!(
            (status, &v["status"], &v["result"]["status"], &v["result"]["points_count"]),
            (200, &json!("ok"), &json!("green"), &json!(7))
        );
        assert!(v["time"].is_f64());
        let (status, v) = call(&q, "GET", "/collections/nope", Value::Null);
        assert_eq!((status, v["status"]["error"].as_str()), (404, Some("Not found: Collection `nope` doesn't exist!")));
        let (status, v) = call(&q, "POST", "/collections/docs/points/count", json!({ "exact": true }));
        assert_eq!((status, &v["result"]), (200, &json!({ "count": 7 })));
        let (status, v) = call(&q, "GET", "/collections/docs/exists", Value::Null);
        assert_eq!((status, &v["result"]), (200, &json!({ "exists": true })));
    }

    #[test]
    fn snapshots_are_files_with_checksums_and_recover_restores_their_count() {
        let q = QdrantDouble::start();
        q.create_collection("docs", 10);
        let (status, v) = call(&q, "POST", "/collections/docs/snapshots?wait=true", Value::Null);
        assert_eq!(status, 200);
        let name = v["result"]["name"].as_str().unwrap().to_owned();
        assert!(name.starts_with(&format!("docs-{PEER_ID}-")) && name.ends_with(".snapshot"), "{name}");
        let file = q.snapshot_file("docs", &name);
        assert_eq!(v["result"]["checksum"].as_str().unwrap(), sha256_hex(&std::fs::read(&file).unwrap()));
        assert_eq!(v["result"]["size"].as_u64().unwrap(), std::fs::metadata(&file).unwrap().len());

        let (status, v) = call(&q, "POST", "/collections/docs/snapshots?wait=false", Value::Null);
        assert_eq!((status, v.get("result")), (202, None));
        assert_eq!(q.snapshots("docs").len(), 2);

        q.set_points("docs", 99);
        let wrong = "0".repeat(64);
        let (status, v) = call(
            &q,
            "PUT",
            "/collections/docs/snapshots/recover",
            json!({ "location": format!("{}/collections/docs/snapshots/{name}", q.url()), "checksum": wrong }),
        );
        assert_eq!(status, 400, "{v}");
        assert!(v["status"]["error"].as_str().unwrap().contains("checksum mismatch"));
        assert_eq!(q.points("docs"), Some(99), "nothing changed");
        let (status, v) = call(
            &q,
            "PUT",
            "/collections/docs/snapshots/recover",
            json!({ "location": format!("{}/collections/docs/snapshots/{name}", q.url()), "priority": "snapshot" }),
        );
        assert_eq!((status, &v["result"]), (200, &json!(true)));
        assert_eq!(q.points("docs"), Some(10));
        let (status, _) = call(
            &q,
            "PUT",
            "/collections/docs/snapshots/recover",
            json!({ "location": format!("{}/collections/docs/snapshots/{name}", q.url()), "priority": "newest" }),
        );
        assert_eq!(status, 400);

        let (status, v) = call(&q, "DELETE", &format!("/collections/docs/snapshots/{name}?wait=true"), Value::Null);
        assert_eq!((status, &v["result"]), (200, &json!(true)));
        assert!(!file.exists());
        let (status, _) = call(&q, "DELETE", &format!("/collections/docs/snapshots/{name}"), Value::Null);
        assert_eq!(status, 404);
    }

    #[test]
    fn uploads_are_parsed_as_multipart() {
        let q = QdrantDouble::start();
        let bytes = QdrantDouble::snapshot_bytes("docs", 42, "t");
        let boundary = "xyz";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"a.snapshot\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let headers = vec![("content-type".to_owned(), format!("multipart/form-data; boundary={boundary}"))];
        let url = format!(
            "{}/collections/docs/snapshots/upload?wait=true&priority=snapshot&checksum={}",
            q.url(),
            sha256_hex(&bytes)
        );
        let (status, _, answer) = http_request("POST", &url, &headers, &body).unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        assert_eq!(q.points("docs"), Some(42), "the upload created the collection");
        assert_eq!(multipart_field(&body, boundary, "snapshot").unwrap(), bytes);
        assert_eq!(multipart_field(&body, boundary, "other"), None);
    }

    #[test]
    fn a_required_key_guards_everything_but_the_service_endpoints() {
        let q = QdrantDouble::start();
        q.create_collection("docs", 1);
        q.require_api_key("k3y-k3y");
        assert_eq!(call(&q, "GET", "/", Value::Null).0, 200);
        assert_eq!(http_request("GET", &format!("{}/readyz", q.url()), &[], &[]).unwrap().0, 200);
        let (status, _, body) = http_request("GET", &format!("{}/collections/docs", q.url()), &[], &[]).unwrap();
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (401, "Must provide an API key or an Authorization bearer token")
        );
        let key = vec![("api-key".to_owned(), "k3y-k3y".to_owned())];
        assert_eq!(http_request("GET", &format!("{}/collections/docs", q.url()), &key, &[]).unwrap().0, 200);
        let bearer = vec![("authorization".to_owned(), "Bearer k3y-k3y".to_owned())];
        assert_eq!(http_request("GET", &format!("{}/collections/docs", q.url()), &bearer, &[]).unwrap().0, 200);
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(civil(0), ("1970-01-01".to_owned(), "00:00:00".to_owned()));
        assert_eq!(civil(1_795_432_721), ("2026-11-23".to_owned(), "11:18:41".to_owned()));
    }
}
