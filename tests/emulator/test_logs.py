"""The Logs query API against the real azure-monitor-query client: the data planes' requests logged per key,
as Cosmos DB's diagnostic setting (DataPlaneRequests) would, and answered to the product's query."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.cosmos import CosmosClient
from azure.cosmos.exceptions import CosmosHttpResponseError
from azure.monitor.query import LogsQueryClient, LogsQueryStatus

from cosmos_key_rotation.key_usage import query_text
from local_azure import Emulator

from .conftest import ACCOUNT

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
AUDIENCE = "https://api.loganalytics.io"


def logs_client(emu: Emulator, credential: Any, audience: str = AUDIENCE) -> LogsQueryClient:
    return LogsQueryClient(credential, endpoint=emu.logs_url, audience=audience)


def rows(emu: Emulator, credential: Any, account: dict[str, Any], window_hours: float = 1.0) -> list[list[Any]]:
    result = logs_client(emu, credential).query_workspace(emu.workspace_id, query_text(account["id"], window_hours),
                                                          timespan=timedelta(hours=window_hours))
    assert result.status == LogsQueryStatus.SUCCESS
    return [list(row) for row in result.tables[0].rows]


def read_with(emu: Emulator, account: dict[str, Any], kind: str, agent: str) -> None:
    endpoint = account["properties"]["documentEndpoint"]
    with CosmosClient(endpoint, credential=emu.account_keys(ACCOUNT)[kind], user_agent_suffix=agent) as client:
        list(client.list_databases())


def test_each_request_is_logged_with_the_key_that_signed_it(emu, account, credential):
    read_with(emu, account, "secondary", "billing/1.0")
    read_with(emu, account, "primaryReadonly", "reports/2.0")
    read_with(emu, account, "primary", "cosmos-key-rotation-verifier")  # the product's own: counted, not a client
    found = rows(emu, credential, account)
    keys = {row[0]: row for row in found}
    assert set(keys) == {"SecondaryMasterKey", "PrimaryReadonlyMasterKey", "*"}
    assert keys["SecondaryMasterKey"][2].endswith("billing/1.0") and keys["SecondaryMasterKey"][3] >= 1
    # The last row counts every request, the verifier's too: more than the two clients made.
    assert keys["*"][3] > keys["SecondaryMasterKey"][3] + keys["PrimaryReadonlyMasterKey"][3]


def test_an_account_without_a_diagnostic_setting_logs_nothing(emu, account, credential):
    emu.set_diagnostics(ACCOUNT, None)
    read_with(emu, account, "secondary", "billing/1.0")
    assert rows(emu, credential, account) == [["*", "", "", 0, None]]


def test_the_window_leaves_older_requests_out(emu, account, credential):
    read_with(emu, account, "secondary", "billing/1.0")
    assert rows(emu, credential, account, window_hours=1e-9) == [["*", "", "", 0, None]]


def test_a_token_for_another_audience_is_refused(emu, account, credential):
    with pytest.raises(HttpResponseError) as refused:
        logs_client(emu, credential, audience=emu.arm_url).query_workspace(
            emu.workspace_id, query_text(account["id"], 1), timespan=timedelta(hours=1))
    assert refused.value.status_code == 401


def test_an_unknown_workspace_and_a_foreign_query_are_refused(emu, account, credential):
    client = logs_client(emu, credential)
    with pytest.raises(HttpResponseError) as unknown:
        client.query_workspace("00000000-0000-4000-8000-000000000000", query_text(account["id"], 1),
                               timespan=timedelta(hours=1))
    assert unknown.value.status_code == 404
    with pytest.raises(HttpResponseError) as foreign:
        client.query_workspace(emu.workspace_id, "AppTraces | take 1", timespan=timedelta(hours=1))
    assert foreign.value.status_code == 400


def test_a_refused_request_is_logged_but_is_no_use_of_a_key(emu, account, credential):
    # Azure logs every data-plane request, a refused one too (StatusCode 401): the guard's query leaves those out.
    endpoint = account["properties"]["documentEndpoint"]
    wrong = base64.b64encode(b"k" * 64).decode()
    with pytest.raises(CosmosHttpResponseError) as refused, \
            CosmosClient(endpoint, credential=wrong, user_agent_suffix="stale-app/1.0") as client:
        list(client.list_databases())
    assert refused.value.status_code == 401
    logged = rows(emu, credential, account)
    assert logged[-1][0] == "*" and logged[-1][3] >= 1  # seen: the workspace holds the account's logs
    assert [row for row in logged if row[0] != "*"] == []  # and nobody used a key
