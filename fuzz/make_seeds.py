#!/usr/bin/env python3
"""Writes the seed corpus of the `validate_payload` target (fuzz/corpus/validate_payload/).

    python3 fuzz/make_seeds.py

Seeds: the example Pods of tests/data (1 and 3 containers), a few e2e scenarios (request +
settings), and small hostile payloads (deep nesting, bad UTF-8 and surrogates, odd numbers,
two spellings of one Prometheus annotation, a Pod that already carries Istio's status).
Files the fuzzers add later (named by their hash) are left alone.
"""
import json
import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "corpus", "validate_payload")


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()


def payload(request, settings=None):
    return compact({"request": request, "settings": settings or {}})


def write(name, data):
    with open(os.path.join(OUT, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    examples = {}
    for n in (1, 3):
        with open(os.path.join(ROOT, "tests", "data", f"pod-{n}-containers.json")) as f:
            examples[n] = json.load(f)
        write(f"example-{n}-containers", payload(examples[n]))

    scenarios = os.path.join(ROOT, "e2e-tests", "scenarios")
    for name in [
        "probe-rewrite", "native-sidecar", "gateway-template", "cni-validation",
        "traffic-ranges", "resources-annotations", "unknown-fields-survive",
        "status-annotation-exact", "never-inject-selector", "revision-namespace",
        "bad-annotation-rejected", "not-a-pod",
    ]:
        d = os.path.join(scenarios, name)
        if not os.path.isdir(d):
            continue
        with open(os.path.join(d, "request.json")) as f:
            request = json.load(f)
        settings = {}
        if os.path.exists(os.path.join(d, "settings.yml")):
            with open(os.path.join(d, "settings.yml")) as f:
                settings = yaml.safe_load(f) or {}
        write("scenario-" + name, payload(request, settings))

    base = examples[1]
    pod = base["object"]

    def variant(name, edit, settings=None):
        r = json.loads(json.dumps(base))
        edit(r["object"])
        write(name, payload(r, settings))

    variant("prometheus-two-spellings", lambda p: p["metadata"]["annotations"].update(
        {"prometheus-io/port": "9091", "prometheus.io/port": "15020"}),
        {"meshConfig": {"enablePrometheusMerge": True}})
    variant("user-istio-proxy", lambda p: p["spec"]["containers"].append(
        {"name": "istio-proxy", "image": "auto", "env": [{"name": "A", "value": ""}],
         "securityContext": {"runAsUser": 1000}, "ports": [{"containerPort": 9000}]}),
        {"nativeSidecars": True, "values": {"global": {"multiCluster": {"clusterName": "c1"}}}})
    variant("grpc-agent-empty-lists", lambda p: p["spec"]["containers"][0].update(
        {"command": [], "x-unknown": [], "x-float": 511855092.42505485}),
        {"defaultTemplates": ["grpc-agent"]})
    variant("tproxy", lambda p: p["metadata"]["annotations"].update(
        {"sidecar.istio.io/interceptionMode": "TPROXY",
         "proxy.istio.io/overrides": '{"containers":[{"name":"istio-proxy"}]}',
         "sidecar.istio.io/userVolume": '{"uv":{"emptyDir":{}}}',
         "sidecar.istio.io/userVolumeMount": '{"uv":{"mountPath":"/uv"}}'}))
    variant("odd-numbers", lambda p: p["spec"]["containers"][0]["ports"][0].update(
        {"containerPort": 18446744073709551615}))

    text = payload(base).decode()
    raw = {
        "nesting-130": text.replace('"spec":{', '"spec":{"x":' + "[" * 130 + "]" * 130 + ",", 1),
        "lone-surrogate": text.replace('"app"', '"\\ud800"', 1),
        "surrogate-pair": text.replace('"app"', '"\\ud83d\\ude00"', 1),
        "number-1e999": text.replace('"containerPort":8080', '"containerPort":1e999', 1),
        "empty-object": "{}",
        "request-null": '{"request":null}',
        "update": text.replace('"operation":"CREATE"', '"operation":"UPDATE"', 1),
    }
    for name, t in raw.items():
        write(name, t.encode())
    write("bad-utf8", text.replace('"app"', '"a\udcff"', 1).encode("utf-8", "surrogateescape"))


if __name__ == "__main__":
    main()


def structured_seeds():
    """Seeds of `structured_pod`: deterministic pseudo-random bytes of a few sizes (the
    target turns any bytes into a Pod, settings and namespace)."""
    import random

    out = os.path.join(HERE, "corpus", "structured_pod")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(5)
    for size in (0, 16, 64, 256, 512, 1024, 2048, 4096):
        with open(os.path.join(out, f"seed-random-{size}"), "wb") as f:
            f.write(bytes(rng.getrandbits(8) for _ in range(size)))


structured_seeds()
