//! The host, `annotate` and the `kwhost` binary against a tiny hand-written
//! waPC guest (WAT), so they are tested without the real policy:
//!
//! - `protocol_version` returns `"v1"`;
//! - `validate_settings` accepts `{}` and fails (guest error) otherwise;
//! - `validate` calls `kubewarden/kubernetes/get_resource` for
//!   `v1/Namespace demo` and returns the host's answer as its
//!   ValidationResponse, or fails with the host's error text;
//! - `spin` never returns (only an epoch deadline stops it).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use kwhost::host::{CompileCache, HostContext, Policy};
use kwhost::metadata::{METADATA_SECTION, Metadata, read_custom_section};
use kwhost::response::AdmissionRequest;
use kwhost::session::{Response, Session};

const GET_NS: &str = r#"{"api_version":"v1","kind":"Namespace","name":"demo","namespace":null,"disable_cache":false,"field_masks":null}"#;
const SETTINGS_ERROR: &str = "settings must be empty";
const SETTINGS_OK: &str = r#"{"valid":true,"message":null}"#;

fn guest_wat() -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $host_response_len (result i32)))
  (import "wapc" "__host_response" (func $host_response (param i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 4)
  (data (i32.const 0) "\"v1\"")
  (data (i32.const 16) "kubewarden")
  (data (i32.const 32) "kubernetes")
  (data (i32.const 48) "get_resource")
  (data (i32.const 64) "{get_ns}")
  (data (i32.const 512) "{settings_ok}")
  (data (i32.const 768) "{settings_error}")
  (func (export "wapc_init"))
  (func (export "__guest_call") (param $op_len i32) (param $req_len i32) (result i32)
    (call $guest_request (i32.const 1024) (i32.const 65536))
    ;; spin
    (if (i32.eq (local.get $op_len) (i32.const 4))
      (then (loop $forever (br $forever))))
    ;; protocol_version
    (if (i32.eq (local.get $op_len) (i32.const 16))
      (then
        (call $guest_response (i32.const 0) (i32.const 4))
        (return (i32.const 1))))
    ;; validate_settings
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then
        (if (i32.ne (local.get $req_len) (i32.const 2))
          (then
            (call $guest_error (i32.const 768) (i32.const {settings_error_len}))
            (return (i32.const 0))))
        (call $guest_response (i32.const 512) (i32.const {settings_ok_len}))
        (return (i32.const 1))))
    ;; validate
    (if (call $host_call (i32.const 16) (i32.const 10) (i32.const 32) (i32.const 10)
                         (i32.const 48) (i32.const 12) (i32.const 64) (i32.const {get_ns_len}))
      (then
        (call $host_response (i32.const 8192))
        (call $guest_response (i32.const 8192) (call $host_response_len))
        (return (i32.const 1))))
    (call $host_error (i32.const 8192))
    (call $guest_error (i32.const 8192) (call $host_error_len))
    (i32.const 0)))"#,
        get_ns = escape(GET_NS),
        get_ns_len = GET_NS.len(),
        settings_ok = escape(SETTINGS_OK),
        settings_ok_len = SETTINGS_OK.len(),
        settings_error = SETTINGS_ERROR,
        settings_error_len = SETTINGS_ERROR.len(),
    )
}

fn guest_module() -> Vec<u8> {
    wat::parse_str(guest_wat()).expect("the test guest is valid WAT")
}

const METADATA_YML: &str = r#"rules:
- apiGroups: [""]
  apiVersions: ["v1"]
  resources: ["pods"]
  operations: ["CREATE"]
mutating: true
contextAwareResources:
- apiVersion: v1
  kind: Namespace
hostCapabilities: [kubernetes/get_resource]
annotations:
  io.kubewarden.policy.title: wat-guest
"#;

fn annotated_module() -> Vec<u8> {
    let md = kwhost::annotate::prepare_metadata(&guest_module(), METADATA_YML, Some("# README\n"))
        .unwrap();
    kwhost::metadata::write_custom_section(
        &guest_module(),
        METADATA_SECTION,
        &md.to_section_json().unwrap(),
    )
    .unwrap()
}

