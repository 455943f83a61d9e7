"""requirements.txt pins exactly what Azure Functions installs, generated from requirements.in, and the test
environment runs exactly those versions."""

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def lines(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def pins():
    found = {}
    for line in lines("requirements.txt"):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # the pin for another Python (requirements.txt resolves 3.10 to 3.12 at once)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{line}: every deployed package is pinned to one version"
        found[requirement.name.lower()] = spec.version
    return found


def test_every_direct_dependency_is_pinned_within_its_range():
    pinned = pins()
    for line in lines("requirements.in"):
        requirement = Requirement(line)
        assert requirement.name.lower() in pinned, f"{requirement.name} is not in requirements.txt: `make requirements`"
        assert requirement.specifier.contains(pinned[requirement.name.lower()]), (
            f"{requirement.name}=={pinned[requirement.name.lower()]} is outside {requirement.specifier}")


def test_the_tests_run_the_pinned_versions():
    wrong = {name: (version, metadata.version(name)) for name, version in pins().items()
             if metadata.version(name) != version}
    assert wrong == {}, "installed versions differ from requirements.txt (pinned, installed)"
