"""The in-use guard's decision (in_use_guard.judge) and the reading of the logs (key_usage), without Azure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cosmos_key_rotation.in_use_guard import judge
from cosmos_key_rotation.key_usage import KEY_TYPES, Client, KeyUsage, kinds_of, parse, query_text

LEGACY = Client("SecondaryMasterKey", "10.1.2.3", "azsdk-python-cosmos/4.9 legacy-billing", 1204, "2026-11-28T10:00Z")
LIVE_APP = Client("PrimaryMasterKey", "10.1.2.4", "orders/2.0", 50, "2026-11-29T09:00Z")


def usage(*clients: Client, seen: int = 100) -> KeyUsage:
    return KeyUsage(24.0, seen, clients)


@pytest.mark.parametrize("logged, kinds", [
    ("PrimaryMasterKey", {"primary"}), ("secondarymasterkey", {"secondary"}),
    ("PrimaryReadOnlyMasterKey", {"primaryReadonly"}), ("SecondaryReadonlyMasterKey", {"secondaryReadonly"}),
    ("AadToken", set()), ("ResourceToken", set()),
    ("SomethingNew", {"primary", "secondary", "primaryReadonly", "secondaryReadonly"}),
    ("", {"primary", "secondary", "primaryReadonly", "secondaryReadonly"}),
])
def test_logged_key_types_map_to_kinds_and_an_unknown_one_counts_as_every_key(logged, kinds):
    assert kinds_of(logged) == kinds


def test_the_table_names_each_of_the_four_kinds_once():
    assert sorted(kind for kind in KEY_TYPES.values() if kind) == [
        "primary", "primaryReadonly", "secondary", "secondaryReadonly"]


def test_a_used_key_is_refused_under_enforce_naming_its_clients():
    verdict = judge(usage(LEGACY, LIVE_APP), "enforce", "docdb-prod", "secondary", regenerates_live=False,
                    forced=False)
    assert not verdict.allowed and verdict.code == "KeyStillInUse" and verdict.event == "KeyInUse"
    assert verdict.clients == (LEGACY,)
    assert verdict.message.startswith("secondary key of docdb-prod used by 1 client(s) in the last 24 h: 10.1.2.3 "
                                      "(azsdk-python-cosmos/4.9 legacy-billing) 1,204 requests, last 2026-11-28")


@pytest.mark.parametrize("mode, forced, why", [("warn", False, "IN_USE_GUARD=warn"), ("enforce", True, "force")])
def test_warn_and_force_rotate_and_say_why(mode, forced, why):
    verdict = judge(usage(LEGACY), mode, "a", "secondary", regenerates_live=False, forced=forced)
    assert verdict.allowed and verdict.code == "KeyStillInUse" and why in verdict.message


def test_the_live_key_of_a_fixed_strategy_is_never_refused_but_its_clients_are_named():
    verdict = judge(usage(LIVE_APP), "enforce", "a", "primary", regenerates_live=True, forced=False)
    assert verdict.allowed and verdict.clients == (LIVE_APP,) and "lose it now" in verdict.message


def test_an_unused_key_passes_quietly():
    verdict = judge(usage(LIVE_APP), "enforce", "a", "secondary", regenerates_live=False, forced=False)
    assert verdict.allowed and verdict.code is None


def test_an_unknown_logged_value_blocks_fail_safe():
    odd = Client("FutureKeyType", "10.9.9.9", "x", 1, "t")
    verdict = judge(usage(odd), "enforce", "a", "secondary", regenerates_live=False, forced=False)
    assert not verdict.allowed and "logged key type 'FutureKeyType'" in verdict.message


@pytest.mark.parametrize("mode, forced, allowed", [("enforce", False, False), ("warn", False, True),
                                                    ("enforce", True, True)])
def test_no_request_logged_at_all_means_the_guard_cannot_tell(mode, forced, allowed):
    verdict = judge(usage(seen=0), mode, "a", "secondary", regenerates_live=False, forced=forced)
    assert (verdict.allowed, verdict.code) == (allowed, "KeyUsageUnknown")
    assert "no data-plane request of a in the last 24 h" in verdict.message


def test_parse_reads_the_clients_and_the_count_of_every_request():
    columns = [SimpleNamespace(name=n) for n in ("Key", "ClientIpAddress", "UserAgent", "Requests", "LastSeen")]
    rows = [["SecondaryMasterKey", "10.1.2.3", "legacy", 3, "2026-11-29T10:00:00Z"], ["*", "", "", 9, None]]
    found = parse([SimpleNamespace(columns=columns, rows=rows)], 0.5)
    assert found.seen_requests == 9 and found.window_hours == 0.5
    assert found.clients == (Client("SecondaryMasterKey", "10.1.2.3", "legacy", 3, "2026-11-29T10:00:00Z"),)
    assert found.summary()["secondary"] == {"clients": 1, "lastUse": "2026-11-29T10:00:00Z"}
    assert found.summary()["primary"] == {"clients": 0, "lastUse": None}


def test_the_query_names_the_account_window_and_the_products_own_user_agent():
    text = query_text('/subscriptions/s/resourceGroups/g/providers/Microsoft.DocumentDB/databaseAccounts/a', 0.5)
    assert text.startswith('let accountId = "/subscriptions/s/resourceGroups/g/providers/Microsoft.DocumentDB/'
                           'databaseAccounts/a";\nlet window = 1800.000s;\nlet verifierAgent = '
                           '"cosmos-key-rotation-verifier";\n')
    assert "CDBDataPlaneRequests" in text
