import json

import pytest

from cosmos_key_rotation.names import HOST_SETTINGS, PRODUCT_SETTINGS
from cosmos_key_rotation.settings import SettingsError, load_settings, read_settings_file

SUB = "11111111-2222-3333-4444-555555555555"
SINGLE = {
    "COSMOS_SUBSCRIPTION_ID": SUB,
    "COSMOS_RESOURCE_GROUP": "rg-cosmos",
    "COSMOS_ACCOUNT_NAME": "docdb-test",
    "KEY_VAULT_URI": "https://kv-test.vault.azure.net/",
}


def problems(env):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return caught.value.problems


def test_single_target_gets_the_documented_defaults():
    settings = load_settings(SINGLE)
    (target,) = settings.targets
    assert target.name == "docdb-test"
    assert target.secret_name == "cosmos-docdb-test-connection-string"
    assert target.readonly_secret_name is None
    assert target.strategy == "alternate"
    assert target.account_id == (f"/subscriptions/{SUB}/resourceGroups/rg-cosmos/providers/"
                                 "Microsoft.DocumentDB/databaseAccounts/docdb-test")
    assert settings.schedule == "0 0 3 1,15 * *"
    assert (settings.secret_validity_days, settings.min_rotation_interval_minutes, settings.max_key_age_days) == (
        60, 60, 60)
    assert settings.verify_new_key is True and settings.verify_timeout_seconds == 600
    assert settings.arm_endpoint == "https://management.azure.com/"
    assert settings.storage is None


VAULTS = {"AzureCloud": "https://kv-test.vault.azure.net/", "AzureChinaCloud": "https://kv-test.vault.azure.cn/",
          "AzureUSGovernment": "https://kv-test.vault.usgovcloudapi.net/"}


def in_cloud(cloud, **more):
    return {**SINGLE, "AZURE_CLOUD": cloud, "KEY_VAULT_URI": VAULTS[cloud], **more}


@pytest.mark.parametrize("cloud, arm, authority, storage", [
    ("AzureCloud", "https://management.azure.com/", "login.microsoftonline.com", "core.windows.net"),
    ("AzureChinaCloud", "https://management.chinacloudapi.cn/", "login.chinacloudapi.cn", "core.chinacloudapi.cn"),
    ("AzureUSGovernment", "https://management.usgovcloudapi.net/", "login.microsoftonline.us",
     "core.usgovcloudapi.net"),
])
def test_azure_cloud_picks_resource_manager_audience_and_authority(cloud, arm, authority, storage):
    settings = load_settings(in_cloud(cloud))
    assert settings.arm_endpoint == arm
    assert settings.cloud.arm_scope() == arm.rstrip("/") + "/.default"
    assert settings.cloud.authority_host == authority
    assert settings.cloud.storage_suffix == storage


def test_arm_endpoint_overrides_the_cloud_and_its_audience():
    settings = load_settings(in_cloud("AzureChinaCloud", ARM_ENDPOINT="https://127.0.0.1:8443"))
    assert settings.arm_endpoint == "https://127.0.0.1:8443"
    assert settings.cloud.arm_scope(settings.arm_endpoint) == "https://127.0.0.1:8443/.default"
    assert settings.cloud.authority_host == "login.chinacloudapi.cn"


def test_every_problem_is_reported_at_once_and_names_its_setting():
    found = problems({
        **SINGLE, "AZURE_CLOUD": "Mars", "SECRET_VALIDITY_DAYS": "soon", "VERIFY_NEW_KEY": "maybe",
        "KEY_STRATEGY": "random", "ROTATION_SCHEDULE": "0 3 * * *", "AZURE_CLIENT_ID": "me",
        "ARM_ENDPOINT": "http://management.azure.com", "MIN_ROTATION_INTERVAL_MINUTES": "-5",
    })
    text = "\n".join(found)
    for name in ("AZURE_CLOUD", "SECRET_VALIDITY_DAYS", "VERIFY_NEW_KEY", "KEY_STRATEGY", "ROTATION_SCHEDULE",
                 "AZURE_CLIENT_ID", "ARM_ENDPOINT", "MIN_ROTATION_INTERVAL_MINUTES"):
        assert name in text
    assert len(found) == 8


