"""Discovery by tag: which accounts become targets, from which tags, and how they join the configured ones."""

import json
from types import SimpleNamespace

import pytest

from cosmos_key_rotation.discovery import discover, merged
from cosmos_key_rotation.errors import RotationError
from cosmos_key_rotation.settings import SettingsError, load_settings

SUB = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-2222-3333-4444-555555555555"
VAULT = "https://kv-fleet.vault.azure.net/"


def account(name, tags, sub=SUB, group="rg"):
    return SimpleNamespace(name=name, tags=tags,
                           id=f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.DocumentDB/"
                              f"databaseAccounts/{name}")


def settings(**more):
    return load_settings({"DISCOVERY_SUBSCRIPTIONS": f"{SUB},{OTHER}", "DISCOVERY_KEY_VAULT_URI": VAULT, **more})


def test_tagged_accounts_become_targets_described_by_their_tags():
    fleet = {SUB: [
        account("docdb-a", {"cosmos-key-rotation": "enabled"}),
        account("docdb-b", {"cosmos-key-rotation": "enabled", "cosmos-key-rotation-vault": "https://kv-b.vault.azure.net/",
                            "cosmos-key-rotation-secret": "b-cs", "cosmos-key-rotation-readonly-secret": "b-ro",
                            "cosmos-key-rotation-strategy": "primary", "cosmos-key-rotation-live-key": "secondary"}),
        account("docdb-untagged", {"team": "x"}),
        account("docdb-off", {"cosmos-key-rotation": "disabled"}),
    ], OTHER: [account("docdb-c", {"cosmos-key-rotation": "enabled"}, sub=OTHER, group="rg2")]}
    found = discover(settings(), lambda sub: fleet[sub])
    by_name = {target.name: target for target in found.targets}
    assert sorted(by_name) == ["docdb-a", "docdb-b", "docdb-c"] and found.problems == found.errors == []
    a, b, c = by_name["docdb-a"], by_name["docdb-b"], by_name["docdb-c"]
    assert (a.key_vault_uri, a.secret_name, a.readonly_secret_name, a.strategy, a.live_key_kind, a.origin) == (
        VAULT, "cosmos-docdb-a-connection-string", None, "alternate", None, "discovered")
    assert (b.key_vault_uri, b.secret_name, b.readonly_secret_name, b.strategy, b.live_key_kind) == (
        "https://kv-b.vault.azure.net/", "b-cs", "b-ro", "primary", "secondary")
    assert (c.subscription_id, c.resource_group) == (OTHER, "rg2")


def test_a_custom_tag_and_strategy_default():
    fleet = [account("docdb-a", {"rotate": "yes"}), account("docdb-b", {"cosmos-key-rotation": "enabled"})]
    found = discover(settings(DISCOVERY_TAG="rotate=yes", KEY_STRATEGY="secondary"), lambda sub: fleet)
    assert [(t.name, t.strategy) for t in found.targets] == [("docdb-a", "secondary")] * 2  # listed for both subs


def test_unusable_tags_are_reported_not_guessed():
    fleet = [account("docdb-a", {"cosmos-key-rotation": "enabled", "cosmos-key-rotation-strategy": "sideways",
                                 "cosmos-key-rotation-live-key": "tertiary"})]
    found = discover(load_settings({"DISCOVERY_SUBSCRIPTIONS": SUB}), lambda sub: fleet)
    assert found.targets == []
    (problem,) = found.problems
    assert "docdb-a" in problem and "no vault" in problem and "sideways" in problem and "tertiary" in problem


def test_a_subscription_that_cannot_be_listed_is_an_error_and_the_others_still_count():
    def lister(sub):
        if sub == OTHER:
            raise RotationError("AuthorizationFailed", "no read on the subscription")
        return [account("docdb-a", {"cosmos-key-rotation": "enabled"})]

    found = discover(settings(), lister)
    assert [t.name for t in found.targets] == ["docdb-a"] and [e.code for e in found.errors] == ["AuthorizationFailed"]


def test_a_configured_target_wins_and_an_account_found_twice_is_one_target():
    configured = load_settings({"ROTATION_TARGETS": json.dumps([{
        "name": "prod", "subscriptionId": SUB, "resourceGroup": "RG", "account": "docdb-a", "keyVaultUri": VAULT,
        "secretName": "configured-cs"}]), "DISCOVERY_SUBSCRIPTIONS": SUB, "DISCOVERY_KEY_VAULT_URI": VAULT})
    tagged = {"cosmos-key-rotation": "enabled"}
    fleet = [account("docdb-a", tagged), account("docdb-b", tagged)]
    found = discover(configured, lambda sub: fleet + fleet)
    targets = merged(configured.targets, found.targets)
    assert [(t.name, t.secret_name, t.origin) for t in targets] == [
        ("prod", "configured-cs", "configured"), ("docdb-b", "cosmos-docdb-b-connection-string", "discovered")]


@pytest.mark.parametrize("env, words", [
    ({"DISCOVERY_SUBSCRIPTIONS": "not-a-guid"}, "DISCOVERY_SUBSCRIPTIONS"),
    ({"DISCOVERY_SUBSCRIPTIONS": SUB, "DISCOVERY_TAG": "novalue"}, "DISCOVERY_TAG"),
    ({"DISCOVERY_SUBSCRIPTIONS": SUB, "DISCOVERY_KEY_VAULT_URI": "https://kv.vault.azure.cn/"},
     "DISCOVERY_KEY_VAULT_URI"),
])
def test_bad_discovery_settings_name_the_setting(env, words):
    with pytest.raises(SettingsError, match=words):
        load_settings(env)


def test_discovery_alone_needs_no_configured_target():
    assert load_settings({"DISCOVERY_SUBSCRIPTIONS": SUB}).targets == ()


def test_the_workspace_tag_names_the_in_use_guards_workspace_and_a_bad_one_is_reported():
    workspace = "0f0e0d0c-0b0a-4909-8807-060504030201"
    fleet = [account("docdb-a", {"cosmos-key-rotation": "enabled", "cosmos-key-rotation-workspace": workspace}),
             account("docdb-b", {"cosmos-key-rotation": "enabled", "cosmos-key-rotation-workspace": "law-prod"})]
    found = discover(load_settings({"DISCOVERY_SUBSCRIPTIONS": SUB, "DISCOVERY_KEY_VAULT_URI": VAULT}),
                     lambda sub: fleet)
    assert [(t.name, t.key_usage_workspace_id) for t in found.targets] == [("docdb-a", workspace)]
    (problem,) = found.problems
    assert "docdb-b" in problem and "cosmos-key-rotation-workspace is 'law-prod'" in problem
