"""The README's runbook lists exactly the product's error codes, as error_codes.py describes them."""

from pathlib import Path

from scripts.runbook import in_readme, table

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_table_is_generated_from_the_codes():
    assert in_readme((ROOT / "README.md").read_text(encoding="utf-8")) == table(), (
        "run `python scripts/runbook.py --write`")


def _code_literals():
    """String literals the product uses as error codes: RotationError's first argument, the error table's
    product codes, and the codes assigned to results, verdicts and events (error_code=, code=, errorCode=)."""
    import ast

    found = {}
    for path in (ROOT / "cosmos_key_rotation").rglob("*.py"):
        if path.name == "error_codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            candidates = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name in ("RotationError", "_Throttled", "__init__") and node.args:  # __init__: subclasses
                    candidates.append(node.args[0])
                if name == "Row" and len(node.args) >= 4:
                    candidates.append(node.args[3])
                candidates += [k.value for k in node.keywords if k.arg in ("errorCode", "error_code", "code")]
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {getattr(t, "attr", getattr(t, "id", "")) for t in targets}
                if names & {"error_code", "code"} or any(isinstance(t, ast.Tuple) for t in targets):
                    candidates.append(node.value)
            for candidate in candidates:
                for leaf in ast.walk(candidate):
                    if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str) and leaf.value[:1].isupper() \
                            and leaf.value.isidentifier():
                        found.setdefault(leaf.value, str(path.relative_to(ROOT)))
    return found


def test_every_code_the_code_emits_is_in_the_table_and_every_code_in_the_table_is_emitted():
    from cosmos_key_rotation.error_codes import CODES

    emitted = _code_literals()
    assert set(emitted) - set(CODES) == set(), "emitted but not in error_codes.py (so not in the runbook)"
    assert set(CODES) - set(emitted) == set(), "in the runbook but never emitted"


def test_the_readme_lists_every_code_the_http_routes_answer():
    import re

    source = (ROOT / "cosmos_key_rotation" / "http_routes.py").read_text(encoding="utf-8")
    answered = set(re.findall(r'HttpError\(\d{3}, "([A-Za-z]+)"', source))
    answered |= set(re.findall(r'_STATE_CONFLICTS = \(([^)]*)\)', source)[0].replace('"', "").replace(" ", "")
                    .split(",")) - {""}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| status | code | when |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([A-Z][A-Za-z]+)`", table))
    assert answered - listed == set(), "answered by the HTTP routes, missing from the README's table"
