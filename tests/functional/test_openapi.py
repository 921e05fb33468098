"""The OpenAPI description (docs/openapi.json) against the server it describes.

- The document is well formed for what tools and these tests rely on: OpenAPI 3.0.x, every
  operation with responses and a unique operationId, every {param} of a path declared as a required
  path parameter, every $ref resolving.
- Every route the server serves (the route labels of server/api/api.cpp) is described, and every
  described path is routed there.
- Against a real server: every described operation is served (not the router's 404 "no such
  endpoint", not 405), answers a status the description lists for it, and its JSON answers have the
  described shape; a method a /api/v1 path does not describe is refused with 405 and an Allow header
  that names exactly the described methods.
- GET /api/v1/openapi.json serves the file.

A route added to the server without the description, or the other way round, fails here with the
route named.
"""
import json
import os
import re
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Lab, SOURCE  # noqa: E402

SPEC_FILE = os.path.join(SOURCE, "docs", "openapi.json")
API_SOURCE = os.path.join(SOURCE, "server", "api", "api.cpp")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_spec():
    with open(SPEC_FILE) as f:
        return json.load(f)


def resolve(spec, node):
    """Follows a local $ref ("#/components/...") to what it names; raises KeyError when it names nothing."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise KeyError(f"{ref}: only local references are used here")
        target = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def operations(spec):
    """(path, method, operation) for every operation of the document."""
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def served_routes():
    """The route templates server/api/api.cpp labels its answers with (the labels of /metrics)."""
    with open(API_SOURCE) as f:
        source = f.read()
    routes = set()
    for label, suffix in re.findall(r'\broute\s*=\s*"([^"]*)"\s*(\+\s*\w+)?', source):
        if label == "unmatched":
            continue
        if not suffix:
            routes.add(label)
            continue
        # The worker's job actions: one label per action the route's regex accepts.
        if suffix.replace(" ", "") != "+action":
            raise AssertionError(f"api.cpp builds a route label as \"{label}\" {suffix}: teach test_openapi.py "
                                 f"which routes that makes")
        m = re.search(r'kJobAction\(R"\(.*/\(([\w|]+)\)\)"\)', source)
        if not m:
            raise AssertionError("cannot find the job actions (kJobAction) in server/api/api.cpp")
        routes.update(label + action for action in m.group(1).split("|"))
    # The dashboard's labels: `route = p == "/" || ... ? "/" : ... ? "/vendor/{file}" : "/assets/{file}";`
    m = re.search(r"\broute\s*=\s*p\s*==([^;]*);", source)
    if not m:
        raise AssertionError("cannot find the dashboard's route labels (route = p == ...) in server/api/api.cpp")
    routes.update(re.findall(r'[?:]\s*"([^"]+)"', m.group(1)))
    return routes


def request(url, method, token=None):
    """(status, headers, body text) of one request, HTTP errors included."""
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def shape_errors(spec, value, schema, where):
    """Where `value` does not fit `schema` (type, nullable, required, enum, properties, items,
    allOf, oneOf): a list of messages, empty when it fits. Formats and bounds are not checked."""
    schema = resolve(spec, schema)
    errors = []
    for part in schema.get("allOf", []):
        errors += shape_errors(spec, value, part, where)
    if "oneOf" in schema or "anyOf" in schema:
        alternatives = schema.get("oneOf", schema.get("anyOf"))
        if all(shape_errors(spec, value, alt, where) for alt in alternatives):
            errors.append(f"{where}: {json.dumps(value)[:120]} fits none of the alternatives")
    if value is None:
        if "type" in schema and not schema.get("nullable"):
            errors.append(f"{where}: null, but the schema is not nullable")
        return errors
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    t = schema.get("type")
    if t in kinds and not isinstance(value, kinds[t]):
        return errors + [f"{where}: expected {t}, got {json.dumps(value)[:120]}"]
    if t in ("integer", "number") and (isinstance(value, bool) or not isinstance(value, (int, float)) or
                                       (t == "integer" and not isinstance(value, int))):
        return errors + [f"{where}: expected {t}, got {json.dumps(value)[:120]}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: required '{key}' is missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += shape_errors(spec, value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += shape_errors(spec, item, schema["items"], f"{where}[{i}]")
    return errors


class DocumentIsWellFormed(unittest.TestCase):
    """No server needed."""

    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec()

    def test_it_is_openapi_3_0(self):
        self.assertRegex(self.spec.get("openapi", ""), r"^3\.0\.\d+$")
        self.assertTrue(self.spec["info"]["title"] and self.spec["info"]["version"])
        self.assertIn("bearerAuth", self.spec["components"]["securitySchemes"])
        for name in ("Experiment", "Release", "Bisection", "Alert", "Worker", "Job", "Error"):
            self.assertIn(name, self.spec["components"]["schemas"], f"components/schemas/{name} is missing")

    def test_every_operation_has_responses_and_a_unique_id(self):
        seen = {}
        for path, method, op in operations(self.spec):
            where = f"{method.upper()} {path}"
            self.assertTrue(op.get("responses"), f"{where} has no responses")
            for code in op["responses"]:
                self.assertRegex(code, r"^([1-5]\d\d|[1-5]XX|default)$", f"{where}: response code {code}")
            op_id = op.get("operationId")
            self.assertTrue(op_id, f"{where} has no operationId")
            if op_id in seen:
                self.fail(f"operationId {op_id} of {where} is also {seen[op_id]}'s")
            seen[op_id] = where
            for requirement in op.get("security", self.spec.get("security", [])):
                for scheme in requirement:
                    self.assertIn(scheme, self.spec["components"]["securitySchemes"], f"{where}: security {scheme}")

    def test_every_path_parameter_is_declared_and_required(self):
        for path, method, op in operations(self.spec):
            where = f"{method.upper()} {path}"
            try:
                params = [resolve(self.spec, p)
                          for p in self.spec["paths"][path].get("parameters", []) + op.get("parameters", [])]
            except KeyError as e:
                self.fail(f"{where}: a parameter refers to nothing ({e})")
            declared = {p["name"]: p for p in params if p["in"] == "path"}
            in_template = set(re.findall(r"\{([^}]+)\}", path))
            self.assertEqual(set(declared), in_template,
                             f"{where}: path parameters declared {sorted(declared)}, in the path {sorted(in_template)}")
            for name, p in declared.items():
                self.assertIs(p.get("required"), True, f"{where}: path parameter '{name}' must be required: true")

    def test_every_ref_resolves(self):
        broken = []

        def walk(node, where):
            if isinstance(node, dict):
                if "$ref" in node:
                    try:
                        resolve(self.spec, node)
                    except (KeyError, TypeError):
                        broken.append(f"{where}: {node['$ref']}")
                for k, v in node.items():
                    walk(v, f"{where}/{k}")
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, f"{where}/{i}")

        walk(self.spec, "#")
        if broken:
            self.fail("references to nothing:\n  " + "\n  ".join(broken))


class DocumentMatchesTheRouter(unittest.TestCase):
    """The route labels of server/api/api.cpp against the document's paths (no server needed)."""

    def test_every_served_route_is_described_and_every_described_path_is_routed(self):
        served = served_routes()
        self.assertGreaterEqual(len(served), 25, f"too few routes found in server/api/api.cpp: {sorted(served)}")
        described = set(load_spec()["paths"])
        problems = [f"{r}: served by server/api/api.cpp but not described in docs/openapi.json"
                    for r in sorted(served - described)]
        problems += [f"{p}: described in docs/openapi.json but not routed by server/api/api.cpp"
                     for p in sorted(described - served)]
        if problems:
            self.fail("\n  ".join(["the router and the description disagree:", *problems]))