def test_missing_target_settings_say_what_to_set():
    assert "COSMOS_ACCOUNT_NAME" in problems({})[0]
    found = problems({"COSMOS_ACCOUNT_NAME": "docdb-test"})
    assert any("COSMOS_SUBSCRIPTION_ID is not set" in p for p in found)
    assert any("KEY_VAULT_URI is not set" in p for p in found)


def test_rotation_targets_json_with_many_targets():
    targets = [
        {"name": "orders", "subscriptionId": SUB, "resourceGroup": "rg1", "account": "orders-db",
         "keyVaultUri": "https://kv1.vault.azure.net/", "readonlySecretName": "orders-ro"},
        {"name": "billing", "subscriptionId": SUB, "resourceGroup": "rg2", "account": "billing-db",
         "keyVaultUri": "https://kv2.vault.azure.net/", "secretName": "billing-cs", "strategy": "secondary"},
    ]
    settings = load_settings({"ROTATION_TARGETS": json.dumps(targets)})
    orders, billing = settings.targets
    assert orders.readonly_secret_name == "orders-ro" and orders.strategy == "alternate"
    assert billing.secret_name == "billing-cs" and billing.strategy == "secondary"
    assert settings.target("billing") is billing


@pytest.mark.parametrize("raw, expected", [
    ("not json", "ROTATION_TARGETS is not valid JSON"),
    ("[]", "non-empty JSON array"),
    ('[{"name": "a"}]', "ROTATION_TARGETS[0].account is not set"),
    ('[{"account": "abc", "subscriptionId": "x", "resourceGroup": "r", "keyVaultUri": "https://v/", "colour": 1}]',
     "unknown field(s) colour"),
])
def test_bad_rotation_targets_name_the_entry_and_field(raw, expected):
    assert any(expected in p for p in problems({"ROTATION_TARGETS": raw}))


def test_duplicate_target_names_and_both_forms_are_refused():
    entry = {"subscriptionId": SUB, "resourceGroup": "rg", "account": "abc", "keyVaultUri": "https://kv/"}
    assert any("twice" in p for p in problems({"ROTATION_TARGETS": json.dumps([entry, entry])}))
    assert any("not both" in p for p in problems({**SINGLE, "ROTATION_TARGETS": json.dumps([entry])}))


def test_storage_from_connection_string_or_identity():
    assert load_settings({**SINGLE, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}).storage.connection_string
    storage = load_settings({**in_cloud("AzureChinaCloud"), "AzureWebJobsStorage__accountName": "stfunc",
                             "AzureWebJobsStorage__clientId": SUB}).storage
    settings = load_settings({**in_cloud("AzureChinaCloud"),
                              "AzureWebJobsStorage__accountName": "stfunc"})
    assert storage.client_id == SUB
    assert storage.service_uri("queue", settings.cloud.storage_suffix) == "https://stfunc.queue.core.chinacloudapi.cn"
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        load_settings(SINGLE).require_storage()
    sovereign = load_settings({**SINGLE, "AzureWebJobsStorage__accountName": "stfunc",
                               "AzureWebJobsStorage__tableServiceUri": "https://stfunc.table.core.usgovcloudapi.net"})
    assert sovereign.storage.service_uri("table", "ignored") == "https://stfunc.table.core.usgovcloudapi.net"
    assert any("tableServiceUri" in p for p in problems(
        {**SINGLE, "AzureWebJobsStorage__accountName": "stfunc", "AzureWebJobsStorage__tableServiceUri": "x"}))


