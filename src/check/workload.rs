//! What to do about a Pod whose sidecar is wrong: a Pod gets (or loses) its sidecar only when
//! it is created again, so the advice names the workload that re-creates it, found through
//! the Pod's `ownerReferences`.

use crate::json::Value;
use crate::pod;

/// The label a Deployment's ReplicaSets carry, and whose value ends their names.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The command that makes the Pod's workload create it again, with a word on what it does.
pub fn restart_advice(pod: &Value, namespace: &str, goal: &str) -> String {
    let name = pod::metadata_str(pod, "name");
    let delete = format!("kubectl delete pod {name} -n {namespace}");
    match owner(pod) {
        Some(Owner::Restartable { resource, name }) => format!(
            "Restart its workload to {goal}: kubectl rollout restart {resource}/{name} -n {namespace}"
        ),
        Some(Owner::Recreates { kind, name: owner }) => format!(
            "Delete the Pod so that its {kind} {owner} creates it again, to {goal}: {delete}"
        ),
        None => format!("The Pod has no owner: delete it and create it again, to {goal}: {delete}"),
    }
}

enum Owner<'a> {
    /// A workload `kubectl rollout restart` takes.
    Restartable {
        resource: &'static str,
        name: String,
    },
    /// Another controller, which creates the Pod again once it is deleted.
    Recreates { kind: &'a str, name: &'a str },
}

/// The Pod's controller (the owner reference marked `controller`, else the first), and for a
/// ReplicaSet created by a Deployment, the Deployment: its name is the ReplicaSet's without
/// the `-<pod-template-hash>` suffix.
fn owner<'p>(pod: &'p Value) -> Option<Owner<'p>> {
    let refs = pod.get("metadata")?.get("ownerReferences")?.as_array()?;
    let reference = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    let kind = reference.get("kind").and_then(Value::as_str)?;
    let name = reference.get("name").and_then(Value::as_str)?;
    let group = reference
        .get("apiVersion")
        .and_then(Value::as_str)
        .map_or("", |v| v.split_once('/').map_or("", |(g, _)| g));
    if group != "apps" {
        return Some(Owner::Recreates { kind, name });
    }
    let restartable = |resource, name: &str| Owner::Restartable {
        resource,
        name: name.to_string(),
    };
    Some(match kind {
        "StatefulSet" => restartable("statefulset", name),
        "DaemonSet" => restartable("daemonset", name),
        "ReplicaSet" => {
            let hash = pod::metadata_map(pod, "labels")
                .and_then(|l| l.get(POD_TEMPLATE_HASH))
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty());
            match hash.and_then(|h| name.strip_suffix(h)?.strip_suffix('-')) {
                Some(deployment) if !deployment.is_empty() => restartable("deployment", deployment),
                _ => Owner::Recreates { kind, name },
            }
        }
        _ => Owner::Recreates { kind, name },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::from_json as json;

    fn pod(owner: Value<'static>, labels: Value<'static>) -> Value<'static> {
        let mut metadata = crate::json::Map::new();
        metadata.insert("name", "reviews-v1-5f7b9c-abcde".into());
        metadata.insert("labels", labels);
        metadata.insert("ownerReferences", Value::from(vec![owner]));
        crate::json::object([("metadata", Value::Object(metadata))])
    }

    #[test]
    fn replica_set_of_a_deployment_restarts_the_deployment() {
        let p = pod(
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "reviews-v1-5f7b9c", "controller": true}),
            json!({"pod-template-hash": "5f7b9c"}),
        );
        assert_eq!(
            restart_advice(&p, "bookinfo", "inject the sidecar"),
            "Restart its workload to inject the sidecar: kubectl rollout restart deployment/reviews-v1 -n bookinfo"
        );
    }

    #[test]
    fn replica_set_without_a_deployment_deletes_the_pod() {
        let p = pod(
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "reviews", "controller": true}),
            json!({}),
        );
        assert_eq!(
            restart_advice(&p, "bookinfo", "inject the sidecar"),
            "Delete the Pod so that its ReplicaSet reviews creates it again, to inject the sidecar: kubectl delete pod reviews-v1-5f7b9c-abcde -n bookinfo"
        );
    }

    #[test]
    fn stateful_sets_and_daemon_sets_restart() {
        for (kind, resource) in [("StatefulSet", "statefulset"), ("DaemonSet", "daemonset")] {
            let p = pod(
                json!({"apiVersion": "apps/v1", "kind": kind, "name": "db", "controller": true}),
                json!({}),
            );
            assert!(
                restart_advice(&p, "shop", "update the sidecar")
                    .ends_with(&format!("kubectl rollout restart {resource}/db -n shop")),
                "{kind}"
            );
        }
    }

    #[test]
    fn the_controller_reference_wins_over_the_first() {
        let p = json!({"metadata": {"name": "x", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm"},
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]}});
        assert!(
            restart_advice(&p, "ns", "g")
                .ends_with("kubectl rollout restart daemonset/agent -n ns")
        );
    }

    #[test]
    fn other_owners_and_bare_pods_delete_the_pod() {
        let p = json!({"metadata": {"name": "job-x", "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly", "controller": true}]}});
        assert_eq!(
            restart_advice(&p, "ns", "g"),
            "Delete the Pod so that its Job nightly creates it again, to g: kubectl delete pod job-x -n ns"
        );
        let bare = json!({"metadata": {"name": "solo"}});
        assert_eq!(
            restart_advice(&bare, "ns", "g"),
            "The Pod has no owner: delete it and create it again, to g: kubectl delete pod solo -n ns"
        );
    }
}
