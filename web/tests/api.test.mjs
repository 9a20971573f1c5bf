// The JS API of web/pkg, as a script uses it: explain and validateSettings never throw,
// whatever they are given, and a JS object is the same input as its JSON text.
//
//   node --test web/tests/api.test.mjs        (after `make web`)

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = process.env.WEB_PKG || join(root, "web", "pkg");
const { initSync, explain, validateSettings, example } = await import(
  pathToFileURL(join(pkg, "istio_sidecar_injector_web.js")).href
);
initSync({ module: readFileSync(join(pkg, "istio_sidecar_injector_web_bg.wasm")) });

const pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "shop" },
  spec: { containers: [{ name: "web", image: "web:1" }] },
};

test("a JS object is the same input as its JSON text", () => {
  const fromText = explain(JSON.stringify(pod), '{"istio-injection": "enabled"}', '{"policy": "enabled"}');
  const fromObjects = explain(pod, { "istio-injection": "enabled" }, { policy: "enabled" });
  assert.equal(fromText.outcome, "injected");
  assert.deepEqual(fromObjects, fromText);
  assert.deepEqual(validateSettings({ policy: "maybe" }), validateSettings('{"policy": "maybe"}'));
});

test("null and undefined are empty inputs: webhook selection, default settings", () => {
  const a = explain(pod, undefined, null);
  assert.equal(a.outcome, "injected");
  assert.equal(a.selectedBy, null);
  assert.ok(a.trail.every((s) => s.stage === "B"));
  assert.deepEqual(validateSettings(undefined), { valid: true, message: null });
});

test("explain and validateSettings never throw, and say what is wrong", () => {
  const cyclic = {};
  cyclic.self = cyclic;
  const odd = [undefined, null, "", "   ", 42, true, [], {}, "[", "{", "- a\n- b", "kind: Deployment\n", "\u0000", "a: *x",
    cyclic, 10n, Symbol("x"), () => 1, "x".repeat(100000), "[".repeat(10000), "a:\n".repeat(2000)];
  for (const p of odd) {
    for (const [n, s] of [["", ""], [p, ""], ["", p]]) {
      const a = explain(p, n, s);
      assert.equal(typeof a.outcome, "string");
      if (a.outcome === "invalid") {
        assert.ok(a.message.length > 0);
        assert.ok(["pod", "namespace", "settings"].includes(a.error.input), JSON.stringify(a.error));
      }
    }
    const v = validateSettings(p);
    assert.equal(typeof v.valid, "boolean");
  }
  // The empty Pod is not a Pod, and says so.
  const a = explain("", "", "");
  assert.equal(a.outcome, "invalid");
  assert.match(a.message, /^pod: empty/);
});

test("example() is make run's case, and it injects", () => {
  const e = example();
  const a = explain(e.pod, e.namespace, e.settings);
  assert.equal(a.outcome, "injected");
  assert.deepEqual(a.containers, ["reviews", "istio-proxy"]);
  assert.equal(e.settings, readFileSync(join(root, "demo", "settings.yml"), "utf8"));
});
