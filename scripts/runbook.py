"""The README's table of error codes, generated from cosmos_key_rotation/error_codes.py.

    python scripts/runbook.py           # print the table
    python scripts/runbook.py --write   # replace the table in README.md (between its markers)

tests/unit/test_runbook.py fails when the README's table is not exactly this one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cosmos_key_rotation.error_codes import CODES  # noqa: E402

START, END = "<!-- error-codes:start (scripts/runbook.py --write) -->", "<!-- error-codes:end -->"


def table() -> str:
    rows = ["| `errorCode` | retried | means | do |", "|---|---|---|---|"]
    for code in CODES.values():
        rows.append(f"| `{code.name}` | {'yes' if code.transient else 'no'} | {code.meaning} | {code.action} |")
    return "\n".join(rows)


def in_readme(text: str) -> str:
    """The table between the markers of a README's text."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str]) -> int:
    if "--write" not in argv:
        print(table())
        return 0
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
