"""Paths and helpers for the offline checks of infra/ (the fixtures are in conftest.py).

The Bicep parser (pycep) and checkov live in .venv-infra, a venv of their own because checkov pins an
old pycep-parser; the KQL checker is Microsoft's Kusto language service from npm. When they are
missing the tests fail, saying how to install them, rather than skip.
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULES = INFRA / "modules"
QUERIES = INFRA / "queries"
WORKBOOK = INFRA / "workbook.json"
HERE = Path(__file__).resolve().parent

INFRA_VENV = REPO / ".venv-infra"
INFRA_PYTHON = INFRA_VENV / "bin" / "python"
CHECKOV = INFRA_VENV / "bin" / "checkov"
# Microsoft's Kusto language service (npm @kusto/language-service-next): a dev dependency in
# package.json, or installed beside the infra venv.
KUSTO_PACKAGES = (
    REPO / "node_modules" / "@kusto" / "language-service-next",
    INFRA_VENV / "node_modules" / "@kusto" / "language-service-next",
)

SETUP_HINT = (
    "run `make test` (it installs it), or by hand: python3 -m venv .venv-infra && "
    ".venv-infra/bin/pip install -r requirements-infra.txt && "
    ".venv-infra/bin/pip install --no-deps pycep-parser==0.7.1 && "
    "npm install --prefix .venv-infra @kusto/language-service-next@12.4.1"
)


def require(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(f"{what} not found at {path.relative_to(REPO)}: {SETUP_HINT}", pytrace=False)


def kusto_package() -> Path:
    for path in KUSTO_PACKAGES:
        if (path / "Kusto.Language.Bridge.min.js").is_file():
            return path
    where = " or ".join(str(path.relative_to(REPO)) for path in KUSTO_PACKAGES)
    pytest.fail(f"The Kusto language service is not in {where}: {SETUP_HINT}", pytrace=False)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def workbook_queries(workbook: dict) -> dict[str, str]:
    """{item name: KQL} for every query item of the workbook, at any depth."""
    found: dict[str, str] = {}

    def walk(items):
        for item in items:
            content = item.get("content", {})
            if item.get("type") == 3:
                found[item["name"]] = content["query"]
            walk(content.get("items", []))

    walk(workbook["items"])
    return found


# The Bicep replaces these placeholders before it sends a query to Azure Monitor (modules/ops.bicep): none now.
QUERY_PLACEHOLDERS: dict[str, str] = {}


def alert_queries() -> dict[str, str]:
    """{file name: KQL as deployed, placeholders filled} for every alert query file."""
    queries = {}
    for path in sorted(QUERIES.glob("*.kql")):
        text = read(path)
        for placeholder, value in QUERY_PLACEHOLDERS.items():
            text = text.replace(placeholder, value)
        queries[path.name] = text
    return queries


def code(path: Path) -> str:
    """A Bicep file without its full-line comments (comments may name what the code must not use)."""
    return "\n".join(line for line in read(path).splitlines() if not line.strip().startswith("//"))


def body(config: dict) -> dict:
    """The body of a resource or module, under pycep's wrappers for loops and conditions."""
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


STRING_LITERAL = re.compile(r'"([^"\\]*)"')


class Unsupported(Exception):
    """An expression the small evaluator below does not model."""


def evaluate(expression, tree: dict, parameters: dict):
    """Evaluate a Bicep expression from pycep's tree, for the few operators a template's own logic uses.

    There is no Bicep compiler here, so a test that wants to know what a variable comes to for given
    parameters evaluates the parsed expression: names resolve to the parameters given, then to the
    template's parameter defaults and variables; any other string is a literal. It models ! && || ?: ==
    !=, object literals, .property, [index], empty(), split(), last(), join(), toLower() and union() of
    arrays (each value once, in order, as Azure's union() does); anything else raises Unsupported, so a test
    never passes on an expression it did not understand."""
    variables = tree.get("variables", {})
    declared = tree.get("parameters", {})

    def value(node):
        if isinstance(node, bool | int) or node is None:
            return node
        if isinstance(node, str):
            if node in parameters:
                return parameters[node]
            if node in declared:
                if "default" not in declared[node]:
                    raise Unsupported(f"parameter {node} has no default and none was given")
                return value(declared[node]["default"])
            if node in variables:
                return value(variables[node]["value"])
            if "${" in node:
                raise Unsupported(f"interpolated string {node!r}")
            return node
        if isinstance(node, list):
            return [value(item) for item in node]
        if "operator" in node:
            operator = node["operator"]
            kind, operands = operator["type"], operator["operands"]
            if kind == "not":
                return not value(operands["bool_value"])
            if kind == "and":
                return value(operands["operand_1"]) and value(operands["operand_2"])
            if kind == "or":
                return value(operands["operand_1"]) or value(operands["operand_2"])
            if kind == "conditional":
                return value(operands["true_value"] if value(operands["condition"]) else operands["false_value"])
            if kind == "equals":
                return value(operands["operand_1"]) == value(operands["operand_2"])
            if kind == "not_equals":
                return value(operands["operand_1"]) != value(operands["operand_2"])
            if kind == "index_accessor":
                return value(operands["operand_1"])[value(operands["operand_2"])]
            if kind == "property_accessor" and isinstance(operands["operand_2"], str):
                target = value(operands["operand_1"])
                if not isinstance(target, dict):
                    raise Unsupported(f"property {operands['operand_2']} of {target!r}")
                return target[operands["operand_2"]]
            raise Unsupported(f"operator {kind}")
        if "function" in node:
            function = node["function"]
            kind, arguments = function["type"], function["parameters"]
            if kind == "empty":
                return not value(arguments["item_to_test"])
            if kind == "split":
                return value(arguments["input_string"]).split(value(arguments["delimiter"]))
            if kind == "last":
                return value(arguments["arg_1"])[-1]
            if kind == "join":
                return value(arguments["delimiter"]).join(value(arguments["input_array"]))
            if kind == "to_lower":
                return value(arguments["string_to_change"]).lower()
            if kind == "union":
                arrays = [value(argument) for argument in arguments.values() if argument is not None]
                if not all(isinstance(array, list) for array in arrays):
                    raise Unsupported("union() of anything but arrays")
                merged: list = []
                for item in (item for array in arrays for item in array):
                    if item not in merged:
                        merged.append(item)
                return merged
            raise Unsupported(f"function {kind}()")
        if all(isinstance(key, str) for key in node):  # an object literal
            return {key: value(item) for key, item in node.items()}
        raise Unsupported(repr(node)[:80])

    return value(expression)
