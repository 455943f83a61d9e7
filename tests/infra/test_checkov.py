"""checkov finds nothing wrong in infra/, and every check it skips is skipped in place, with a reason."""

import json
import re
import subprocess

from .support import CHECKOV, INFRA, REPO, bicep_files, read, require

SKIP_COMMENT = re.compile(r"^\s*// checkov:skip=(CKV2?_AZURE_\d+):(.*)$")
RESOURCE_OPENING = re.compile(r"^resource \w+ '[^']+' = (\[)?\s*\{$|^resource \w+ '[^']+' = if \(.*\) \{$")

# Each inline skip, by file: why the product needs it is written next to it in the Bicep.
EXPECTED_SKIPS = {
    "modules/cosmos.bicep": {"CKV_AZURE_140", "CKV_AZURE_99", "CKV_AZURE_101"},
    "modules/keyvault.bicep": {"CKV_AZURE_109", "CKV_AZURE_189"},
    "modules/storage.bicep": {"CKV_AZURE_35", "CKV_AZURE_59"},
    "modules/functionapp.bicep": {"CKV_AZURE_225", "CKV_AZURE_222", "CKV_AZURE_17", "CKV_AZURE_212", "CKV_AZURE_213",
                                  # the authsettingsV2 child resource, read by checkov as if it were the site
                                  "CKV_AZURE_13", "CKV_AZURE_63", "CKV_AZURE_65", "CKV_AZURE_66", "CKV_AZURE_80",
                                  "CKV_AZURE_88"},
}


def inline_skips() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in bicep_files():
        lines = read(path).splitlines()
        for number, line in enumerate(lines):
            match = SKIP_COMMENT.match(line)
            if not match:
                continue
            check, reason = match.groups()
            name = str(path.relative_to(INFRA))
            assert len(reason.strip()) >= 20, f"{name}:{number + 1}: {check} needs a reason"
            # checkov reads a skip only inside the resource body: right after `resource ... {` or another skip.
            previous = number - 1
            while SKIP_COMMENT.match(lines[previous]):
                previous -= 1
            assert RESOURCE_OPENING.match(lines[previous]), f"{name}:{number + 1}: {check} is not inside a resource"
            found.setdefault(name, set()).add(check)
    return found


def test_every_skip_is_inside_a_resource_with_a_reason_and_expected():
    assert inline_skips() == EXPECTED_SKIPS


def test_checkov_reports_no_failed_check():
    require(CHECKOV, "checkov")
    result = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--skip-download", "--directory", str(INFRA), "--output", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    [bicep] = [r for r in reports if r.get("check_type") == "bicep"]
    summary = bicep["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})" for check in bicep["results"]["failed_checks"]
    ]
    assert failed == [] and summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    skipped = {(check["check_id"], check["file_path"].lstrip("/")) for check in bicep["results"]["skipped_checks"]}
    expected = {(check, path) for path, checks in EXPECTED_SKIPS.items() for check in checks}
    assert skipped == expected, "a skip comment checkov does not honour, or a skip from elsewhere"
