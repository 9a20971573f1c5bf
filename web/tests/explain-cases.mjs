// Runs `explain` from web/pkg (the module the page loads, with wasm-bindgen's `initSync`) on
// a list of cases and prints the answers as JSON, one per case, in order. The policy-parity
// test (e2e-tests/tests/web_parity.rs) compares them with the policy module's answers.
//
//   node web/tests/explain-cases.mjs CASES.json
//
// CASES: [{name, pod, namespace, settings, moduleSettings}]: `moduleSettings`, the settings
// as the module gets them (JSON), also go through `validateSettings` (as `settingsCheck`).
//
// WEB_PKG names the wasm-bindgen output directory (default: web/pkg).

import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(process.env.WEB_PKG || join(here, "..", "pkg"));
const glue = await import(pathToFileURL(join(pkg, "istio_sidecar_injector_web.js")).href);
glue.initSync({ module: readFileSync(join(pkg, "istio_sidecar_injector_web_bg.wasm")) });

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const answers = cases.map((c) => {
  const a = glue.explain(c.pod, c.namespace, c.settings);
  // What the policy's response can be compared with; the rest (the Pod, the files for
  // kwctl) follows from these.
  const { outcome, reason, selectedBy, trail, warnings, message, auditAnnotations, patch, containers, error, errors } = a;
  const settingsCheck = glue.validateSettings(c.moduleSettings);
  return { outcome, reason, selectedBy, trail, warnings, message, auditAnnotations, patch, containers, error, errors, settingsCheck };
});
process.stdout.write(JSON.stringify(answers));
