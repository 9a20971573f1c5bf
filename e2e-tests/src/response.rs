//! The admission request the policy is given and the admission response built
//! from what it returns, both as policy-evaluator does them.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

/// k8s-openapi's `authentication::v1::UserInfo`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct UserInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// policy-evaluator's `admission_request::AdmissionRequest`. kwctl parses the
/// request file into it and re-serializes it for the policy, so unknown keys
/// are dropped, `null`/absent optional keys are omitted, and `uid`, `kind`,
/// `resource`, `operation` and `userInfo` are required.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub operation: String,
    pub user_info: UserInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

impl AdmissionRequest {
    /// Accepts a bare AdmissionRequest or a whole `AdmissionReview` (whose
    /// `.request` is used), like kwctl's `build_validate_request`.
    pub fn from_value(request: &Value) -> Result<Self> {
        let object = request
            .as_object()
            .ok_or_else(|| anyhow!("Invalid request object"))?;
        let req = if object.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            object
                .get("request")
                .cloned()
                .ok_or_else(|| anyhow!("invalid AdmissionReview object"))?
        } else {
            request.clone()
        };
        serde_json::from_value(req)
            .map_err(|e| anyhow!("cannot build AdmissionRequest object from given input: {e}"))
    }

    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_value(&serde_json::from_str(text)?)
    }
}

/// kubewarden-policy-sdk's `response::ValidationResponse` (snake_case).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct ValidationResponse {
    pub accepted: bool,
    pub message: Option<String>,
    pub code: Option<u16>,
    pub mutated_object: Option<Value>,
    pub audit_annotations: Option<BTreeMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

