"""The Bicep and the code agree: app settings, storage names, the custom role's actions, role assignments."""

import json
import re

from cosmos_key_rotation import names

from .support import INFRA, MODULES, body, code, read

# The host's identity-based storage connection also gets its service URIs. From
# AzureWebJobsStorage__accountName alone the host builds the global cloud's endpoints, which are wrong in
# Azure China and Azure US Government; the account's own primaryEndpoints are right in every cloud. The
# host reads them, the product code does not have to.
STORAGE_SERVICE_URI_SETTINGS = frozenset(
    {
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "AzureWebJobsStorage__tableServiceUri",
    }
)

# Product settings the Bicep may leave unset. None: the Bicep sets every setting the product reads, and
# an empty string means "not configured" (ROTATION_TARGETS and READONLY_SECRET_NAME by default), so the
# app's configuration shows every knob and a typo in a setting's name cannot hide.
OPTIONAL_SETTINGS: frozenset[str] = frozenset()

# Flex Consumption rejects these (its functionAppConfig replaces them), PRODUCT.md section 8.
FLEX_REJECTED_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_TIME_ZONE",
    "WEBSITE_NODE_DEFAULT_VERSION",
}

# Polling a regeneration reads an operation status at subscription scope (modules/cosmos-roles.bicep).
OPERATION_STATUS_ACTIONS = ["Microsoft.DocumentDB/locations/operationsStatus/read"]

ROLE_DEFINITIONS = json.loads(read(INFRA / "role-definitions.json"))


def app_settings(trees) -> dict:
    return trees["modules/functionapp.bicep"]["variables"]["appSettings"]["value"]


def test_every_setting_the_code_reads_is_set_and_nothing_else(trees):
    bicep = set(app_settings(trees))
    code = set(names.PRODUCT_SETTINGS) | set(names.HOST_SETTINGS)
    assert code - OPTIONAL_SETTINGS - bicep == set(), "read by the code, not set by the Bicep"
    assert bicep - STORAGE_SERVICE_URI_SETTINGS - code == set(), "set by the Bicep, read by nobody"


def test_app_settings_are_applied_from_the_one_settings_object():
    text = read(MODULES / "functionapp.bicep")
    assert re.search(r"for setting in items\(appSettings\): \{\s*name: setting\.key\s*value: setting\.value", text)
    assert text.count("appSettings:") == 1  # no second list of settings elsewhere in the site


def test_no_setting_that_flex_consumption_rejects(trees):
    assert FLEX_REJECTED_SETTINGS & set(app_settings(trees)) == set()
    for path in INFRA.rglob("*.bicep"):
        text = code(path)
        for setting in FLEX_REJECTED_SETTINGS | {"linuxFxVersion"}:
            assert setting not in text, f"{path.name} mentions {setting}"


def test_host_storage_and_telemetry_use_the_managed_identity(trees):
    settings = app_settings(trees)
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    for uri_setting, endpoint in (
        ("AzureWebJobsStorage__blobServiceUri", "blobEndpoint"),
        ("AzureWebJobsStorage__queueServiceUri", "queueEndpoint"),
        ("AzureWebJobsStorage__tableServiceUri", "tableEndpoint"),
    ):
        assert settings[uri_setting] == endpoint
    storage = read(MODULES / "storage.bicep")
    for service in ("blob", "queue", "table"):
        assert f"output {service}Endpoint string = storage.properties.primaryEndpoints.{service}" in storage


def test_no_key_or_connection_string_is_an_app_setting(trees):
    for name in app_settings(trees):
        assert "KEY" not in name.upper().replace("KEY_VAULT", "").replace("KEY_STRATEGY", "").replace(
            "MAX_KEY_AGE", ""
        ).replace("VERIFY_NEW_KEY", ""), name
    assert "AzureWebJobsStorage" not in app_settings(trees)  # identity-based, no connection string
    for path in INFRA.rglob("*.bicep"):
        assert "listKeys(" not in read(path) and "listConnectionStrings(" not in read(path), path.name


def test_host_telemetry_mode_is_not_opentelemetry():
    for path in INFRA.rglob("*.bicep"):
        assert "telemetryMode" not in code(path), path.name
    for path in INFRA.rglob("*.json"):
        assert "telemetryMode" not in read(path), path.name


def test_a_target_list_replaces_the_single_target_settings():
    # The code refuses COSMOS_ACCOUNT_NAME and ROTATION_TARGETS together.
    main = read(INFRA / "main.bicep")
    assert "var useTargetList = !empty(rotationTargets)" in main
    assert re.search(r"^\s*rotationTargets: rotationTargets$", main, re.MULTILINE)
    for parameter in (
        "cosmosSubscriptionId",
        "cosmosResourceGroup",
        "cosmosAccountName",
        "secretName",
        "readonlySecretName",
    ):
        assert re.search(rf"^\s*{parameter}: useTargetList \? '' : ", main, re.MULTILINE), parameter


def test_key_vault_uri_is_the_vaults_own_uri():
    assert "output uri string = vault.properties.vaultUri" in read(MODULES / "keyvault.bicep")
    assert "keyVaultUri: keyVault.outputs.uri" in read(INFRA / "main.bicep")