class ServerServesTheDocument(unittest.TestCase):
    """Every described operation against a real server and database (no workers: nothing runs)."""

    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec()
        cls.lab = Lab(workers=0).__enter__()
        # A queued experiment, so that the experiment's own operations answer 200, not 404.
        cls.experiment_id = cls.lab.submit("eager-import.diff")

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    def url_of(self, path, op):
        """The path with each {param} replaced: the queued experiment's id, else the parameter's example."""
        params = [resolve(self.spec, p)
                  for p in self.spec["paths"][path].get("parameters", []) + op.get("parameters", [])]

        def value(m):
            name = m.group(1)
            if name == "id" and path.startswith("/api/v1/experiments/"):
                return str(self.experiment_id)
            p = next(p for p in params if p["in"] == "path" and p["name"] == name)
            return str(p.get("example", "1"))

        return self.lab.url + re.sub(r"\{([^}]+)\}", value, path)

    def test_every_described_operation_is_served_as_described(self):
        problems = []
        for path, method, op in operations(self.spec):
            where = f"{method.upper()} {path}"
            # No token: reads are open on the lab's server, and every write stops at 401 before it
            # does anything, which still proves that the route and the method are served.
            status, headers, text = request(self.url_of(path, op), method.upper())
            body = None
            if headers.get_content_type() == "application/json" and text:
                body = json.loads(text)
            if status == 405:
                problems.append(f"{where}: 405, the server does not take this method ({text[:200]})")
                continue
            if status == 404 and isinstance(body, dict) and \
                    str(body.get("error", {}).get("message", "")).startswith("no such endpoint"):
                problems.append(f"{where}: the server has no such endpoint")
                continue
            responses = op["responses"]
            answer = responses.get(str(status), responses.get(f"{str(status)[0]}XX", responses.get("default")))
            if answer is None:
                problems.append(f"{where}: answered {status}, which the description does not list "
                                f"({sorted(responses)}): {text[:200]}")
                continue
            answer = resolve(self.spec, answer)
            content = answer.get("content", {})
            media = headers.get_content_type()
            if content and "*/*" not in content and media not in {k.split(";")[0].strip() for k in content}:
                problems.append(f"{where}: {status} came as {media}, described as {sorted(content)}")
                continue
            if body is not None and "application/json" in content:
                problems += shape_errors(self.spec, body, content["application/json"]["schema"], f"{where} {status}")
        if problems:
            self.fail("\n  ".join(["operations the server does not serve as docs/openapi.json describes them:",
                                   *problems]))

    def test_a_method_that_is_not_described_is_refused(self):
        problems = []
        for path, item in self.spec["paths"].items():
            if not path.startswith("/api/v1/"):
                continue  # the dashboard and the probes are not behind the API's method checks
            described = {m.upper() for m in METHODS if m in item}
            url = self.url_of(path, next(item[m] for m in METHODS if m in item))
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                if method in described:
                    continue
                status, headers, text = request(url, method)
                allowed = {m.strip() for m in (headers.get("Allow") or "").split(",") if m.strip()}
                if status == 404 and "no such endpoint" in text:
                    problems.append(f"{method} {path}: the server has no such endpoint")
                elif status != 405:
                    problems.append(f"{method} {path}: answered {status}, not 405: the server takes {method} "
                                    f"here, the description does not describe it ({text[:200]})")
                elif allowed != described:
                    problems.append(f"{method} {path}: the server allows {sorted(allowed)}, "
                                    f"the description has {sorted(described)}")
        if problems:
            self.fail("\n  ".join(["methods the server and docs/openapi.json disagree about:", *problems]))

    def test_the_server_serves_the_file(self):
        status, headers, text = request(self.lab.url + "/api/v1/openapi.json", "GET")
        self.assertEqual(status, 200, text[:500])
        self.assertEqual(headers.get_content_type(), "application/json")
        self.assertTrue(json.loads(text) == self.spec,
                        f"GET /api/v1/openapi.json is not {SPEC_FILE} (the server reads the file of the tree "
                        f"it was built from)")
        # Open whatever open_reads says: the route looks at no token, not even a wrong one.
        status, _, text = request(self.lab.url + "/api/v1/openapi.json", "GET", token="not-a-token")
        self.assertEqual(status, 200, text[:500])


if __name__ == "__main__":
    unittest.main()
