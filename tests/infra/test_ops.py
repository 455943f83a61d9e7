"""The workbook and the alert rules query events the code emits, with valid KQL, as designed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cosmos_key_rotation import names
from cosmos_key_rotation.events import PROPERTIES

from .support import (
    HERE,
    INFRA,
    MODULES,
    QUERIES,
    STRING_LITERAL,
    alert_queries,
    body,
    kusto_package,
    read,
    workbook_queries,
)

# The flat custom dimensions of the events: the code's own list, so a query cannot read one it never logs.
EVENT_PROPERTIES = set(PROPERTIES)
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
        # The product's events are in AppTraces. The KQL check knows it and AppRequests (the host's record of
        # each function execution) and reports any other table, so those are the only ones a query can read.
        assert re.search(r"\bAppTraces\b", kql), f"{name} does not read AppTraces"


def check_kql(queries: list[dict[str, str]]) -> list[dict]:
    """Microsoft's Kusto language service (kql_check.js) over `queries`: [{"name", "diagnostics"}]."""
    package = kusto_package()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the KQL check runs Microsoft's Kusto language service on it", pytrace=False)
    result = subprocess.run(
        [node, str(HERE / "kql_check.js"), str(package)],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def kql_codes(queries: list[dict[str, str]]) -> dict[str, set[str]]:
    """The diagnostic codes the checker reports, per query name."""
    return {item["name"]: {d["code"] for d in item["diagnostics"]} for item in check_kql(queries)}


def test_every_query_is_valid_kql():
    workbook = json.loads(read(INFRA / "workbook.json"))
    queries = [{"name": name, "query": kql} for name, kql in all_queries(workbook).items()]
    checked = check_kql(queries)
    assert len(checked) == len(queries) >= 7
    problems = {item["name"]: item["diagnostics"] for item in checked if item["diagnostics"]}
    assert problems == {}


def test_kql_checker_catches_an_invalid_query():
    bad = [{"name": "bad", "query": "AppTraces | where NoSuchColumn == 1 | extend x = tostrin(Properties.event)"}]
    assert kql_codes(bad)["bad"] >= {"KS142", "KS211"}


def test_kql_checker_knows_the_app_requests_columns():
    checked = kql_codes([
        {"name": "good", "query": "AppRequests | where Name == 'x' and not(Success) | project OperationId, ResultCode"},
        {"name": "bad", "query": "AppRequests | where Succeeded == false"},
    ])
    assert checked["good"] == set() and "KS142" in checked["bad"]


def test_alert_on_every_final_failure_and_every_abandoned_rotation_but_not_on_retries():
    kql = without_comments(read(QUERIES / "rotation-failed.kql"))
    assert ('event in ("RotationAbandoned", "ScheduleFailed") or (event == "RotationFailed" and outcome != "retrying")'
            in kql)


def rule(trees, symbol) -> dict:
    return body(trees["modules/ops.bicep"]["resources"][symbol]["config"])


ALERT_RULES = {
    "rotationFailedAlert": "rotation-failed.kql",
    "rotationOverdueAlert": "stale-rotation.kql",
    "functionFailedAlert": "function-failed.kql",
}


def test_alert_rules_read_the_workspace_and_notify_the_action_group(trees):
    assert {
        symbol for symbol, resource in trees["modules/ops.bicep"]["resources"].items()
        if resource["type"] == "Microsoft.Insights/scheduledQueryRules"
    } == set(ALERT_RULES)
    assert {path.name for path in QUERIES.glob("*.kql")} == set(ALERT_RULES.values())
    for symbol in ALERT_RULES:
        properties = rule(trees, symbol)["properties"]
        assert properties["scopes"] == ["workspaceId"]
        assert properties["actions"]["actionGroups"] == [
            {"operator": {"type": "property_accessor", "operands": {"operand_1": "actionGroup", "operand_2": "id"}}}
        ]
        assert properties["enabled"] is True
    text = read(MODULES / "ops.bicep")
    assert "loadTextContent('../queries/rotation-failed.kql')" in text
    assert "loadTextContent('../queries/function-failed.kql')" in text
    assert "emailAddress: alertEmail" in text


def final_columns(kql: str) -> set[str]:
    """The columns of a query's last project (name = expression, or a bare column)."""
    tail = without_comments(kql).rsplit("| project", 1)[1]
    return {match.group(1) for match in re.finditer(r"(?:^|,)\s*(\w+)\b", tail)}


def dimensions(trees, symbol) -> list[str]:
    [condition] = rule(trees, symbol)["properties"]["criteria"]["allOf"]
    for dimension in condition["dimensions"]:
        assert dimension["operator"] == "Include" and dimension["values"] == ["*"]
    return [dimension["name"] for dimension in condition["dimensions"]]


def test_every_dimension_is_a_column_of_its_query(trees):
    queries = alert_queries()
    for symbol, query_file in ALERT_RULES.items():
        names_ = dimensions(trees, symbol)
        assert 1 <= len(names_) <= 6, symbol  # log search alerts split by at most six dimensions
        columns = final_columns(queries[query_file])
        assert set(names_) <= columns, (symbol, set(names_) - columns)


def test_the_failure_alert_names_the_rotation_and_links_the_workbook(trees):
    # The alert e-mail lists the dimensions: the target and the rotation to look up.
    assert {"target", "rotationId"} <= set(dimensions(trees, "rotationFailedAlert"))
    kql = read(QUERIES / "rotation-failed.kql")
    assert 'rotationId = coalesce(tostring(Properties.rotationId), "none")' in kql
    assert 'target = coalesce(tostring(Properties.target), "unknown")' in kql
    actions = rule(trees, "rotationFailedAlert")["properties"]["actions"]
    assert actions["customProperties"] == {"workbook": "workbookUrl"}
    ops = trees["modules/ops.bicep"]
    # The portal of the cloud deployed to, and the workbook resource's own view.
    assert ops["variables"]["workbookUrl"]["value"] == "${environment().portal}/#resource${workbook.id}/workbook"
    assert ops["outputs"]["workbookUrl"]["value"] == "workbookUrl"
    assert "output WORKBOOK_URL string = ops.outputs.workbookUrl" in read(INFRA / "main.bicep")


def function_names_in_code() -> set[str]:
    """The functions the app registers: each decorated `def` in cosmos_key_rotation/functions."""
    functions = Path(names.__file__).parent / "functions"
    found = set()
    for path in functions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "function_name(" not in text, f"{path.name} renames a function: its record's Name changes"
        found |= set(re.findall(r"^@bp\.\w+\(.*\)\n(?:@.*\n|\s+.*\n)*?def (\w+)\(", text, re.MULTILINE))
    return found


def test_function_failure_alert_watches_the_timer_and_the_worker_by_their_names(trees):
    in_code = function_names_in_code()
    assert in_code == {
        "scheduled_rotation",
        "rotation_worker",
        "abandoned_rotation",
        "request_rotation",
        "rotation_status",
        "targets",
        "secret_expiry",
        "heartbeat",
    }
    kql = without_comments(read(QUERIES / "function-failed.kql"))
    watched = set(re.findall(r'"(\w+)"', kql.split("Name in (", 1)[1].split(")", 1)[0]))
    assert watched == {"scheduled_rotation", "rotation_worker", "secret_expiry", "heartbeat"} <= in_code
    assert "Success == false" in kql
    assert dimensions(trees, "functionFailedAlert") == ["functionName"]
    assert "functionName = Name" in kql
    properties = rule(trees, "functionFailedAlert")["properties"]
    assert properties["displayName"] == "Cosmos DB key rotation function failed"
    assert properties["severity"] <= rule(trees, "rotationFailedAlert")["properties"]["severity"]


def minutes(duration: str) -> int:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", duration)
    assert match, duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_function_failure_alert_sees_each_failed_run_once_even_a_long_one(trees):
    properties = rule(trees, "functionFailedAlert")["properties"]
    frequency, window = minutes(properties["evaluationFrequency"]), minutes(properties["windowSize"])
    # A record's TimeGenerated is the start of the run, written when the run ends: the window must reach
    # back over the longest run (host.json functionTimeout) plus an evaluation period.
    timeout = json.loads(read(INFRA.parent / "host.json"))["functionTimeout"]
    hours, mins, _seconds = (int(part) for part in timeout.split(":"))
    assert window >= hours * 60 + mins + frequency
    # Only the records that arrived since the last evaluation count (with some overlap, never a gap).
    kql = without_comments(read(QUERIES / "function-failed.kql"))
    [arrived] = re.findall(r"ingestion_time\(\) > ago\((\d+)m\)", kql)
    assert frequency < int(arrived) < 2 * frequency


def test_function_failure_alert_leaves_to_the_other_alert_what_it_already_covers():
    kql = without_comments(read(QUERIES / "function-failed.kql"))
    # A retried worker attempt (the host tries again, then RotationAbandoned alerts) and ScheduleFailed (the
    # rotation-failed alert) are left out, matched on the invocation's OperationId; nothing else is.
    assert 'where event == "ScheduleFailed" or (event == "RotationFailed" and outcome == "retrying")' in kql
    assert "join kind=leftanti handledElsewhere on OperationId" in kql
    assert kql.count("AppTraces") == 1


def test_overdue_alert_reads_the_daily_heartbeat_within_the_log_search_limit(trees):
    properties = rule(trees, "rotationOverdueAlert")["properties"]
    # Log search alerts scan at most two days, whatever the query's ago() says: a daily heartbeat fits.
    assert properties["windowSize"] == "P2D"
    assert properties["evaluationFrequency"] == "P1D"
    assert "overrideQueryTimeRange" not in properties
    assert "query: loadTextContent('../queries/stale-rotation.kql')" in read(MODULES / "ops.bicep")
    assert properties["criteria"]["allOf"][0]["threshold"] == 0
    kql = without_comments(read(QUERIES / "stale-rotation.kql"))
    assert 'where event == "RotationHeartbeat"' in kql and "Properties.maxKeyAgeDays" in kql
    # All four keys, read-only ones too, against MAX_KEY_AGE_DAYS; and the app's silence.
    for key in ("primaryMasterKey", "secondaryMasterKey", "primaryReadonlyMasterKey", "secondaryReadonlyMasterKey"):
        assert f'"{key}GeneratedAt"' in kql
    assert "todatetime(Properties[property])" in kql and "ageDays > maxKeyAgeDays" in kql
    assert "summarize beats = count()\n    | where beats == 0" in kql


def test_the_heartbeat_runs_daily_by_default_and_is_set_by_the_bicep(trees):
    from cosmos_key_rotation.heartbeat import run  # noqa: F401 (the module the timer runs)
    from cosmos_key_rotation.settings import DEFAULT_HEARTBEAT_SCHEDULE

    parameters = trees["main.bicep"]["parameters"]
    assert parameters["heartbeatSchedule"]["default"] == DEFAULT_HEARTBEAT_SCHEDULE == "0 30 6 * * *"
    assert trees["modules/functionapp.bicep"]["variables"]["appSettings"]["value"]["HEARTBEAT_SCHEDULE"] == (
        "heartbeatSchedule")
    assert "staleRotationLookbackDays" not in read(INFRA / "main.bicep")


FILTERED_VIEWS = {"rotations-over-time", "last-rotation-per-target", "failures-by-error-code", "failure-detail"}


def test_workbook_filters_its_rotation_and_failure_views_by_target_and_rotation(workbook):
    [parameters] = [item for item in workbook["items"] if item["type"] == 9]
    declared = {parameter["name"]: parameter for parameter in parameters["content"]["parameters"]}
    for name in ("Target", "RotationId"):
        assert declared[name]["type"] == 1  # text
        assert declared[name]["isRequired"] is False
        assert declared[name]["value"] == ""
    ids = [parameter["id"] for parameter in declared.values()]
    assert len(ids) == len(set(ids))
    queries = workbook_queries(workbook)
    for name in FILTERED_VIEWS:
        kql = queries[name]
        assert 'let wantedTarget = "{Target:escapejson}";' in kql, name
        assert 'let wantedRotation = "{RotationId:escapejson}";' in kql, name
        assert "| where isempty(wantedTarget) or tostring(Properties.target) == wantedTarget" in kql, name
        assert "| where isempty(wantedRotation) or tostring(Properties.rotationId) == wantedRotation" in kql, name
    assert "{Target" not in queries["key-age"]  # per account, over 90 days: not a view of one rotation


def test_workbook_is_loaded_from_infra_and_shows_its_views(workbook):
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
        "who-uses-which-key",
    }
    assert "bin(TimeGenerated, 1d)" in queries["rotations-over-time"]
    # The in-use guard's view: the data-plane logs by key and client, beside the live key kind.
    assert "CDBDataPlaneRequests" in queries["who-uses-which-key"]
    assert "ClientIpAddress, UserAgent" in queries["who-uses-which-key"]
    assert "liveKeyKinds" in queries["who-uses-which-key"]
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


def test_the_in_use_guards_query_is_valid_kql_against_the_data_plane_table():
    from cosmos_key_rotation.key_usage import query_text

    account = "/subscriptions/s/resourceGroups/g/providers/Microsoft.DocumentDB/databaseAccounts/docdb-a"
    queries = [{"name": "24 h", "query": query_text(account, 24)},
               {"name": "6 s", "query": query_text(account, 6 / 3600)},
               {"name": "misspelled", "query": query_text(account, 24).replace("ClientIpAddress", "ClientIP")}]
    checked = kql_codes(queries)
    assert checked["24 h"] == checked["6 s"] == set()
    assert "KS142" in checked["misspelled"]  # the checker knows CDBDataPlaneRequests' columns
