"""The workbook and the alert rules query events the code emits, with valid KQL, as designed."""

import datetime
import itertools
import json
import re
import shutil
import subprocess

import pytest

from cosmos_key_rotation import names

from .support import (
    HERE,
    INFRA,
    MODULES,
    QUERIES,
    QUERY_PLACEHOLDERS,
    STRING_LITERAL,
    alert_queries,
    body,
    kusto_package,
    read,
    workbook_queries,
)

# The flat custom dimensions of the events (PRODUCT.md section 5 and the final events' key metadata).
EVENT_PROPERTIES = {
    "event",
    "rotationId",
    "trigger",
    "target",
    "subscriptionId",
    "resourceGroup",
    "account",
    "keyKind",
    "previousKeyKind",
    "secretName",
    "secretVersion",
    "outcome",
    "durationMs",
    "attempt",
    "errorCode",
    "errorMessage",
    "primaryMasterKeyGeneratedAt",
    "secondaryMasterKeyGeneratedAt",
    "primaryReadonlyMasterKeyGeneratedAt",
    "secondaryReadonlyMasterKeyGeneratedAt",
    "maxKeyAgeDays",
}
OUTCOMES = {"succeeded", "skipped", "failed", "retrying"}


def all_queries(workbook) -> dict[str, str]:
    return {**{f"workbook:{k}": v for k, v in workbook_queries(workbook).items()}, **alert_queries()}


def without_comments(kql: str) -> str:
    return "\n".join(line for line in kql.splitlines() if not line.strip().startswith("//"))


def test_every_event_name_queried_is_one_the_code_emits(workbook):
    queried = set()
    for name, kql in all_queries(workbook).items():
        literals = set(STRING_LITERAL.findall(without_comments(kql)))
        events = {literal for literal in literals if re.fullmatch(r"[A-Z][A-Za-z]+", literal)}
        assert events, f"{name} queries no event"
        assert events <= set(names.EVENT_NAMES), f"{name}: {events - set(names.EVENT_NAMES)}"
        queried |= events
    assert {"RotationSucceeded", "RotationFailed", "RotationAbandoned", "RotationScheduled"} <= queried


def test_queries_read_only_the_events_properties_and_outcomes(workbook):
    for name, kql in all_queries(workbook).items():
        properties = set(re.findall(r"Properties\.(\w+)", kql))
        assert properties <= EVENT_PROPERTIES, f"{name}: {properties - EVENT_PROPERTIES}"
        outcomes = set(re.findall(r'outcome\s*[!=]=\s*"([^"]*)"', kql))
        assert outcomes <= OUTCOMES, f"{name}: {outcomes - OUTCOMES}"
        # The KQL check knows no other table, so this is the only one a query can read.
        assert re.search(r"\bAppTraces\b", kql), f"{name} does not read AppTraces"