fn pod_request() -> Value {
    json!({
        "uid": "req-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "p", "namespace": "demo", "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "app"}]}}
    })
}

/// A session whose recorded "Namespace" is in fact the ValidationResponse the
/// test guest passes through.
fn session_answering(validation_response: &Value) -> Session {
    Session::namespace_lookup("demo", Some(validation_response))
}

fn mutation() -> Value {
    json!({
        "accepted": true, "message": null, "code": null,
        "mutated_object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}},
        "audit_annotations": {"outcome": "injected", "reason": "namespace-label: labelled"},
        "warnings": null
    })
}

fn run_in_process(
    module: &[u8],
    allow: bool,
    session: Option<Session>,
) -> kwhost::response::AdmissionResponse {
    let policy = Policy::from_bytes(module, &CompileCache::Disabled).unwrap();
    let ctx = HostContext {
        allowed_resources: policy.allowed_resources(allow),
        session,
    };
    let instance = policy.instantiate(&ctx).unwrap();
    let settings = serde_json::Map::new();
    assert!(instance.validate_settings(&settings).valid);
    instance.validate(
        &AdmissionRequest::from_value(&pod_request()).unwrap(),
        &settings,
    )
}

/// Instances run under the epoch deadline policy-server sets with its default timeout
/// protection (two ticks of its one-second ticker): a call still running two ticks on is
/// interrupted. Without epoch interruption the guest's `spin` would never return, and the
/// compiled code would lack the epoch checks whose cost `kwbench` must time.
#[test]
fn a_call_is_interrupted_two_epoch_ticks_on_as_in_policy_server() {
    let policy = Policy::from_bytes(&guest_module(), &CompileCache::Disabled).unwrap();
    let instance = policy.instantiate(&HostContext::default()).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let policy = &policy;
        scope.spawn(move || {
            // policy-server's ticker, sped up; stops once the call has returned.
            for _ in 0..500 {
                if done_rx
                    .recv_timeout(std::time::Duration::from_millis(10))
                    .is_ok()
                {
                    return;
                }
                policy.advance_epoch();
            }
            // Five seconds of ticks and the call still runs: it never will stop.
            eprintln!("`spin` was not interrupted after 500 epoch ticks");
            std::process::exit(1);
        });
        let result = instance.call_raw("spin", b"{}");
        done_tx.send(()).ok();
        let error = result
            .expect_err("the endless call must be interrupted")
            .to_string();
        // wasmtime-provider's words for an epoch deadline passed, not any other failure.
        assert!(error.contains("execution deadline exceeded"), "{error}");
    });
}

