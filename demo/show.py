"""Prints a kwctl/kwhost AdmissionResponse line and the Pod it produces (the request's Pod
with the JSONPatch applied). Standard library only."""
import base64, copy, json, sys

def unescape(token):
    return token.replace("~1", "/").replace("~0", "~")

def apply(doc, patch):
    for op in patch:
        parts = [unescape(p) for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                i = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(i, op["value"])
                else:
                    parent[i] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise SystemExit(f"unsupported op {op['op']}")
    return doc

request = json.load(open(sys.argv[1]))
request = request.get("request", request)
response = json.loads(sys.stdin.read().strip().splitlines()[-1])
patch = json.loads(base64.b64decode(response["patch"])) if response.get("patch") else []
print("== AdmissionResponse (patch decoded) ==")
shown = dict(response)
if "patch" in shown:
    shown["patch"] = patch
# kwctl prints auditAnnotations in no fixed order (a hash map), kwhost sorted: show them sorted.
if shown.get("auditAnnotations"):
    shown["auditAnnotations"] = dict(sorted(shown["auditAnnotations"].items()))
print(json.dumps(shown, indent=2))
print("== Pod after the patch ==")
print(json.dumps(apply(copy.deepcopy(request["object"]), patch), indent=2))
