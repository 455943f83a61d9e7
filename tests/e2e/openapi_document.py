"""openapi.yaml for the tests: load it, resolve its references, and check an answer against it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PATH = ROOT / "openapi.yaml"
# The keys of an OpenAPI path item that are operations.
OPERATION_KEYS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def load() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(PATH.read_text(encoding="utf-8"))


def resolve(node: Any, document: dict[str, Any] | None = None) -> Any:
    """`node` with every local `$ref` replaced by what it points at (the document has no cycles)."""
    document = document or load()
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolve(target, document)
        return {key: resolve(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, document) for item in node]
    return node


def operations(document: dict[str, Any] | None = None) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId → (path, METHOD, operation)."""
    document = document or load()
    found = {}
    for path, item in document["paths"].items():
        for key in OPERATION_KEYS:
            if key in item:
                found[item[key]["operationId"]] = (path, key.upper(), item[key])
    return found


@cache
def _validator(schema_json: str) -> Any:
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    return OAS30Validator(json.loads(schema_json), format_checker=oas30_format_checker)


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Why `instance` does not match an OpenAPI 3.0 schema (formats checked), as short texts."""
    validator = _validator(json.dumps(resolve(schema), sort_keys=True))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
            for error in validator.iter_errors(instance)]


def answer_problems(operation_id: str, status: int, headers: dict[str, str], document: Any) -> list[str]:
    """How an answer of the operation differs from what openapi.yaml says of it: an undocumented
    status, a body that does not match the schema, a documented header that is missing."""
    _, _, operation = operations()[operation_id]
    response = operation["responses"].get(str(status))
    if response is None:
        return [f"status {status} is not documented for {operation_id}"]
    response = resolve(response)
    problems = []
    content = response.get("content", {}).get("application/json")
    if content is None:
        problems.append(f"{status} of {operation_id} is documented without a JSON body")
    else:
        problems += schema_errors(document, content["schema"])
    lowered = {name.lower(): value for name, value in headers.items()}
    for name, header in response.get("headers", {}).items():
        if name.lower() not in lowered:
            problems.append(f"header {name} is documented for {status} of {operation_id} but missing")
        else:
            value: Any = lowered[name.lower()]
            if header["schema"].get("type") == "integer":
                value = int(value) if value.isdigit() else value
            problems += [f"header {name}: {text}" for text in schema_errors(value, header["schema"])]
    return problems
