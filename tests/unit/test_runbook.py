"""The README's runbook lists exactly the product's error codes, as error_codes.py describes them."""

from pathlib import Path

from scripts.runbook import in_readme, table

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_table_is_generated_from_the_codes():
    assert in_readme((ROOT / "README.md").read_text(encoding="utf-8")) == table(), (
        "run `python scripts/runbook.py --write`")
