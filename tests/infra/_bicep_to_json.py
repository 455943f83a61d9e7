"""Parse .bicep files with pycep (the parser checkov uses) and print {path: {"tree"|"error": ...}} as JSON.

Runs in .venv-infra, not in the product's venv: checkov pins its own pycep-parser.
"""

import json
import sys
from pathlib import Path

from pycep import BicepParser


def main() -> None:
    parser = BicepParser()
    result = {}
    for name in sys.argv[1:]:
        try:
            result[name] = {"tree": parser.parse(file_path=Path(name))}
        except Exception as error:  # any parse failure is reported for its file
            result[name] = {"error": f"{type(error).__name__}: {error}"}
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
