//! Publishing to a real OCI registry: the CNCF distribution registry
//! (Debian's `docker-registry` package) started on 127.0.0.1 with its storage
//! in a temporary directory. `kwhost push` publishes the annotated policy,
//! the artifact is read back with plain HTTP requests (manifest, media types,
//! annotations, blobs) and with `kwhost pull`; the module must come back byte
//! for byte with its `io.kubewarden.metadata` section.
//!
//! Failures must be clean (non-zero exit, a message that says what happened,
//! nothing on stdout, nothing reported as published): a registry that is not
//! running, a read-only registry, and servers on 127.0.0.1 that answer
//! 401/403/500, refuse only the manifest, or claim a manifest digest that is
//! not the one sent.
//!
//! Needs the registry binary: `apt-get install -y docker-registry`, or
//! `REGISTRY_BIN=/path/to/registry`. `SKIP_REGISTRY_TESTS=1` skips the tests
//! that need it. The policy is `$POLICY_WASM` (set by `make e2e-tests`) or
//! `../annotated-policy.wasm`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kwhost::metadata::{METADATA_SECTION, Metadata, read_custom_section};
use serde_json::Value;
use sha2::{Digest, Sha256};

const WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
const WASM_CONFIG: &str = "application/vnd.wasm.config.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn kwhost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kwhost"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run kwhost")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn policy_path() -> PathBuf {
    let path = std::env::var_os("POLICY_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../annotated-policy.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make annotated-policy.wasm` in the repository root first",
        path.display()
    );
    path
}

fn sha256(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "kwhost-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port on 127.0.0.1 that nothing listens on (right now).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free port")
}

/// The registry binary, or None (with a note) when SKIP_REGISTRY_TESTS=1.
fn registry_binary() -> Option<PathBuf> {
    let found = std::env::var_os("REGISTRY_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
                .flat_map(|dir| [dir.join("docker-registry"), dir.join("registry")])
                .find(|p| p.is_file())
        });
    if found.is_none() && std::env::var("SKIP_REGISTRY_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIP_REGISTRY_TESTS=1: skipping a test that needs an OCI registry");
        return None;
    }
    Some(found.unwrap_or_else(|| {
        panic!(
            "the OCI registry binary (CNCF distribution) was not found: install it with \
             `apt-get update && apt-get install -y docker-registry` (Debian/Ubuntu; `make test` \
             in CI does this through .ci/run), or set REGISTRY_BIN=/path/to/registry; \
             SKIP_REGISTRY_TESTS=1 skips the registry tests"
        )
    }))
}

/// A distribution registry on 127.0.0.1, killed on drop.
struct Registry {
    child: Child,
    addr: String,
    dir: TempDir,
}

