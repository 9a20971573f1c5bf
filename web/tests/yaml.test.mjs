// The page's YAML emitter (web/yaml.js): what it shows reads back, through the engine's own
// YAML reader (explain from web/pkg), as the very document it showed; each line knows the
// JSON pointer of what it shows; a settings field is found on its line.
//
//   node --test web/tests/yaml.test.mjs       (after `make web`)

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { lineOfPath, scalarString, toYaml, toYamlLines } from "../yaml.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = process.env.WEB_PKG || join(root, "web", "pkg");
const glue = await import(pathToFileURL(join(pkg, "istio_sidecar_injector_web.js")).href);
glue.initSync({ module: readFileSync(join(pkg, "istio_sidecar_injector_web_bg.wasm")) });

test("strings YAML would read as something else are quoted, the others are plain", () => {
  for (const s of ["true", "False", "yes", "off", "null", "~", "", "123", "-1.5", "1e3", "0x1F", "0o17", "12:30", ".inf",
    "a: b", "a #b", "- x", "{x}", "[x]", "*x", "&x", "!x", "%x", "@x", "`x", "'x", "\"x", "x ", " x", "a\nb", "tab\there", "|", ">"]) {
    assert.notEqual(scalarString(s), s, `${JSON.stringify(s)} must be quoted`);
    assert.equal(JSON.parse(scalarString(s)), s);
  }
  for (const s of ["plain", "1.30.3", "docker.io/istio/proxyv2:1.30.3", "a:b", "x-y", "/stats/prometheus", "100m", "default:info"]) {
    assert.equal(scalarString(s), s);
  }
});

test("each line carries the JSON pointer of what it shows", () => {
  const lines = toYamlLines({ metadata: { annotations: { "a/b": "x" } }, spec: { containers: [{ name: "app", ports: [{ containerPort: 80 }] }], empty: [] } });
  assert.deepEqual(lines, [
    { text: "metadata:", pointer: "/metadata" },
    { text: "  annotations:", pointer: "/metadata/annotations" },
    { text: "    a/b: x", pointer: "/metadata/annotations/a~1b" },
    { text: "spec:", pointer: "/spec" },
    { text: "  containers:", pointer: "/spec/containers" },
    { text: "  - name: app", pointer: "/spec/containers/0/name" },
    { text: "    ports:", pointer: "/spec/containers/0/ports" },
    { text: "    - containerPort: 80", pointer: "/spec/containers/0/ports/0/containerPort" },
    { text: "  empty: []", pointer: "/spec/empty" },
  ]);
});

// Every golden case's Pod, before and after injection: shown as YAML and pasted back, the
// engine reads the same Pod (the injected Pod it returns keeps every field it was given).
test("what the page shows reads back as the same Pod", () => {
  const golden = join(root, "tests", "golden");
  const dirs = readdirSync(golden).filter((d) => existsSync(join(golden, d, "case.json")));
  assert.ok(dirs.length >= 30, `${dirs.length} golden cases`);
  for (const dir of dirs) {
    const c = JSON.parse(readFileSync(join(golden, dir, "case.json"), "utf8"));
    const injected = JSON.parse(readFileSync(join(golden, dir, "expected.json"), "utf8"));
    const labels = JSON.stringify(c.namespaceLabels);
    const settings = JSON.stringify(c.settings);
    for (const pod of [c.pod, injected]) {
      const fromJson = glue.explain(JSON.stringify(pod), labels, settings);
      const fromYaml = glue.explain(toYaml(pod), labels, settings);
      assert.equal(fromYaml.outcome, "injected", `${dir}: ${fromYaml.message}`);
      assert.deepEqual(fromYaml.pod, fromJson.pod, dir);
      assert.deepEqual(fromYaml.patch, fromJson.patch, dir);
    }
  }
});

test("a settings field is found on its line", () => {
  const settings = [
    "# comment",
    "policy: enabled",
    "neverInjectSelector:",
    "- matchLabels: {tier: batch}",
    "values:",
    "  pilot:",
    "    statusPort: 1",
    "  global:",
    "    # the proxy",
    "    proxy:",
    "      statusPort: high",
    "",
  ].join("\n");
  assert.equal(lineOfPath(settings, "values.global.proxy.statusPort"), 11);
  assert.equal(lineOfPath(settings, "policy"), 2);
  assert.equal(lineOfPath(settings, "neverInjectSelector[0].matchLabels"), 4);
  // Not under values.pilot: values.pilot.proxy does not exist.
  assert.equal(lineOfPath(settings, "values.pilot.proxy"), null);
  assert.equal(lineOfPath('{"policy": "x"}', "policy"), null);
});
