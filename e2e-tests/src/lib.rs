//! `kwhost`: a small kwctl-compatible host for Kubewarden waPC policies,
//! used by this project's end-to-end tests.
//!
//! - [`host`]: loads a module with wasmtime-provider + wapc and runs
//!   `protocol_version`, `validate_settings`, `validate`, answering the
//!   guest's host calls like kwctl in replay mode.
//! - [`session`]: kwctl's host-capabilities session files (record/replay).
//! - [`response`]: the AdmissionRequest given to the policy and the
//!   AdmissionResponse built from its answer, as policy-evaluator does.
//! - [`metadata`]: the metadata `kwctl annotate` embeds, and the custom
//!   section it lives in.
//! - [`annotate`]: `kwctl annotate`.
//! - [`scenario`]: the scenario files and checks of `tests/scenarios.rs`.
//! - [`policy_server`]: a real policy-server started on 127.0.0.1 and the
//!   AdmissionReviews sent to it (`tests/policy_server.rs`).
//! - [`perf_map`]: perf's names for the modules' code inside policy-server.

pub mod annotate;
pub mod artifacthub;
pub mod host;
pub mod manifests;
pub mod metadata;
pub mod perf_map;
pub mod policy_server;
pub mod push;
pub mod response;
pub mod scenario;
pub mod session;