def test_queue_table_and_lease_container_names_match_the_code(trees):
    variables = trees["modules/storage.bicep"]["variables"]
    assert variables["queueNames"]["value"] == [names.QUEUE_NAME, names.POISON_QUEUE_NAME]
    assert variables["tableName"]["value"] == names.TABLE_NAME
    assert variables["leaseContainerName"]["value"] == names.LEASE_CONTAINER
    resources = trees["modules/storage.bicep"]["resources"]
    assert body(resources["queues"]["config"])["name"] == "queueName"
    assert resources["queues"]["config"]["loop_type"]["detail"]["array_name"] == "queueNames"
    assert resources["table"]["config"]["name"] == "tableName"
    assert resources["leaseContainer"]["config"]["name"] == "leaseContainerName"


def role_permissions(tree, symbol) -> dict:
    [permissions] = body(tree["resources"][symbol]["config"])["properties"]["permissions"]
    return permissions


def test_custom_role_holds_exactly_the_arm_actions_the_code_performs(trees):
    tree = trees["modules/cosmos-roles.bicep"]
    assert tree["globals"]["scope"]["value"] == "subscription"
    actions = tree["variables"]["rotatorActions"]["value"]
    assert len(actions) == len(set(actions))
    assert set(actions) == set(names.ARM_ACTIONS)
    permissions = role_permissions(tree, "rotatorRole")
    assert permissions["actions"] == "rotatorActions"
    assert permissions["notActions"] == permissions["dataActions"] == permissions["notDataActions"] == []
    for action in actions:
        assert "*" not in action


def test_operation_status_role_holds_only_the_polling_read(trees):
    tree = trees["modules/cosmos-roles.bicep"]
    assert tree["variables"]["operationStatusActions"]["value"] == OPERATION_STATUS_ACTIONS
    permissions = role_permissions(tree, "operationStatusRole")
    assert permissions["actions"] == "operationStatusActions"
    assert permissions["notActions"] == permissions["dataActions"] == permissions["notDataActions"] == []
    assert set(OPERATION_STATUS_ACTIONS).isdisjoint(names.ARM_ACTIONS)


def test_custom_role_is_assigned_on_the_account_only(trees):
    tree = trees["modules/cosmos-access.bicep"]
    [assignment] = [r for r in tree["resources"].values() if r["type"] == "Microsoft.Authorization/roleAssignments"]
    config = body(assignment["config"])
    assert config["scope"] == "account"
    assert tree["resources"]["account"]["type"] == "Microsoft.DocumentDB/databaseAccounts"
    assert tree["resources"]["account"]["existing"] is True
    assert config["properties"]["roleDefinitionId"] == "rotatorRoleDefinitionId"
    main = read(INFRA / "main.bicep")
    assert "rotatorRoleDefinitionId: cosmosRoles.outputs.rotatorRoleDefinitionId" in main
    assert "scope: resourceGroup(cosmos.subscriptionId, cosmos.resourceGroup)" in main


def test_app_identity_gets_the_vault_storage_and_telemetry_roles():
    text = read(MODULES / "rbac.bicep")
    for role in ("storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"):
        assert re.search(rf"appStorageRoles = \[[^\]]*roles\.{role}\b", text), role
    for symbol, scope, role in (
        ("appVault", "vault", "keyVaultSecretsOfficer"),
        ("appTelemetry", "appInsights", "monitoringMetricsPublisher"),
    ):
        declaration = (
            rf"resource {symbol} [^{{]*\{{\s*"
            rf"name: guid\({scope}\.id, appPrincipalId, roles\.{role}\)\s*"
            rf"scope: {scope}\s"
        )
        assert re.search(declaration, text), symbol
    assert ROLE_DEFINITIONS["keyVaultSecretsOfficer"] == "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"


def test_role_definition_ids_live_in_one_named_map():
    guid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
    for path in INFRA.rglob("*.bicep"):
        assert not guid.search(read(path)), f"{path.name} has a literal GUID; use role-definitions.json"


def test_every_role_assignment_is_named_by_scope_principal_and_role_and_sets_principal_type(trees):
    count = 0
    for name, tree in trees.items():
        for symbol, resource in tree.get("resources", {}).items():
            if resource["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            count += 1
            config = body(resource["config"])
            guid_call = config["name"]["function"]
            assert guid_call["type"] == "guid", f"{name}:{symbol}"
            parameters = list(guid_call["parameters"].values())
            assert len([p for p in parameters if p is not None]) == 3, f"{name}:{symbol}"
            scope_arg, principal_arg, _role_arg = parameters[:3]
            scope = config.get("scope")
            subscription = {"function": {"type": "subscription", "parameters": {"subscription_id": None}}}
            expected_scope = {
                "operator": {
                    "type": "property_accessor",
                    "operands": {"operand_1": scope or subscription, "operand_2": "id"},
                }
            }
            assert scope_arg == expected_scope, f"{name}:{symbol}: guid() must start with the scope's id"
            assert principal_arg == config["properties"]["principalId"], f"{name}:{symbol}"
            assert "principalType" in config["properties"], f"{name}:{symbol}"
    assert count >= 7