#[test]
fn protocol_version_and_annotation() {
    let md = kwhost::annotate::prepare_metadata(&guest_module(), METADATA_YML, Some("# README\n"))
        .unwrap();
    let json = String::from_utf8(md.to_section_json().unwrap()).unwrap();
    assert!(
        json.starts_with(r#"{"protocolVersion":"v1","rules":[{"#),
        "{json}"
    );
    let annotations = r##""annotations":{"io.kubewarden.kwctl":"1.36.0-beta.1","io.kubewarden.policy.title":"wat-guest","io.kubewarden.policy.usage":"# README\n"},"mutating":true,"##;
    assert!(json.contains(annotations), "{json}");
    assert!(json.ends_with(r#""contextAwareResources":[{"apiVersion":"v1","kind":"Namespace"}],"hostCapabilities":["kubernetes/get_resource"]}"#), "{json}");

    let annotated = annotated_module();
    assert_eq!(Metadata::from_module(&annotated).unwrap(), Some(md));
}

#[test]
fn mutation_through_a_replayed_lookup() {
    let resp = run_in_process(
        &annotated_module(),
        true,
        Some(session_answering(&mutation())),
    );
    assert!(resp.allowed);
    let patch = serde_json::to_value(resp.decoded_patch().unwrap().unwrap()).unwrap();
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/spec/containers/1", "value": {"name": "istio-proxy"}}])
    );
    assert_eq!(resp.audit_annotations.unwrap()["outcome"], "injected");
}

#[test]
fn lookup_denied_without_allow_context_aware() {
    let resp = run_in_process(
        &annotated_module(),
        false,
        Some(session_answering(&mutation())),
    );
    assert!(!resp.allowed);
    let status = resp.status.unwrap();
    assert_eq!(status.code, Some(500));
    assert_eq!(
        status.message.unwrap(),
        "internal server error: Guest call failure: Policy has not been granted access to Kubernetes v1/Namespace resources. The violation has been reported."
    );
}

#[test]
fn lookup_denied_when_not_in_metadata() {
    // Not annotated: no contextAwareResources to trust.
    let resp = run_in_process(&guest_module(), true, Some(session_answering(&mutation())));
    assert!(
        resp.status
            .unwrap()
            .message
            .unwrap()
            .contains("has not been granted access")
    );
}

#[test]
fn recorded_error_reaches_the_guest() {
    let session = Session::namespace_lookup("demo", None);
    let resp = run_in_process(&annotated_module(), true, Some(session));
    assert_eq!(
        resp.status.unwrap().message.unwrap(),
        "internal server error: Guest call failure: Cannot find v1/Namespace named 'demo' inside of namespace 'None'"
    );
}

#[test]
fn unexpected_request_is_a_replay_error() {
    let mut session = Session::namespace_lookup("other", Some(&mutation()));
    session.exchanges[0].response = Response::Success {
        payload: "{}".into(),
    };
    let resp = run_in_process(&annotated_module(), true, Some(session));
    let message = resp.status.unwrap().message.unwrap();
    assert!(message.contains("Replay error: unexpected request. Was expecting KubernetesGetResource { api_version: \"v1\", kind: \"Namespace\", name: \"other\""), "{message}");
}

#[test]
fn invalid_guest_answer_is_an_internal_error() {
    let resp = run_in_process(
        &annotated_module(),
        true,
        Some(session_answering(&json!({"nope": 1}))),
    );
    let message = resp.status.unwrap().message.unwrap();
    assert!(
        message.starts_with(
            "internal server error: invalid response from policy: missing field `accepted`"
        ),
        "{message}"
    );
}

#[test]
fn settings_rejected_by_a_guest_error() {
    let policy = Policy::from_bytes(&guest_module(), &CompileCache::Disabled).unwrap();
    let instance = policy.instantiate(&HostContext::default()).unwrap();
    let mut settings = serde_json::Map::new();
    settings.insert("a".into(), json!(1));
    let r = instance.validate_settings(&settings);
    assert!(!r.valid);
    assert_eq!(
        r.message.unwrap(),
        format!(
            "Error invoking settings validation callback: GuestCallFailure(\"{SETTINGS_ERROR}\")"
        )
    );
}

// ---- the kwhost binary -------------------------------------------------

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("wapc-guest-cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kwhost(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kwhost"))
        .args(args)
        .current_dir(dir)
        .env("KWHOST_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

#[test]
fn cli_annotate_inspect_run() {
    let dir = scratch("full");
    std::fs::write(dir.join("policy.wasm"), guest_module()).unwrap();
    std::fs::write(dir.join("metadata.yml"), METADATA_YML).unwrap();
    std::fs::write(dir.join("README.md"), "# usage\n").unwrap();
    let out = kwhost(
        &[
            "annotate",
            "-m",
            "metadata.yml",
            "-u",
            "README.md",
            "-o",
            "annotated.wasm",
            "policy.wasm",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let annotated = std::fs::read(dir.join("annotated.wasm")).unwrap();
    let section = read_custom_section(&annotated, METADATA_SECTION)
        .unwrap()
        .unwrap();

    let out = kwhost(&["inspect", "annotated.wasm"], &dir);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end().as_bytes(),
        section.as_slice()
    );

    std::fs::write(dir.join("request.json"), pod_request().to_string()).unwrap();
    std::fs::write(
        dir.join("session.yml"),
        session_answering(&mutation()).to_yaml().unwrap(),
    )
    .unwrap();
    let args = [
        "run",
        "--request-path",
        "request.json",
        "--allow-context-aware",
        "--replay-host-capabilities-interactions",
        "session.yml",
        "annotated.wasm",
    ];
    let out = kwhost(&args, &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let resp: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(resp["uid"], "req-1");
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    assert!(
        stdout.starts_with(r#"{"uid":"req-1","allowed":true,"patchType":"JSONPatch","patch":""#)
    );

    // Again, now from the compile cache, with the request wrapped in an AdmissionReview.
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": pod_request()});
    std::fs::write(dir.join("request.json"), review.to_string()).unwrap();
    let again = kwhost(&args, &dir);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);

    // Invalid settings: kwctl's message and exit code 1, nothing on stdout.
    let out = kwhost(
        &[
            "run",
            "-r",
            "request.json",
            "--settings-json",
            r#"{"a":1}"#,
            "annotated.wasm",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "Error: Provided settings are not valid: Error invoking settings validation callback: GuestCallFailure(\"{SETTINGS_ERROR}\")"
        )),
        "{stderr}"
    );

    // A rejection is still a successful run.
    let out = kwhost(&["run", "-r", "request.json", "annotated.wasm"], &dir);
    assert_eq!(out.status.code(), Some(0));
    let resp: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resp["allowed"], false);
}

#[test]
fn cli_errors() {
    let dir = scratch("errors");
    std::fs::write(dir.join("policy.wasm"), guest_module()).unwrap();
    std::fs::write(dir.join("request.json"), pod_request().to_string()).unwrap();
    // Usage errors: exit code 2.
    assert_eq!(kwhost(&["run", "policy.wasm"], &dir).status.code(), Some(2));
    assert_eq!(
        kwhost(
            &["run", "--bogus", "-r", "request.json", "policy.wasm"],
            &dir
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(kwhost(&["frobnicate"], &dir).status.code(), Some(2));
    assert_eq!(
        kwhost(&["annotate", "policy.wasm"], &dir).status.code(),
        Some(2)
    );
    // Runtime errors: exit code 1.
    assert_eq!(
        kwhost(&["run", "-r", "missing.json", "policy.wasm"], &dir)
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        kwhost(&["run", "-r", "request.json", "missing.wasm"], &dir)
            .status
            .code(),
        Some(1)
    );
    std::fs::write(dir.join("garbage.wasm"), b"not wasm").unwrap();
    assert_eq!(
        kwhost(&["run", "-r", "request.json", "garbage.wasm"], &dir)
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        kwhost(&["inspect", "policy.wasm"], &dir).status.code(),
        Some(1)
    );
    std::fs::write(dir.join("bad.yml"), "rules: []\n").unwrap();
    let out = kwhost(
        &["annotate", "-m", "bad.yml", "-o", "out.wasm", "policy.wasm"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error unmarshalling metadata"));
    std::fs::write(dir.join("bad.yml"), "rules: [{apiGroups: [], apiVersions: [v1], resources: [pods], operations: [CREATE]}]\nmutating: true\n").unwrap();
    let out = kwhost(
        &["annotate", "-m", "bad.yml", "-o", "out.wasm", "policy.wasm"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rules[0].apiGroups"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("out.wasm").exists());
}

#[test]
fn cli_session_namespace() {
    let dir = scratch("session");
    let out = kwhost(
        &[
            "session-namespace",
            "demo",
            "--namespace-json",
            r#"{"kind":"Namespace","metadata":{"name":"demo"}}"#,
        ],
        &dir,
    );
    assert!(out.status.success());
    let session = Session::from_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(
        session,
        Session::namespace_lookup(
            "demo",
            Some(&json!({"kind": "Namespace", "metadata": {"name": "demo"}}))
        )
    );
    let out = kwhost(&["session-namespace", "demo", "--not-found"], &dir);
    assert_eq!(
        Session::from_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap(),
        Session::namespace_lookup("demo", None)
    );
}