/// kubewarden-policy-sdk's `settings::SettingsValidationResponse`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingsValidationResponse {
    pub valid: bool,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Status {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// policy-evaluator's `admission_response::AdmissionResponse`: same field
/// order and omission rules, so the printed line is the same as kwctl's
/// (`auditAnnotations` and `warnings` are printed as `null` when absent;
/// kwctl's status can also carry `status`, `reason`, `details`, which a
/// single policy run from the CLI never sets).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default)]
    pub audit_annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

pub const DELETE_MUTATION_MESSAGE: &str = "Incoming object is null, which happens only with DELETE operations, but the policy is attempting a mutation. This is not allowed";

impl AdmissionResponse {
    pub fn reject(uid: &str, message: String, code: u16) -> Self {
        Self {
            uid: uid.to_string(),
            allowed: false,
            status: Some(Status {
                message: Some(message),
                code: Some(code),
            }),
            ..Default::default()
        }
    }

    pub fn reject_internal_server_error(uid: &str, message: &str) -> Self {
        Self::reject(uid, format!("internal server error: {message}"), 500)
    }

    /// `AdmissionResponse::from_policy_validation_response` of policy-evaluator.
    pub fn from_validation_response(
        uid: &str,
        request_object: Option<&Value>,
        resp: &ValidationResponse,
    ) -> Result<Self> {
        let Some(original) = request_object else {
            if resp.mutated_object.is_some() {
                return Ok(Self {
                    uid: uid.to_string(),
                    allowed: false,
                    status: Some(Status {
                        message: Some(DELETE_MUTATION_MESSAGE.to_string()),
                        code: None,
                    }),
                    ..Default::default()
                });
            }
            return Ok(Self::plain(uid, resp, None));
        };
        let patch = match &resp.mutated_object {
            Some(mutated) => {
                let diff = json_patch::diff(original, mutated);
                if diff.0.is_empty() {
                    None
                } else {
                    let json = serde_json::to_string(&diff)
                        .map_err(|e| anyhow!("cannot deserialize JSONPatch: {e}"))?;
                    Some(base64::engine::general_purpose::STANDARD.encode(json))
                }
            }
            None => None,
        };
        Ok(Self::plain(uid, resp, patch))
    }

    fn plain(uid: &str, resp: &ValidationResponse, patch: Option<String>) -> Self {
        let status = (resp.message.is_some() || resp.code.is_some()).then(|| Status {
            message: resp.message.clone(),
            code: resp.code,
        });
        Self {
            uid: uid.to_string(),
            allowed: resp.accepted,
            patch_type: patch.as_ref().map(|_| "JSONPatch".to_string()),
            patch,
            status,
            audit_annotations: resp.audit_annotations.clone(),
            warnings: resp.warnings.clone(),
        }
    }

    /// The decoded JSONPatch, if any.
    pub fn decoded_patch(&self) -> Result<Option<json_patch::Patch>> {
        let Some(patch) = &self.patch else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .map_err(|e| anyhow!("patch is not base64: {e}"))?;
        Ok(Some(
            serde_json::from_slice(&bytes).map_err(|e| anyhow!("patch is not a JSONPatch: {e}"))?,
        ))
    }

    /// One compact JSON line, as kwctl prints it.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an AdmissionResponse always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request_json() -> Value {
        json!({
            "uid": "1299d386-525b-4032-98ae-1949f69f9cfc",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "name": "nginx",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"}},
            "oldObject": null,
            "dryRun": false,
            "somethingUnknown": 1
        })
    }

    #[test]
    fn request_is_normalized_like_kwctl() {
        let req = AdmissionRequest::from_value(&request_json()).unwrap();
        let v = serde_json::to_value(&req).unwrap();
        assert!(v.get("oldObject").is_none(), "null oldObject is omitted");
        assert!(
            v.get("somethingUnknown").is_none(),
            "unknown keys are dropped"
        );
        assert_eq!(
            v["userInfo"],
            json!({"groups": ["system:authenticated"], "username": "alice"})
        );
        assert_eq!(v["dryRun"], json!(false));
        assert_eq!(v["object"]["metadata"]["name"], "nginx");
    }

    #[test]
    fn admission_review_is_unwrapped() {
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request_json()});
        assert_eq!(
            AdmissionRequest::from_value(&review).unwrap(),
            AdmissionRequest::from_value(&request_json()).unwrap()
        );
        let bad = json!({"kind": "AdmissionReview"});
        assert_eq!(
            AdmissionRequest::from_value(&bad).unwrap_err().to_string(),
            "invalid AdmissionReview object"
        );
    }

    #[test]
    fn required_fields() {
        let mut r = request_json();
        r.as_object_mut().unwrap().remove("userInfo");
        let err = AdmissionRequest::from_value(&r).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "cannot build AdmissionRequest object from given input: missing field `userInfo`"
            ),
            "{err}"
        );
        assert!(AdmissionRequest::from_value(&json!([1])).is_err());
    }

    #[test]
    fn accept_without_anything_prints_nulls() {
        let resp = ValidationResponse {
            accepted: true,
            ..Default::default()
        };
        let ar = AdmissionResponse::from_validation_response("u", Some(&json!({})), &resp).unwrap();
        assert_eq!(
            ar.to_line(),
            r#"{"uid":"u","allowed":true,"auditAnnotations":null,"warnings":null}"#
        );
    }

    #[test]
    fn rejection_with_everything() {
        let resp: ValidationResponse = serde_json::from_value(json!({
            "accepted": false, "message": "no", "code": 403, "mutated_object": null,
            "audit_annotations": {"outcome": "rejected", "reason": "bad: value"},
            "warnings": ["w1"]
        }))
        .unwrap();
        let ar = AdmissionResponse::from_validation_response("u", Some(&json!({})), &resp).unwrap();
        assert_eq!(
            ar.to_line(),
            r#"{"uid":"u","allowed":false,"status":{"message":"no","code":403},"auditAnnotations":{"outcome":"rejected","reason":"bad: value"},"warnings":["w1"]}"#
        );
        // Only the code set still gives a status.
        let resp = ValidationResponse {
            code: Some(400),
            ..Default::default()
        };
        let ar = AdmissionResponse::from_validation_response("u", Some(&json!({})), &resp).unwrap();
        assert_eq!(
            ar.status,
            Some(Status {
                message: None,
                code: Some(400)
            })
        );
    }

    #[test]
    fn mutation_becomes_a_json_patch() {
        let original =
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}});
        let mutated = json!({
            "metadata": {"name": "p", "annotations": {"sidecar.istio.io/status": "{}"}},
            "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}
        });
        let resp = ValidationResponse {
            accepted: true,
            mutated_object: Some(mutated.clone()),
            ..Default::default()
        };
        let ar = AdmissionResponse::from_validation_response("u", Some(&original), &resp).unwrap();
        assert_eq!(ar.patch_type.as_deref(), Some("JSONPatch"));
        let line = ar.to_line();
        assert!(
            line.starts_with(r#"{"uid":"u","allowed":true,"patchType":"JSONPatch","patch":""#),
            "{line}"
        );
        let patch = ar.decoded_patch().unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "add", "path": "/metadata/annotations", "value": {"sidecar.istio.io/status": "{}"}},
                {"op": "add", "path": "/spec/containers/1", "value": {"name": "istio-proxy"}}
            ])
        );
        let mut doc = original.clone();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(doc, mutated);
    }

    #[test]
    fn unchanged_object_gives_no_patch() {
        let original = json!({"a": 1});
        let resp = ValidationResponse {
            accepted: true,
            mutated_object: Some(original.clone()),
            ..Default::default()
        };
        let ar = AdmissionResponse::from_validation_response("u", Some(&original), &resp).unwrap();
        assert_eq!(ar.patch, None);
        assert_eq!(ar.patch_type, None);
        assert_eq!(ar.decoded_patch().unwrap(), None);
    }

    #[test]
    fn mutation_of_a_null_object_is_rejected() {
        let resp = ValidationResponse {
            accepted: true,
            mutated_object: Some(json!({"a": 1})),
            warnings: Some(vec!["dropped".into()]),
            ..Default::default()
        };
        let ar = AdmissionResponse::from_validation_response("u", None, &resp).unwrap();
        assert_eq!(
            ar.to_line(),
            format!(
                r#"{{"uid":"u","allowed":false,"status":{{"message":"{DELETE_MUTATION_MESSAGE}"}},"auditAnnotations":null,"warnings":null}}"#
            )
        );
    }

    #[test]
    fn internal_error() {
        let ar = AdmissionResponse::reject_internal_server_error("u", "boom");
        assert_eq!(
            ar.to_line(),
            r#"{"uid":"u","allowed":false,"status":{"message":"internal server error: boom","code":500},"auditAnnotations":null,"warnings":null}"#
        );
    }
}
