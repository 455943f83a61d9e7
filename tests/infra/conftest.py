"""Fixtures for the offline checks of infra/: parsed Bicep and the workbook, each loaded once."""

import json
import subprocess
from pathlib import Path

import pytest

from .support import HERE, INFRA, INFRA_PYTHON, WORKBOOK, bicep_files, read, require


@pytest.fixture(scope="session")
def parsed_bicep() -> dict[str, dict]:
    """{path relative to infra/: {"tree": ...} or {"error": ...}} for every .bicep file, parsed once."""
    require(INFRA_PYTHON, "The infra venv's python")
    files = [str(path) for path in bicep_files()]
    result = subprocess.run(
        [str(INFRA_PYTHON), str(HERE / "_bicep_to_json.py"), *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"pycep could not run:\n{result.stderr}", pytrace=False)
    return {str(Path(name).relative_to(INFRA)): value for name, value in json.loads(result.stdout).items()}


@pytest.fixture(scope="session")
def trees(parsed_bicep) -> dict[str, dict]:
    """Parsed trees only; a file that does not parse fails test_every_bicep_file_parses."""
    return {name: value["tree"] for name, value in parsed_bicep.items() if "tree" in value}


@pytest.fixture(scope="session")
def workbook() -> dict:
    return json.loads(read(WORKBOOK))
