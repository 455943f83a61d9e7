"""openapi.yaml: a valid OpenAPI 3.0 document, held to the routes function_app registers, to the method each
handler serves, to every error code the handlers answer, and to the shape of real answers."""

import json
import re

import pytest

from tests.e2e import openapi_document as doc

HTTP_API = doc.ROOT / "cosmos_key_rotation" / "http_routes.py"
# Every method the stand-in host will hand a handler; OPTIONS and HEAD too, although the app does not
# register them (the real host answers those itself).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# Error codes the handlers answer that are not written as `HttpError(<status>, "<Code>"` in http_routes.py.
INDIRECT_CODES = {(409, "KeyKindIsLive"), (500, "ConfigurationError"), (500, "InternalError")}


@pytest.fixture(scope="module")
def spec():
    return doc.load()


def http_functions(host):
    """function name → its httpTrigger binding, from what function_app.app registers."""
    found = {}
    for name, function in host.functions.items():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger":
                found[name] = binding
    return found


def route_prefix():
    host_json = json.loads((doc.ROOT / "host.json").read_text())
    return host_json.get("extensions", {}).get("http", {}).get("routePrefix", "api")


def test_is_a_valid_openapi_3_0_document(spec):
    from openapi_spec_validator import OpenAPIV30SpecValidator, validate

    assert spec["openapi"] == "3.0.3"
    validate(spec, cls=OpenAPIV30SpecValidator)  # raises with the first problem


def test_every_example_matches_its_schema(spec):
    checked = 0

    def walk(node, where):
        nonlocal checked
        if isinstance(node, dict):
            if "schema" in node and ("example" in node or "examples" in node):
                examples = {"example": node["example"]} if "example" in node else {
                    name: doc.resolve(example, spec)["value"] for name, example in node["examples"].items()}
                for name, value in examples.items():
                    assert doc.schema_errors(value, node["schema"]) == [], f"{where} {name}"
                    checked += 1
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(spec, "#")
    assert checked >= 10


def test_paths_are_the_registered_http_routes(world, spec):
    functions = http_functions(world.host())
    assert len(functions) == 3
    routes = {f"/{route_prefix()}/{binding['route']}": name for name, binding in functions.items()}
    assert set(spec["paths"]) == set(routes)
    for path, item in spec["paths"].items():
        operation_ids = [item[key]["operationId"] for key in doc.OPERATION_KEYS if key in item]
        assert operation_ids == [routes[path]], f"{path}: one operation, named after its function"
        binding = functions[routes[path]]
        assert binding["authLevel"].lower() == "function"
        parameters = set(re.findall(r"{(\w+)}", binding["route"]))
        documented = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert documented == parameters


def test_each_path_documents_the_one_method_its_handler_serves(world, spec):
    host = world.host()
    functions = http_functions(host)
    served_pairs = set()
    for name, binding in functions.items():
        path = f"/{route_prefix()}/{binding['route']}"
        served, allowed = set(), set()
        for method in METHODS:
            response = host.call_http(name, method, path.replace("{id}", "x"), route_params={"id": "x"})
            document = json.loads(response.get_body())
            if response.status_code == 405:
                assert document["error"]["code"] == "MethodNotAllowed"
                allowed.add(response.headers["Allow"])
            else:
                served.add(method)
        assert len(served) == 1, f"{name} serves {served}"
        assert allowed == served, f"{name}: every 405 names the one method it serves in Allow"
        assert served <= {m.upper() for m in binding["methods"]}, f"{name}: the method it serves is registered"
        served_pairs |= {(path, method) for method in served}
    documented = {(path, key.upper()) for path, item in spec["paths"].items()
                  for key in doc.OPERATION_KEYS if key in item}
    assert documented == served_pairs


def handler_error_codes():
    source = HTTP_API.read_text(encoding="utf-8")
    found = {(int(status), code) for status, code in re.findall(r'HttpError\(\s*(\d{3}),\s*"(\w+)"', source)}
    assert {"MethodNotAllowed", "MissingTarget", "RotationNotFound"} <= {code for _, code in found}
    return found | INDIRECT_CODES


@pytest.mark.parametrize("status, code", sorted(handler_error_codes()))
def test_every_error_code_is_documented_under_its_status(spec, status, code):
    assert code in json.dumps(spec)
    answers = [doc.resolve(operation["responses"][str(status)], spec)
               for _, _, operation in doc.operations(spec).values() if str(status) in operation["responses"]]
    assert any(code in json.dumps(answer) for answer in answers), f"{code} is not documented under {status}"
    for answer in answers:
        assert answer["content"]["application/json"]["schema"] == spec["components"]["schemas"]["Error"]


def test_every_error_answer_uses_the_one_error_schema(spec):
    for operation_id, (_, _, operation) in doc.operations(spec).items():
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")) and status != "401":
                if "$ref" in answer:  # a reusable response: look at it, not through its schema's $ref
                    answer = spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{operation_id} {status}"


def test_security_is_a_function_key_in_the_query_or_a_header_or_an_entra_id_token(spec):
    schemes = spec["components"]["securitySchemes"]
    found = {(s["type"], s.get("in"), s.get("name"), s.get("scheme")) for s in schemes.values()}
    assert found == {("apiKey", "query", "code", None), ("apiKey", "header", "x-functions-key", None),
                     ("http", None, None, "bearer")}
    assert sorted(spec["security"], key=str) == sorted(({name: []} for name in schemes), key=str)


def assert_documented(operation_id, response):
    document = json.loads(response.get_body())
    problems = doc.answer_problems(operation_id, response.status_code, dict(response.headers), document)
    assert problems == [], f"{operation_id} {response.status_code} {document}"
    return document


def test_real_answers_match_the_document(world):
    host = world.host()
    # Before any rotation: the target has no secret yet.
    assert_documented("targets", host.call_http("targets", "GET", "/api/targets"))
    response = host.call_http("request_rotation", "POST", "/api/rotations", body=json.dumps({"target": world.account}))
    assert response.status_code == 202
    accepted = assert_documented("request_rotation", response)
    path = f"/api/rotations/{accepted['id']}"
    queued = assert_documented("rotation_status", host.call_http("rotation_status", "GET", path,
                                                                 route_params={"id": accepted["id"]}))
    assert queued["status"] == "queued"
    host.process_queues()
    done = assert_documented("rotation_status", host.call_http("rotation_status", "GET", path,
                                                               route_params={"id": accepted["id"]}))
    assert done["status"] == "succeeded"
    targets = assert_documented("targets", host.call_http("targets", "GET", "/api/targets"))
    assert targets["targets"][0]["lastRotation"]["lastStatus"] == "succeeded"
    # The errors a caller meets: bad body, unknown target, live key, cooldown, wrong method, unknown id.
    for body, status in [("{", 400), ('{"target": "nope"}', 404),
                         (json.dumps({"target": world.account, "keyKind": "secondary"}), 409),
                         (json.dumps({"target": world.account}), 429)]:
        response = host.call_http("request_rotation", "POST", "/api/rotations", body=body)
        assert response.status_code == status
        assert_documented("request_rotation", response)
    assert_documented("request_rotation", host.call_http("request_rotation", "PATCH", "/api/rotations"))
    assert_documented("rotation_status", host.call_http("rotation_status", "GET", "/api/rotations/x",
                                                        route_params={"id": "x"}))
    world.set(SECRET_VALIDITY_DAYS="forever")
    assert_documented("targets", host.call_http("targets", "GET", "/api/targets"))
