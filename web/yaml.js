// A small YAML emitter for showing JSON values, kubectl's style (maps with their keys in the
// order they come, list items at their key's indentation). Each line carries the JSON
// pointer (RFC 6901) of what it shows, so that the page can mark the lines a JSONPatch
// touched. Display only: the engine reads YAML itself (serde_yaml), nothing here is parsed.

/** Escapes one JSON pointer token. */
export function pointerToken(key) {
  return String(key).replaceAll("~", "~0").replaceAll("/", "~1");
}

// Plain scalars YAML would read as something else than this string.
const RESERVED = /^(?:|~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N|[-+]?(?:\.inf|\.Inf|\.INF)|\.nan|\.NaN|\.NAN)$/;
const NUMBER_LIKE = /^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$|^0x[0-9a-fA-F_]+$|^0o?[0-7_]+$|^[-+]?\d[\d_]*(?::[0-5]?\d)+(?:\.\d*)?$/;

/** A string as a YAML scalar: plain when YAML reads it back as the same string. */
export function scalarString(s) {
  const plain =
    !RESERVED.test(s) &&
    !NUMBER_LIKE.test(s) &&
    !/^[\s\-?:,[\]{}#&*!|>'"%@`]/.test(s) &&
    !/\s$/.test(s) &&
    !/: |:$| #|[\n\r\t]/.test(s) &&
    // Control and non-printable characters need escapes.
    !/[\u0000-\u001f\u007f-\u009f\ufeff]/.test(s);
  if (plain) return s;
  // A double-quoted YAML scalar accepts JSON's escapes.
  return JSON.stringify(s);
}

function scalar(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return scalarString(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

function isCollection(v) {
  return v !== null && typeof v === "object" && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
}

function inline(v) {
  if (Array.isArray(v)) return "[]";
  if (v !== null && typeof v === "object") return "{}";
  return scalar(v);
}

/**
 * The lines of `value` as YAML: [{text, pointer}], `pointer` being the JSON pointer of the
 * value the line introduces (for a list item's first line, its first key's).
 */
export function toYamlLines(value, pointer = "") {
  const lines = [];
  emit(value, pointer, "", lines);
  return lines;
}

/** `value` as YAML text. */
export function toYaml(value) {
  return toYamlLines(value).map((l) => l.text).join("\n") + "\n";
}

// Emits a collection's entries at `indent`; scalars and empty collections as one line.
function emit(value, pointer, indent, lines) {
  if (!isCollection(value)) {
    lines.push({ text: indent + inline(value), pointer });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => item_(item, `${pointer}/${i}`, indent, lines));
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    entry(key, v, `${pointer}/${pointerToken(key)}`, indent, lines);
  }
}

function entry(key, v, pointer, indent, lines) {
  const k = scalarString(key);
  if (!isCollection(v)) {
    if (typeof v === "string" && v.includes("\n") && !/[\u0000-\u0009\u000b-\u001f]/.test(v)) {
      block(`${indent}${k}: `, v, pointer, indent + "  ", lines);
      return;
    }
    lines.push({ text: `${indent}${k}: ${inline(v)}`, pointer });
    return;
  }
  lines.push({ text: `${indent}${k}:`, pointer });
  // kubectl's style: a list under a key at the key's indentation, a map one level in.
  emit(v, pointer, Array.isArray(v) ? indent : indent + "  ", lines);
}

// A multi-line string as a literal block (`|`, `|-` without a final newline).
function block(head, s, pointer, indent, lines) {
  const chomp = s.endsWith("\n") ? "" : "-";
  const body = s.endsWith("\n") ? s.slice(0, -1) : s;
  // A first line that starts with a space needs an explicit indentation indicator.
  const indicator = body.startsWith(" ") ? "2" : "";
  lines.push({ text: `${head}|${indicator}${chomp}`, pointer });
  for (const line of body.split("\n")) {
    lines.push({ text: line === "" ? "" : indent + line, pointer });
  }
}

function item_(item, pointer, indent, lines) {
  if (!isCollection(item)) {
    if (typeof item === "string" && item.includes("\n")) {
      block(`${indent}- `, item, pointer, indent + "  ", lines);
      return;
    }
    lines.push({ text: `${indent}- ${inline(item)}`, pointer });
    return;
  }
  // The item's first line carries the dash; the rest is indented under it.
  const start = lines.length;
  emit(item, pointer, indent + "  ", lines);
  const first = lines[start];
  first.text = `${indent}- ${first.text.slice(indent.length + 2)}`;
}

// The line (1-based) of a settings field (`values.global.proxy.statusPort`,
// `neverInjectSelector[0].matchLabels`) in block-style YAML, found by indentation; null when
// it cannot be told (flow style, JSON). Lets the page mark the line an error names.
export function lineOfPath(text, path) {
  const keys = path.replace(/\[\d+\]/g, "").split(".").filter(Boolean);
  const lines = text.split("\n");
  let from = 0;
  let indent = -1; // the column of the key found last
  let found = null;
  for (const key of keys) {
    const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const re = new RegExp(`^(\\s*(?:- )?)["']?${escaped}["']?\\s*:(?:\\s|$)`);
    found = null;
    for (let i = from; i < lines.length; i++) {
      const content = lines[i].search(/\S/);
      if (content < 0 || lines[i][content] === "#") continue;
      const m = re.exec(lines[i]);
      if (m && m[1].length > indent) {
        found = i;
        indent = m[1].length;
        from = i + 1;
        break;
      }
      // Past the parent's block.
      if (content <= indent) break;
    }
    if (found === null) return null;
  }
  return found === null ? null : found + 1;
}