def test_every_query_is_valid_kql():
    package = kusto_package()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the KQL check runs Microsoft's Kusto language service on it", pytrace=False)
    workbook = json.loads(read(INFRA / "workbook.json"))
    queries = [{"name": name, "query": kql} for name, kql in all_queries(workbook).items()]
    result = subprocess.run(
        [node, str(HERE / "kql_check.js"), str(package)],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    checked = json.loads(result.stdout)
    assert len(checked) == len(queries) >= 7
    problems = {item["name"]: item["diagnostics"] for item in checked if item["diagnostics"]}
    assert problems == {}


def test_kql_checker_catches_an_invalid_query():
    package = kusto_package()
    bad = [{"name": "bad", "query": "AppTraces | where NoSuchColumn == 1 | extend x = tostrin(Properties.event)"}]
    result = subprocess.run(
        [shutil.which("node") or "node", str(HERE / "kql_check.js"), str(package)],
        input=json.dumps(bad),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    [item] = json.loads(result.stdout)
    assert {d["code"] for d in item["diagnostics"]} >= {"KS142", "KS211"}


def test_alert_on_every_final_failure_and_every_abandoned_rotation_but_not_on_retries():
    kql = without_comments(read(QUERIES / "rotation-failed.kql"))
    assert ('event in ("RotationAbandoned", "ScheduleFailed") or (event == "RotationFailed" and outcome != "retrying")'
            in kql)


def rule(trees, symbol) -> dict:
    return body(trees["modules/ops.bicep"]["resources"][symbol]["config"])


def test_alert_rules_read_the_workspace_and_notify_the_action_group(trees):
    for symbol in ("rotationFailedAlert", "rotationOverdueAlert"):
        properties = rule(trees, symbol)["properties"]
        assert properties["scopes"] == ["workspaceId"]
        assert properties["actions"]["actionGroups"] == [
            {"operator": {"type": "property_accessor", "operands": {"operand_1": "actionGroup", "operand_2": "id"}}}
        ]
        assert properties["enabled"] is True
    text = read(MODULES / "ops.bicep")
    assert "loadTextContent('../queries/rotation-failed.kql')" in text
    assert "emailAddress: alertEmail" in text


def test_overdue_alert_fits_the_log_search_limit_and_fills_its_look_back(trees):
    properties = rule(trees, "rotationOverdueAlert")["properties"]
    # Log search alerts scan at most two days, whatever the query's ago() says.
    assert properties["windowSize"] == "P2D"
    assert properties["evaluationFrequency"] == "P1D"
    assert "overrideQueryTimeRange" not in properties
    text = read(MODULES / "ops.bicep")
    assert (
        "replace(loadTextContent('../queries/stale-rotation.kql'), '{lookbackDays}', string(staleRotationLookbackDays))"
        in text
    )
    kql = read(QUERIES / "stale-rotation.kql")
    assert "let lookback = {lookbackDays}d;" in kql and set(QUERY_PLACEHOLDERS) == {"{lookbackDays}"}
    for generated_at in ("primaryMasterKeyGeneratedAt", "secondaryMasterKeyGeneratedAt"):
        assert f"Properties.{generated_at}" in kql


def longest_gap_in_days(schedule: str) -> int:
    """Longest gap between runs of an NCRONTAB schedule that fixes the time and lists days of the month."""
    _seconds, _minutes, _hours, days, months, weekdays = schedule.split()
    assert months == "*" and weekdays == "*", "this helper only handles day-of-month schedules"
    run_days = {int(day) for day in days.split(",")}
    day = datetime.date(2024, 1, 1)
    runs = []
    while day.year < 2028:
        if day.day in run_days:
            runs.append(day)
        day += datetime.timedelta(days=1)
    return max((later - earlier).days for earlier, later in itertools.pairwise(runs))


def test_default_look_back_is_twice_the_default_schedules_longest_gap(trees):
    parameters = trees["main.bicep"]["parameters"]
    schedule = parameters["rotationSchedule"]["default"]
    assert schedule == "0 0 3 1,15 * *"
    assert longest_gap_in_days(schedule) == 17
    assert parameters["staleRotationLookbackDays"]["default"] == 2 * longest_gap_in_days(schedule)
    assert rule(trees, "rotationOverdueAlert")["properties"]["criteria"]["allOf"][0]["threshold"] == 0


def test_workbook_is_loaded_from_infra_and_shows_the_four_views(workbook):
    text = read(MODULES / "ops.bicep")
    assert "loadTextContent('../workbook.json')" in text
    assert workbook["version"] == "Notebook/1.0"
    assert workbook["fallbackResourceIds"] == ["__WORKSPACE_RESOURCE_ID__"]
    assert "'__WORKSPACE_RESOURCE_ID__', workspaceId" in text
    queries = workbook_queries(workbook)
    assert set(queries) == {
        "rotations-over-time",
        "last-rotation-per-target",
        "failures-by-error-code",
        "failure-detail",
        "key-age",
    }
    assert "bin(TimeGenerated, 1d)" in queries["rotations-over-time"]
    assert "errorCode" in queries["failures-by-error-code"]
    assert "RotationScheduled" in queries["last-rotation-per-target"]
    key_age = queries["key-age"]
    for generated_at in (
        "primaryMasterKeyGeneratedAt",
        "secondaryMasterKeyGeneratedAt",
        "primaryReadonlyMasterKeyGeneratedAt",
        "secondaryReadonlyMasterKeyGeneratedAt",
    ):
        assert f"todatetime(Properties.{generated_at})" in key_age
    assert "Properties.maxKeyAgeDays" in key_age


def test_workspace_keeps_events_longer_than_the_workbook_reads(trees):
    retention = trees["main.bicep"]["parameters"]["logRetentionInDays"]["default"]
    assert retention >= 90 > 2 * 17