def test_the_loader_reads_only_the_documented_settings():
    read = set()

    class Recording(dict):
        def get(self, key, default=None):
            read.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            read.add(key)
            return super().__getitem__(key)

    load_settings(Recording(SINGLE))
    documented = set(PRODUCT_SETTINGS) | set(HOST_SETTINGS) | {"AzureWebJobsStorage"}
    assert read <= documented
    # Read only when discovery is on (DISCOVERY_SUBSCRIPTIONS).
    conditional = {"ROTATION_TARGETS", "DISCOVERY_TAG", "DISCOVERY_KEY_VAULT_URI"}
    assert set(PRODUCT_SETTINGS) - conditional <= read


def test_settings_file_values(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": SINGLE}))
    assert read_settings_file(path) == SINGLE
    path.write_text("{")
    with pytest.raises(SettingsError, match="not valid JSON"):
        read_settings_file(path)
    with pytest.raises(SettingsError, match=r"missing\.json"):
        read_settings_file(tmp_path / "missing.json")


def test_sample_settings_file_lists_every_setting():
    values = read_settings_file("local.settings.sample.json")
    assert set(PRODUCT_SETTINGS) <= set(values)
    assert "AzureWebJobsStorage" in values


def test_two_targets_on_one_account_are_refused_naming_both():
    entry = {"subscriptionId": SUB, "resourceGroup": "rg-cosmos", "account": "docdb-test",
             "keyVaultUri": "https://kv-test.vault.azure.net/"}
    other = {**entry, "name": "copy", "resourceGroup": "RG-COSMOS", "secretName": "another"}
    (problem,) = problems({"ROTATION_TARGETS": json.dumps([entry, other])})
    assert "'docdb-test' and 'copy' both name account docdb-test" in problem


@pytest.mark.parametrize("schedule, words", [
    ("99 99 99 99 99 99", "its second field '99' is out of range: second runs from 0 to 59"),
    ("0 0 24 * * *", "hour field '24' is out of range"),
    ("0 0 3 0 * *", "day field '0' is out of range: day runs from 1 to 31"),
    ("0 0 3 1 13 *", "month field '13'"),
    ("0 0 3 * * 7", "day-of-week field '7'"),
    ("0 0 3 20-10 * *", "runs backwards"),
    ("0 */0 * * * *", "bad step '0'"),
    ("0 0 3 x * *", "is not a number"),
    ("0 0 3 * * *", None),
    ("0 0 3 1,15 * *", None),
    ("*/30 5-10/2 0 1-31 JAN-dec mon-FRI", None),
])
def test_the_schedule_is_range_checked(schedule, words):
    env = {**SINGLE, "ROTATION_SCHEDULE": schedule}
    if words is None:
        assert load_settings(env).schedule == schedule
    else:
        assert any(words in p and "ROTATION_SCHEDULE" in p for p in problems(env)), problems(env)


def test_a_vault_of_another_cloud_is_refused_naming_both():
    (problem,) = problems({**SINGLE, "KEY_VAULT_URI": "https://kv-test.vault.azure.cn/"})
    assert "KEY_VAULT_URI" in problem and "AZURE_CLOUD=AzureCloud" in problem and ".vault.azure.net" in problem
    # The local emulator's loopback vault belongs to any cloud.
    assert load_settings(in_cloud("AzureChinaCloud", KEY_VAULT_URI="https://127.0.0.1:8443/"))


def test_live_key_kind_and_paused_targets():
    settings = load_settings({**SINGLE, "LIVE_KEY_KIND": "secondary", "PAUSED_TARGETS": "docdb-test"})
    assert settings.targets[0].live_key_kind == "secondary" and settings.paused("docdb-test")
    assert any("LIVE_KEY_KIND is 'tertiary'" in p for p in problems({**SINGLE, "LIVE_KEY_KIND": "tertiary"}))
    assert any("PAUSED_TARGETS names nope" in p for p in problems({**SINGLE, "PAUSED_TARGETS": "nope"}))
    entry = {"subscriptionId": SUB, "resourceGroup": "rg", "account": "abc", "keyVaultUri": VAULTS["AzureCloud"],
             "liveKeyKind": "primary"}
    assert load_settings({"ROTATION_TARGETS": json.dumps([entry])}).targets[0].live_key_kind == "primary"


def test_a_disabled_timer_is_seen_in_either_spelling():
    assert not load_settings(SINGLE).timer_disabled
    assert load_settings({**SINGLE, "AzureWebJobs.scheduled_rotation.Disabled": "true"}).timer_disabled
    assert load_settings({**SINGLE, "AzureWebJobs__scheduled_rotation__Disabled": "1"}).timer_disabled


GUARD_TARGET = {
    "COSMOS_SUBSCRIPTION_ID": "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5", "COSMOS_RESOURCE_GROUP": "rg",
    "COSMOS_ACCOUNT_NAME": "docdb-x", "KEY_VAULT_URI": "https://kv.vault.azure.net/",
}
WORKSPACE = "0f0e0d0c-0b0a-4909-8807-060504030201"


def test_the_in_use_guard_is_on_once_a_workspace_is_named_and_off_without():
    off = load_settings(GUARD_TARGET)
    assert (off.in_use_guard, off.workspace_for(off.targets[0])) == ("off", None)
    on = load_settings({**GUARD_TARGET, "KEY_USAGE_WORKSPACE_ID": WORKSPACE, "IN_USE_WINDOW_HOURS": "0.5"})
    assert (on.in_use_guard, on.workspace_for(on.targets[0]), on.in_use_window_hours) == ("enforce", WORKSPACE, 0.5)
    assert load_settings({**GUARD_TARGET, "KEY_USAGE_WORKSPACE_ID": WORKSPACE, "IN_USE_GUARD": "off"}).workspace_for(
        on.targets[0]) is None
    china = load_settings({**GUARD_TARGET, "AZURE_CLOUD": "AzureChinaCloud",
                           "KEY_VAULT_URI": "https://kv.vault.azure.cn/"})
    assert china.logs_endpoint == "https://api.loganalytics.azure.cn"
    assert china.cloud.logs_scope == "https://api.loganalytics.azure.cn/.default"


def test_a_target_names_its_own_workspace_in_rotation_targets():
    targets = [{"name": "a", "subscriptionId": GUARD_TARGET["COSMOS_SUBSCRIPTION_ID"], "resourceGroup": "rg",
                "account": "docdb-a", "keyVaultUri": "https://kv.vault.azure.net/", "keyUsageWorkspaceId": WORKSPACE}]
    settings = load_settings({"ROTATION_TARGETS": json.dumps(targets)})
    assert settings.in_use_guard == "enforce" and settings.workspace_for(settings.targets[0]) == WORKSPACE


@pytest.mark.parametrize("env, words", [
    ({"IN_USE_GUARD": "strict", "KEY_USAGE_WORKSPACE_ID": WORKSPACE}, "IN_USE_GUARD is 'strict'"),
    ({"IN_USE_GUARD": "enforce"}, "no workspace is named: set KEY_USAGE_WORKSPACE_ID"),
    ({"KEY_USAGE_WORKSPACE_ID": "law-prod"}, "KEY_USAGE_WORKSPACE_ID is 'law-prod'; expected a GUID"),
    ({"KEY_USAGE_WORKSPACE_ID": WORKSPACE, "IN_USE_WINDOW_HOURS": "a day"}, "IN_USE_WINDOW_HOURS is 'a day'"),
    ({"KEY_USAGE_WORKSPACE_ID": WORKSPACE, "IN_USE_WINDOW_HOURS": "0"}, "IN_USE_WINDOW_HOURS is '0'"),
])
def test_bad_guard_settings_are_named(env, words):
    with pytest.raises(SettingsError) as bad:
        load_settings({**GUARD_TARGET, **env})
    assert words in str(bad.value)
