#!/usr/bin/env python3
"""Generates the example Pods used by benches/ and the property/hostile tests.

    python3 tests/data/gen_pods.py        # rewrites tests/data/pod-{1,3,20}-containers.json

Each file is a Kubernetes AdmissionRequest (CREATE of a v1 Pod, namespace `shop`) whose Pod
looks like one a ReplicaSet controller creates: every container has named ports, env vars
(plain, valueFrom), volume mounts, resources, a securityContext, HTTP/TCP/gRPC probes and a
preStop hook; the Pod carries 30 annotations (a few of them Istio's) and 8 labels.
The output is deterministic (no randomness), so regenerating gives identical files.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def container(i):
    name = "app" if i == 0 else f"worker-{i}"
    c = {
        "name": name,
        "image": f"registry.example.com/shop/{name}:1.{i}.0",
        "imagePullPolicy": "IfNotPresent",
        "args": ["--config=/etc/shop/config.yaml", f"--instance={i}", "--log-format=json"],
        "ports": [
            {"name": "http", "containerPort": 8080 + i, "protocol": "TCP"},
            {"name": "grpc", "containerPort": 9090 + i, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9464 + i, "protocol": "TCP"},
        ],
        "env": [
            {"name": "SHOP_MODE", "value": "production"},
            {"name": "SHOP_INSTANCE", "value": str(i)},
            {"name": "SHOP_LOG_LEVEL", "value": "info"},
            {"name": "SHOP_DB_URL", "value": "postgres://db.shop.svc.cluster.local:5432/shop"},
            {"name": "SHOP_CACHE_URL", "value": "redis://cache.shop.svc.cluster.local:6379"},
            {"name": "SHOP_FEATURE_FLAGS", "value": "checkout-v2,recommendations,search-v3"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "SHOP_DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}}},
            {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}},
        ],
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/shop", "readOnly": True},
            {"name": "cache", "mountPath": "/var/cache/shop"},
            {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
            {"name": "kube-api-access-7xk2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP",
                        "httpHeaders": [{"name": "X-Probe", "value": "kubelet"}]},
            "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 2,
            "successThreshold": 1, "failureThreshold": 3,
        },
        "livenessProbe": {
            "tcpSocket": {"port": 8080 + i},
            "initialDelaySeconds": 15, "periodSeconds": 20, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3,
        },
        "startupProbe": {
            "grpc": {"port": 9090 + i, "service": "shop.Health"},
            "periodSeconds": 5, "timeoutSeconds": 3, "successThreshold": 1, "failureThreshold": 30,
        },
        "lifecycle": {
            "preStop": {"httpGet": {"path": "/drain", "port": "http"}},
        },
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    return c


def annotations():
    a = {
        # Istio's own (valid values).
        "sidecar.istio.io/proxyCPU": "100m",
        "sidecar.istio.io/proxyMemory": "128Mi",
        "sidecar.istio.io/logLevel": "warning",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "5432,6379",
        "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true\n",
        # Prometheus scrape annotations (metrics merge rewrites them).
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9464",
        "prometheus.io/path": "/metrics",
        "kubectl.kubernetes.io/default-container": "app",
        "kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z",
    }
    for k in range(30 - len(a)):
        a[f"shop.example.com/annotation-{k:02d}"] = f"value {k} " + "x" * (8 * (k % 5))
    return a


def request(n):
    containers = [container(i) for i in range(n)]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"shop-{n}c-7d9f8b6c5-abcde",
            "generateName": f"shop-{n}c-7d9f8b6c5-",
            "namespace": "shop",
            "labels": {
                "app": "shop", "version": "v1", "tier": "backend", "team": "payments",
                "app.kubernetes.io/name": "shop", "app.kubernetes.io/part-of": "store",
                "app.kubernetes.io/version": "1.0.0", "pod-template-hash": "7d9f8b6c5",
            },
            "annotations": annotations(),
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"shop-{n}c-7d9f8b6c5",
                "uid": "0b7c0a31-2d47-4d5e-9a0f-5c1b7e2f9d11", "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "spec": {
            "serviceAccountName": "shop",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {"fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "containers": containers,
            "volumes": [
                {"name": "config", "configMap": {"name": "shop-config", "defaultMode": 420}},
                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "tls", "secret": {"secretName": "shop-tls", "defaultMode": 256}},
                {"name": "kube-api-access-7xk2p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ]}},
            ],
        },
    }
    return {
        "uid": f"5f2c8f3e-0000-4000-8000-{n:012d}",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "",
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": pod,
        "oldObject": None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }


def main():
    for n in (1, 3, 20):
        path = os.path.join(HERE, f"pod-{n}-containers.json")
        with open(path, "w") as f:
            json.dump(request(n), f, indent=2)
            f.write("\n")
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "shop", "labels": {"istio-injection": "enabled",
                                                  "kubernetes.io/metadata.name": "shop"}}}
    with open(os.path.join(HERE, "namespace-shop.json"), "w") as f:
        json.dump(ns, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