impl Registry {
    fn start(bin: &Path, read_only: bool) -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {read_only}\n\
             http:\n  addr: {addr}\n",
            dir.0.join("storage").display()
        );
        let config_path = dir.0.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.0.join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut registry = Registry { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!(
                    "the registry exited ({status}) before answering:\n{}",
                    registry.log()
                );
            }
            if let Ok(response) = http(&registry.addr, "GET", "/v2/", &[])
                && response.status == 200
            {
                return registry;
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not answer on {} within 30 s:\n{}",
                registry.addr,
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A plain HTTP/1.1 request (the test reads the registry independently of
/// the client under test).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = text(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(text(&data[..eol]).split(';').next().unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// The annotations kwctl puts on the manifest, computed here from the
/// module's metadata: single-line values trimmed, multi-line ones dropped,
/// plus org.opencontainers.image.source from io.kubewarden.policy.source.
fn expected_annotations(module: &[u8]) -> BTreeMap<String, String> {
    let metadata = Metadata::from_module(module)
        .unwrap()
        .expect("the policy is annotated");
    let mut out: BTreeMap<String, String> = metadata
        .annotations
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| !v.trim_end().contains('\n'))
        .map(|(k, v)| (k, v.trim().to_string()))
        .collect();
    if let Some(source) = out.get("io.kubewarden.policy.source").cloned() {
        out.entry("org.opencontainers.image.source".into())
            .or_insert(source);
    }
    out
}

fn push_json(module: &Path, destination: &str) -> String {
    let out = kwhost(&["push", "-o", "json", module.to_str().unwrap(), destination]);
    assert!(
        out.status.success(),
        "kwhost push failed: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("push -o json printed no JSON ({e}): {}", text(&out.stdout)));
    answer["immutable_ref"]
        .as_str()
        .expect("immutable_ref is a string")
        .to_string()
}

#[test]
fn push_pull_round_trip() {
    let Some(bin) = registry_binary() else { return };
    let registry = Registry::start(&bin, false);
    let policy = policy_path();
    let module = std::fs::read(&policy).unwrap();
    let repo = "policies/istio-sidecar-injector";

    // Push, with and without the scheme; the same content gives the same digest.
    let immutable_ref = push_json(
        &policy,
        &format!("registry://{}/{repo}:v0.1.0", registry.addr),
    );
    let (name, digest) = immutable_ref
        .split_once('@')
        .expect("a digest-pinned reference");
    assert_eq!(name, format!("{}/{repo}", registry.addr));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let out = kwhost(&[
        "push",
        policy.to_str().unwrap(),
        &format!("{}/{repo}:latest", registry.addr),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("Policy successfully pushed: {immutable_ref}")
    );
    assert!(
        text(&out.stderr).contains("io.kubewarden.policy.usage is a multi-line string"),
        "the dropped usage annotation is reported: {}",
        text(&out.stderr)
    );

    // The manifest, read by tag, as an OCI image manifest.
    let manifest = http(
        &registry.addr,
        "GET",
        &format!("/v2/{repo}/manifests/v0.1.0"),
        &[("Accept", OCI_MANIFEST)],
    )
    .unwrap();
    assert_eq!(manifest.status, 200, "{}", text(&manifest.body));
    assert_eq!(manifest.headers["content-type"], OCI_MANIFEST);
    assert_eq!(manifest.headers["docker-content-digest"], digest);
    assert_eq!(
        sha256(&manifest.body),
        digest,
        "the reference pins the manifest's bytes"
    );
    let json: Value = serde_json::from_slice(&manifest.body).unwrap();
    assert_eq!(json["schemaVersion"], 2);
    assert!(
        json.get("mediaType").is_none(),
        "oci-client (kwctl) sends no mediaType field: {json}"
    );
    assert_eq!(json["config"]["mediaType"], WASM_CONFIG);
    assert_eq!(json["config"]["size"], 2);
    assert_eq!(json["config"]["digest"], sha256(b"{}"));
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {json}");
    assert_eq!(layers[0]["mediaType"], WASM_LAYER);
    assert_eq!(layers[0]["size"], module.len());
    assert_eq!(layers[0]["digest"], sha256(&module));

    // Annotations: kwctl's single-line metadata annotations + image source.
    let annotations: BTreeMap<String, String> =
        serde_json::from_value(json["annotations"].clone()).unwrap();
    assert_eq!(annotations, expected_annotations(&module));
    assert!(!annotations.contains_key("io.kubewarden.policy.usage"));
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        annotations["io.kubewarden.policy.source"]
    );
    for key in [
        "io.kubewarden.policy.title",
        "io.kubewarden.policy.version",
        "io.kubewarden.policy.ociUrl",
        "io.artifacthub.displayName",
        "io.kubewarden.kwctl",
    ] {
        assert!(
            annotations.contains_key(key),
            "{key} missing from {annotations:?}"
        );
    }

    // Blobs: config `{}`, the layer is the module byte for byte.
    let config = http(
        &registry.addr,
        "GET",
        &format!("/v2/{repo}/blobs/{}", sha256(b"{}")),
        &[],
    )
    .unwrap();
    assert_eq!((config.status, config.body.as_slice()), (200, &b"{}"[..]));
    let layer = http(
        &registry.addr,
        "GET",
        &format!("/v2/{repo}/blobs/{}", sha256(&module)),
        &[],
    )
    .unwrap();
    assert_eq!(layer.status, 200);
    assert!(
        layer.body == module,
        "the stored layer differs from the module"
    );

    // kwhost pull, by tag and by digest: byte-identical, metadata intact.
    let dir = TempDir::new("pull");
    for (i, source) in [
        format!("registry://{}/{repo}:v0.1.0", registry.addr),
        immutable_ref.clone(),
    ]
    .iter()
    .enumerate()
    {
        let out_path = dir.0.join(format!("pulled-{i}.wasm"));
        let out = kwhost(&["pull", source, "-o", out_path.to_str().unwrap()]);
        assert!(out.status.success(), "pull {source}: {}", text(&out.stderr));
        let pulled = std::fs::read(&out_path).unwrap();
        assert!(
            pulled == module,
            "pulled module differs from the pushed one ({source})"
        );
        let section = read_custom_section(&pulled, METADATA_SECTION)
            .unwrap()
            .expect("the pulled module still carries io.kubewarden.metadata");
        assert_eq!(
            Some(section),
            read_custom_section(&module, METADATA_SECTION).unwrap()
        );
        let inspect = kwhost(&["inspect", out_path.to_str().unwrap()]);
        assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    }
}

#[test]
fn unannotated_module_is_refused() {
    let Some(bin) = registry_binary() else { return };
    let registry = Registry::start(&bin, false);
    let module = std::fs::read(policy_path()).unwrap();
    let bare = kwhost::metadata::remove_custom_sections(&module, METADATA_SECTION).unwrap();
    let dir = TempDir::new("bare");
    let path = dir.0.join("policy.wasm");
    std::fs::write(&path, bare).unwrap();
    let out = kwhost(&[
        "push",
        path.to_str().unwrap(),
        &format!("{}/bare:v1", registry.addr),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr).contains("Cannot push a policy that is not annotated"),
        "{}",
        text(&out.stderr)
    );
    let tags = http(&registry.addr, "GET", "/v2/bare/tags/list", &[]).unwrap();
    assert_eq!(
        tags.status,
        404,
        "nothing was uploaded: {}",
        text(&tags.body)
    );
}

/// Asserts a failed push: exit code 1, nothing on stdout, and a message
/// naming the destination and containing every `needles` (any case).
fn assert_push_fails(destination: &str, needles: &[&str]) -> String {
    let out = kwhost(&[
        "push",
        "-o",
        "json",
        policy_path().to_str().unwrap(),
        destination,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "push to {destination} must fail: {stderr}"
    );
    assert!(
        text(&out.stdout).is_empty(),
        "nothing reported as pushed: {}",
        text(&out.stdout)
    );
    assert!(stderr.contains("could not push policy to"), "{stderr}");
    eprintln!("push to {destination} failed as expected:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} not in: {stderr}"
        );
    }
    stderr
}

#[test]
fn registry_down_fails_cleanly() {
    let port = free_port();
    let stderr = assert_push_fails(
        &format!("127.0.0.1:{port}/policies/x:v1"),
        &[
            &format!("cannot reach the registry 127.0.0.1:{port}"),
            "connection refused",
            "is it running",
        ],
    );
    assert!(stderr.lines().count() <= 2, "one clear message: {stderr}");
}

#[test]
fn read_only_registry_fails_cleanly() {
    let Some(bin) = registry_binary() else { return };
    let registry = Registry::start(&bin, true);
    assert_push_fails(
        &format!("{}/policies/x:v1", registry.addr),
        &["refused", "405", "read-only"],
    );
    let tags = http(&registry.addr, "GET", "/v2/policies/x/tags/list", &[]).unwrap();
    assert_eq!(tags.status, 404, "no tag: {}", text(&tags.body));
}

/// What the fake server does with a request: (status, extra headers, body).
type Handler = fn(&Request, &str) -> (u16, Vec<(String, String)>, String);

struct Request {
    method: String,
    path: String,
}

/// A small HTTP server on 127.0.0.1 answering with `handler`; it counts the
/// requests it saw and stops on drop. TLS handshakes are closed at once (the
/// client then falls back to plain HTTP, as for an insecure registry).
struct FakeServer {
    addr: String,
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(handler: Handler) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop2, seen2, addr2) = (stop.clone(), seen.clone(), addr.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = serve_one(stream, handler, &addr2, &seen2);
            }
        });
        FakeServer {
            addr,
            stop,
            seen,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(
    mut stream: TcpStream,
    handler: Handler,
    addr: &str,
    seen: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut first = [0u8; 1];
    if stream.peek(&mut first)? == 0 || first[0] == 0x16 {
        return Ok(()); // EOF, or a TLS ClientHello: hang up.
    }
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let request = Request {
        method: parts.next().unwrap_or_default().to_string(),
        path: parts.next().unwrap_or_default().to_string(),
    };
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
    }
    seen.lock()
        .unwrap()
        .push(format!("{} {}", request.method, request.path));
    let (status, headers, body) = handler(&request, addr);
    let mut response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: application/json\r\n",
        body.len()
    );
    for (k, v) in headers {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

fn error_body(code: &str, message: &str) -> String {
    format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#)
}

/// A registry that stores blobs (or pretends to) and answers manifests with
/// `manifest`.
fn fake_registry(
    request: &Request,
    manifest: (u16, Vec<(String, String)>, String),
) -> (u16, Vec<(String, String)>, String) {
    let path = request.path.split('?').next().unwrap_or_default();
    let h = |k: &str, v: String| vec![(k.to_string(), v)];
    match request.method.as_str() {
        "GET" | "HEAD" if path == "/v2/" => (200, vec![], "{}".into()),
        "HEAD" if path.contains("/blobs/") => (404, vec![], String::new()),
        "POST" if path.ends_with("/blobs/uploads/") => {
            (202, h("Location", format!("{path}upload-1")), String::new())
        }
        "PATCH" => (202, h("Location", path.to_string()), String::new()),
        "PUT" if path.contains("/blobs/uploads/") => {
            let digest = request
                .path
                .split("digest=")
                .nth(1)
                .unwrap_or_default()
                .replace("%3A", ":");
            let blob = path.split("/blobs/").next().unwrap_or_default();
            (
                201,
                h("Location", format!("{blob}/blobs/{digest}")),
                String::new(),
            )
        }
        "PUT" | "GET" | "HEAD" if path.contains("/manifests/") => manifest,
        _ => (404, vec![], error_body("UNKNOWN", "not here")),
    }
}

#[test]
fn refusing_servers_fail_cleanly() {
    let unauthorized: Handler = |_, _| {
        (
            401,
            vec![("WWW-Authenticate".into(), "Basic realm=\"fake\"".into())],
            error_body("UNAUTHORIZED", "authentication required"),
        )
    };
    let forbidden: Handler = |_, _| {
        (
            403,
            vec![],
            error_body("DENIED", "requested access to the resource is denied"),
        )
    };
    let broken: Handler = |_, _| (500, vec![], "internal error".into());
    for (handler, needles) in [
        (unauthorized, &["401"][..]),
        (forbidden, &["403", "denied"][..]),
        (broken, &["500"][..]),
    ] {
        let server = FakeServer::start(handler);
        assert_push_fails(&format!("{}/policies/x:v1", server.addr), needles);
        assert!(
            !server.seen.lock().unwrap().is_empty(),
            "the server was asked"
        );
    }
}

#[test]
fn refused_manifest_is_not_a_push() {
    // Blobs are accepted, the manifest is not: a half-done upload.
    let server = FakeServer::start(|request, _| {
        fake_registry(request, (500, vec![], error_body("UNKNOWN", "disk full")))
    });
    assert_push_fails(
        &format!("{}/policies/x:v1", server.addr),
        &["500", "manifests"],
    );
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("PUT") && r.contains("/manifests/")),
        "the blobs went up and the manifest was tried: {seen:?}"
    );
}

#[test]
fn wrong_manifest_digest_is_not_a_push() {
    // The registry accepts the manifest but answers with another digest.
    let server = FakeServer::start(|request, _| {
        let zeros = format!("sha256:{}", "0".repeat(64));
        let location = format!("/v2/policies/x/manifests/{zeros}");
        let headers = vec![
            ("Location".to_string(), location),
            ("Docker-Content-Digest".to_string(), zeros),
        ];
        fake_registry(request, (201, headers, String::new()))
    });
    assert_push_fails(&format!("{}/policies/x:v1", server.addr), &["digest"]);
}
