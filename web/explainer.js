// The explainer page: three editors, the policy's engine (web/pkg, wasm-bindgen) evaluated on
// every edit, and its answer shown. Plain JS, no dependencies, no network use: the module and
// this script come from the page's own directory, and the whole case lives in the URL fragment.

import init, { explain, example, validateSettings } from "./pkg/istio_sidecar_injector_web.js";
import { lineOfPath, toYaml, toYamlLines } from "./yaml.js";

const INPUTS = ["pod", "namespace", "settings"];
const $ = (id) => document.getElementById(id);

// Exposed for the browser tests and for the console: the engine, and where the page stands.
const explainer = {
  explain,
  validateSettings,
  example,
  generation: 0, // evaluations done
  saved: 0, // the generation whose state the URL fragment holds
  last: null, // the last answer
  evaluated: null, // the editors' texts it answers
  ready: false,
};
window.explainer = explainer;

// ---------------------------------------------------------------------------------------
// The URL fragment: `#z=` + base64url(deflate-raw(JSON {pod, namespace, settings})), or, to
// write by hand, `#pod=...&namespace=...&settings=...` (URL-encoded texts).

function toBase64Url(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  const s = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

async function pipe(bytes, stream) {
  const out = new Blob([bytes]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

async function encodeState(state) {
  const json = new TextEncoder().encode(JSON.stringify(state));
  if (typeof CompressionStream === "function") {
    return "z=" + toBase64Url(await pipe(json, new CompressionStream("deflate-raw")));
  }
  return "j=" + toBase64Url(json);
}

async function decodeState(fragment) {
  const params = new URLSearchParams(fragment);
  let state;
  if (params.has("z")) {
    const bytes = await pipe(fromBase64Url(params.get("z")), new DecompressionStream("deflate-raw"));
    state = JSON.parse(new TextDecoder().decode(bytes));
  } else if (params.has("j")) {
    state = JSON.parse(new TextDecoder().decode(fromBase64Url(params.get("j"))));
  } else if (INPUTS.some((k) => params.has(k))) {
    state = Object.fromEntries(INPUTS.map((k) => [k, params.get(k) ?? ""]));
  } else {
    return null;
  }
  if (typeof state !== "object" || state === null) throw new Error("not a case");
  return Object.fromEntries(INPUTS.map((k) => [k, typeof state[k] === "string" ? state[k] : ""]));
}

let writtenFragment = null;

async function saveState(generation) {
  const state = Object.fromEntries(INPUTS.map((k) => [k, $(k).value]));
  const fragment = await encodeState(state);
  // A later edit may have been saved meanwhile.
  if (generation < explainer.saved) return;
  writtenFragment = "#" + fragment;
  history.replaceState(null, "", writtenFragment);
  $("permalink").href = writtenFragment;
  explainer.saved = generation;
}

// ---------------------------------------------------------------------------------------
// Editors: a textarea with a line-number gutter; errors marked on their line.

// Rewritten only when the number of lines or the marked line changes: most edits change
// neither, and a long Pod has thousands of lines.
const gutters = new Map();

function updateGutter(name, errorLine) {
  const area = $(name);
  const gutter = area.previousElementSibling;
  let count = 1;
  for (let i = area.value.indexOf("\n"); i >= 0; i = area.value.indexOf("\n", i + 1)) count++;
  const key = `${count}:${errorLine}`;
  if (gutters.get(name) === key) return;
  gutters.set(name, key);
  const numbers = Array.from({ length: count }, (_, i) => String(i + 1));
  if (errorLine >= 1 && errorLine <= count) {
    gutter.replaceChildren(
      numbers.slice(0, errorLine - 1).join("\n") + (errorLine > 1 ? "\n" : ""),
      el("span", { className: "error-line", textContent: String(errorLine) }),
      "\n" + numbers.slice(errorLine).join("\n") + "\n",
    );
  } else {
    gutter.textContent = numbers.join("\n") + "\n";
  }
  gutter.scrollTop = area.scrollTop;
}

function showErrors(answer) {
  const errors = answer.outcome === "invalid" ? answer.errors ?? [answer.error] : [];
  for (const name of INPUTS) {
    const box = $(`${name}-error`);
    const error = errors.find((e) => e && e.input === name);
    let line = null;
    if (error) {
      const where = [];
      line = error.line ?? null;
      if (error.line != null) where.push(`line ${error.line}, column ${error.column}`);
      if (error.path) {
        where.push(`field ${error.path}`);
        line = line ?? lineOfPath($(name).value, error.path);
        if (error.line == null && line != null) where.push(`line ${line}`);
      }
      box.replaceChildren();
      if (where.length) {
        const at = document.createElement("strong");
        at.className = "where";
        at.textContent = where.join(", ");
        box.append(at, ": ");
      }
      box.append(error.message);
      box.dataset.line = line ?? "";
      box.hidden = false;
      $(`${name}-editor`).classList.add("has-error");
    } else {
      box.hidden = true;
      box.textContent = "";
      $(`${name}-editor`).classList.remove("has-error");
    }
    updateGutter(name, line);
  }
}

// Clicking an error puts the cursor where it is.
function jumpToError(name) {
  const box = $(`${name}-error`);
  const line = Number(box.dataset.line);
  if (!line) return;
  const area = $(name);
  const lines = area.value.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  area.focus();
  area.setSelectionRange(offset, offset + (lines[line - 1] ?? "").length);
  area.scrollTop = Math.max(0, (line - 3) * parseFloat(getComputedStyle(area).lineHeight || "16"));
}

// ---------------------------------------------------------------------------------------
// The answer.

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function code(text) {
  return el("code", { textContent: text });
}

function showVerdict(a) {
  const verdict = $("verdict");
  verdict.className = `outcome-${a.outcome}`;
  $("outcome").textContent = a.outcome;
  const allowed = {
    invalid: "",
    rejected: "the Pod is refused",
    "sidecar-missing": "check fails",
    "sidecar-unexpected": "check fails",
    "sidecar-outdated": "check fails",
    "sidecar-current": "check passes",
  }[a.outcome];
  $("allowed").textContent = allowed ?? (a.patch.length ? "admitted, patched" : "admitted as it is");
  $("reason-code").textContent = a.reason.code;
  $("reason-text").textContent = a.reason.text;
  const by = $("selected-by");
  by.hidden = !a.selectedBy;
  by.replaceChildren("selected by Istio's webhook entry ", code(a.selectedBy ?? ""));
  const message = $("message");
  message.hidden = !a.message || a.outcome === "invalid";
  message.textContent = a.message ? `message: ${a.message}` : "";
  const containers = $("containers");
  containers.hidden = a.outcome === "invalid";
  $("containers-list").textContent = (a.containers ?? []).join(", ") || "none";
  $("init-containers-list").textContent = (a.initContainers ?? []).join(", ") || "none";

  for (const list of ["warnings", "notes"]) {
    const items = a[list] ?? [];
    $(list).replaceChildren(...items.map((w) => el("li", { textContent: w })));
    $(`${list}-box`).hidden = items.length === 0;
  }
}

function showDecision(a) {
  const steps = new Map(a.trail.map((s) => [`${s.stage}:${s.rule}`, s]));
  const lookup = a.trail.some((s) => s.stage === "A");
  const decided = a.trail.some((s) => s.decided);
  for (const [stage, container] of [["A", $("stage-a")], ["B", $("stage-b")]]) {
    for (const row of container.querySelectorAll("[data-rule]")) {
      const step = steps.get(`${stage}:${row.dataset.rule}`);
      row.classList.toggle("consulted", !!step);
      row.classList.toggle("decided", !!step?.decided);
      row.classList.toggle("not-reached", !step);
      const result = row.querySelector(".result");
      result.textContent = step ? step.result + (step.decided ? " (decided)" : "") : "—";
    }
  }
  const stageB = a.trail.some((s) => s.stage === "B");
  $("stage-a-note").textContent =
    a.outcome === "invalid"
      ? "Nothing decided: the input cannot be read."
      : lookup
        ? a.selectedBy
          ? `The policy read the Namespace and applied Istio's selectors itself (namespaceSelection: lookup): entry ${a.selectedBy} selects the Pod.`
          : "The policy read the Namespace and applied Istio's selectors itself (namespaceSelection: lookup): no entry selects the Pod, so it is not sent to the injector."
        : decided || stageB
          ? "Not applied here: with namespaceSelection: webhook the API server applied the webhook's selectors before calling the policy."
          : "Not reached.";
  $("stage-b-note").textContent =
    stageB || a.outcome === "invalid"
      ? ""
      : lookup
        ? "Not reached: stage A did not select the Pod."
        : `Not reached: ${a.reason.code}.`;
  // The policy's own words: the response's `trail` audit annotation.
  $("trail-line").textContent = a.auditAnnotations?.trail || "(none)";
}

function preview(value) {
  const text = JSON.stringify(value);
  return text.length > 90 ? text.slice(0, 87) + "…" : text;
}

function showPatch(a) {
  $("patch-count").textContent = `(${a.patch.length} operation${a.patch.length === 1 ? "" : "s"})`;
  const items = a.patch.map((op, i) => {
    // Numbered here: the list's own counter does not cross content-visibility's containment.
    const li = el(
      "li",
      { className: `op op-${op.op}` },
      el("span", { className: "op-index", textContent: `${i + 1}.` }),
      el("span", { className: "op-name", textContent: op.op }),
      " ",
      code(op.path),
    );
    if (op.from !== undefined) li.append(" from ", code(op.from));
    if ("value" in op) {
      if (op.value !== null && typeof op.value === "object") {
        li.append(
          el("details", {}, el("summary", { textContent: preview(op.value) }), el("pre", { textContent: toYaml(op.value) })),
        );
      } else {
        li.append(" ", el("span", { className: "value", textContent: preview(op.value) }));
      }
    }
    return li;
  });
  if (!items.length) {
    items.push(el("li", { className: "none", textContent: a.outcome === "invalid" ? "none: the input cannot be read" : "none: the Pod is not changed" }));
  }
  $("patch").replaceChildren(...items);
}

// What each line shows, against the patch: the line of a value that an `add` put there (or
// anything inside it) is added, a `replace`d one rewritten.
function marks(patch) {
  const byPath = new Map();
  for (const op of patch) {
    if (op.op === "add" || op.op === "copy" || op.op === "move") byPath.set(op.path, "added");
    else if (op.op === "replace") byPath.set(op.path, "rewritten");
  }
  return (pointer) => {
    // The longest patched path that is this pointer or contains it.
    let p = pointer;
    for (;;) {
      if (byPath.has(p)) return byPath.get(p);
      const cut = p.lastIndexOf("/");
      if (cut < 0) return null;
      p = p.slice(0, cut);
    }
  };
}

function showPod(a) {
  const pre = $("pod-yaml");
  if (!a.pod) {
    pre.className = "empty";
    pre.textContent =
      a.outcome === "invalid"
        ? "The input cannot be read: see the error next to the editor."
        : "Not injected: the Pod is stored as it was sent.";
    return;
  }
  pre.className = "";
  const markOf = marks(a.patch);
  // One element per run of lines marked alike: a long Pod has thousands of lines, and
  // layout time grows with elements, not with text.
  const runs = [];
  for (const line of toYamlLines(a.pod)) {
    const mark = markOf(line.pointer) ?? "";
    const last = runs[runs.length - 1];
    if (last && last.mark === mark) last.text += line.text + "\n";
    else runs.push({ mark, text: line.text + "\n" });
  }
  pre.replaceChildren(
    ...runs.map((r) => {
      const span = el("span", { className: r.mark ? `line ${r.mark}` : "line", textContent: r.text });
      // Its height until it is laid out (content-visibility: auto), so that the scrollbar is right.
      span.style.containIntrinsicBlockSize = `auto ${r.text.split("\n").length - 1}lh`;
      return span;
    }),
  );
}

let downloadUrls = [];

function showReproduce(a) {
  for (const url of downloadUrls) URL.revokeObjectURL(url);
  downloadUrls = [];
  const box = $("reproduce-box");
  if (!a.reproduce) {
    $("command").textContent = "(fix the input first)";
    $("downloads").replaceChildren();
    box.classList.add("unavailable");
    return;
  }
  box.classList.remove("unavailable");
  $("command").textContent = a.reproduce.command;
  const files = [
    ["request.json", a.reproduce.request, "application/json"],
    ["settings.json", a.reproduce.settings, "application/json"],
  ];
  if (a.reproduce.session) files.push(["session.yml", a.reproduce.session, "application/yaml"]);
  const links = files.map(([name, text, type]) => {
    const url = URL.createObjectURL(new Blob([text], { type }));
    downloadUrls.push(url);
    return el("a", { href: url, download: name, className: "download", textContent: name });
  });
  $("downloads").replaceChildren(...links.flatMap((l, i) => (i ? [" ", l] : [l])));
}

function show(a) {
  showErrors(a);
  showVerdict(a);
  showDecision(a);
  showPatch(a);
  showPod(a);
  showReproduce(a);
}

// ---------------------------------------------------------------------------------------
// Evaluation on every edit (edits within one task are evaluated once).

let pending = false;

function evaluate() {
  pending = false;
  const inputs = INPUTS.map((name) => $(name).value);
  let answer;
  try {
    answer = explain(...inputs);
    if (!answer || typeof answer.outcome !== "string") throw new Error("the engine gave no answer");
  } catch (e) {
    // explain never throws; a broken module is still said, not a blank page.
    answer = {
      outcome: "invalid",
      reason: { code: "engine-error", text: String(e) },
      message: String(e),
      trail: [],
      warnings: [],
      notes: [],
      patch: [],
      pod: null,
      reproduce: null,
      errors: [],
    };
  }
  explainer.last = answer;
  explainer.evaluated = inputs;
  explainer.generation += 1;
  show(answer);
  saveState(explainer.generation).catch((e) => {
    $("status").textContent = `The link cannot be updated: ${e}`;
  });
}

// The browser tests time a whole page update with it.
explainer.evaluateNow = evaluate;

function schedule() {
  if (pending) return;
  pending = true;
  setTimeout(evaluate, 0);
}

function fill(state) {
  for (const name of INPUTS) $(name).value = state[name];
  schedule();
}

async function loadFromFragment() {
  const fragment = location.hash.slice(1);
  if (!fragment) return false;
  try {
    const state = await decodeState(fragment);
    if (!state) return false;
    fill(state);
    return true;
  } catch (e) {
    $("status").textContent = `This link's case cannot be read (${e.message ?? e}): showing the example.`;
    return false;
  }
}

async function main() {
  for (const name of INPUTS) {
    const area = $(name);
    area.addEventListener("input", schedule);
    area.addEventListener("change", schedule);
    area.addEventListener("scroll", () => {
      area.previousElementSibling.scrollTop = area.scrollTop;
    });
    $(`${name}-error`).addEventListener("click", () => jumpToError(name));
  }
  $("example").addEventListener("click", () => fill(example()));
  window.addEventListener("hashchange", () => {
    // Our own replaceState fires none; a link pasted into this tab does.
    if (location.hash !== writtenFragment) loadFromFragment();
  });
  try {
    await init();
  } catch (e) {
    $("status").textContent = `The engine cannot be loaded: ${e.message ?? e}. Serve this directory over HTTP (make web-serve) after make web.`;
    $("outcome").textContent = "unavailable";
    $("reason-text").textContent = "The WebAssembly module (pkg/) did not load.";
    return;
  }
  explainer.ready = true;
  $("status").textContent = "";
  if (!(await loadFromFragment())) fill(example());
}

main();
