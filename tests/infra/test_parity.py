"""The Bicep and the code agree: app settings, storage names, the custom role's actions, role assignments."""

import json
import re

from cosmos_key_rotation import names, settings

from .support import INFRA, MODULES, body, code, evaluate, read

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

# Operators pause the rotation timer with one of these (the Functions host reads
# AzureWebJobs.<function>.Disabled, in any of the three spellings; names.HOST_SETTINGS lists them so that
# `status` can show a pause). They are the operator's switch, not configuration: the Bicep must never set
# them, or a deployment would pause (or unpause) the timer.
TIMER_PAUSE_SETTINGS = frozenset(
    {
        "AzureWebJobs.scheduled_rotation.Disabled",
        "AzureWebJobs__scheduled_rotation__Disabled",
        "AzureWebJobs_scheduled_rotation_Disabled",
    }
)

# Settings the code reads that the Bicep leaves unset: only the timer's pause switch. Every product
# setting is set, and an empty string means "not configured" (ROTATION_TARGETS, READONLY_SECRET_NAME,
# LIVE_KEY_KIND and PAUSED_TARGETS by default), so the app's configuration shows every knob and a typo in a
# setting's name cannot hide.
OPTIONAL_SETTINGS: frozenset[str] = TIMER_PAUSE_SETTINGS | {"WEBSITE_AUTH_ENABLED"}  # the platform's own

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


def test_the_timer_pause_switch_is_left_to_the_operator(trees):
    assert set(names.HOST_SETTINGS) >= TIMER_PAUSE_SETTINGS
    assert TIMER_PAUSE_SETTINGS & set(app_settings(trees)) == set()
    for path in INFRA.rglob("*.bicep"):
        assert not re.search(r"AzureWebJobs[._]+scheduled_rotation", code(path)), f"{path.name} sets the timer's pause"
    assert OPTIONAL_SETTINGS.isdisjoint(names.PRODUCT_SETTINGS)  # every product setting is set


def test_live_key_kind_and_paused_targets_are_parameters_passed_to_the_app(trees):
    main = trees["main.bicep"]["parameters"]
    assert main["liveKeyKind"]["default"] == ""
    decorators = {d["type"]: d["argument"] for d in main["liveKeyKind"]["decorators"]}
    assert decorators["allowed"] == ["", "none", "primary", "secondary"]
    assert "NoLiveSecret" in decorators["description"]
    assert main["pausedTargets"]["default"] == ""
    assert "comma-separated" in {d["type"]: d["argument"] for d in main["pausedTargets"]["decorators"]}["description"]
    settings = app_settings(trees)
    assert settings["LIVE_KEY_KIND"] == "liveKeyKind"
    assert settings["PAUSED_TARGETS"] == "pausedTargets"
    params = body(trees["main.bicep"]["modules"]["functionApp"]["config"])["params"]
    assert params["pausedTargets"] == "pausedTargets"
    assert set(trees["modules/functionapp.bicep"]["parameters"]) >= {"liveKeyKind", "pausedTargets"}


def live_key_kind_setting(trees, **parameters) -> str:
    """LIVE_KEY_KIND as main.bicep would pass it to the app, for the given parameters."""
    tree = trees["main.bicep"]
    expression = body(tree["modules"]["functionApp"]["config"])["params"]["liveKeyKind"]
    return evaluate(expression, tree, parameters)


EXISTING_ACCOUNT = "/subscriptions/0000/resourceGroups/data/providers/Microsoft.DocumentDB/databaseAccounts/docdb-prod"
TARGETS = '[{"name": "a", "subscriptionId": "0000", "resourceGroup": "g", "account": "a", "keyVaultUri": "v"}]'


def test_a_new_account_adopts_primary_and_an_existing_one_waits_for_the_operator(trees):
    # A new account: no application holds a key yet, so the first run adopts primary and publishes it.
    assert live_key_kind_setting(trees) == "primary"
    # An existing account: only the operator knows the live key (README: adopt, or declare it).
    assert live_key_kind_setting(trees, existingCosmosAccountId=EXISTING_ACCOUNT) == ""
    # ROTATION_TARGETS: LIVE_KEY_KIND belongs to the single target; the entries carry their own.
    assert live_key_kind_setting(trees, rotationTargets=TARGETS) == ""
    assert live_key_kind_setting(trees, rotationTargets=TARGETS, liveKeyKind="secondary") == ""


def test_an_explicit_live_key_kind_overrides_both_defaults(trees):
    assert live_key_kind_setting(trees, liveKeyKind="secondary") == "secondary"
    assert live_key_kind_setting(trees, liveKeyKind="none") == ""
    assert live_key_kind_setting(trees, existingCosmosAccountId=EXISTING_ACCOUNT, liveKeyKind="primary") == "primary"
    assert live_key_kind_setting(trees, existingCosmosAccountId=EXISTING_ACCOUNT, liveKeyKind="none") == ""
    # '' is what azd passes for an empty LIVE_KEY_KIND: it must mean "the default", like an unset one.
    assert live_key_kind_setting(trees, liveKeyKind="") == "primary"


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
    # Settings that name a key without holding one: the vault, the strategy, the age limit, the check,
    # LIVE_KEY_KIND (which of the two keys applications use: "primary" or "secondary") and the workspace id
    # where the in-use guard reads the key usage.
    for name in app_settings(trees):
        assert "KEY" not in name.upper().replace("KEY_VAULT", "").replace("KEY_STRATEGY", "").replace(
            "MAX_KEY_AGE", ""
        ).replace("VERIFY_NEW_KEY", "").replace("LIVE_KEY_KIND", "").replace("KEY_USAGE_WORKSPACE_ID", ""), name
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
        "liveKeyKind",
    ):
        assert re.search(rf"^\s*{parameter}: useTargetList \? '' : ", main, re.MULTILINE), parameter


def test_key_vault_uri_is_the_vaults_own_uri(trees):
    assert "output uri string = vault.properties.vaultUri" in read(MODULES / "keyvault.bicep")
    # Created here or existing elsewhere, the URI comes from the vault resource, read where it lives.
    assert "output uri string = vault.properties.vaultUri" in read(MODULES / "keyvault-access.bicep")
    assert trees["modules/keyvault-access.bicep"]["resources"]["vault"]["existing"] is True
    assert "keyVaultUri: keyVaultAccess.outputs.uri" in read(INFRA / "main.bicep")
    assert "output KEY_VAULT_URI string = keyVaultAccess.outputs.uri" in read(INFRA / "main.bicep")


EXISTING_VAULT = "/subscriptions/1111/resourceGroups/shared-secrets/providers/Microsoft.KeyVault/vaults/kv-shared"


def test_an_existing_key_vault_replaces_the_created_one(trees):
    tree = trees["main.bicep"]
    parameter = tree["parameters"]["existingKeyVaultId"]
    assert parameter["default"] == ""
    description = {d["type"]: d["argument"] for d in parameter["decorators"]}["description"]
    for word in ("Resource id", "another resource group or subscription", "RBAC", "Empty to create"):
        assert word in description, word
    # No vault is created when one is given.
    create = tree["modules"]["keyVault"]["config"]
    assert evaluate(create["condition"], tree, {}) is True
    assert evaluate(create["condition"], tree, {"existingKeyVaultId": EXISTING_VAULT}) is False
    # The role assignments (and the URI) go to the vault's own subscription and resource group.
    access = body(tree["modules"]["keyVaultAccess"]["config"])
    scope = access["scope"]["function"]
    assert scope["type"] == "resource_group"
    where = {
        "subscription": scope["parameters"]["subscription_id"],
        "group": scope["parameters"]["resource_group_name"],
        "name": access["params"]["vaultName"],
    }
    given = {key: evaluate(value, tree, {"existingKeyVaultId": EXISTING_VAULT}) for key, value in where.items()}
    assert given == {"subscription": "1111", "group": "shared-secrets", "name": "kv-shared"}
    assert access["params"]["principals"] == "rotationPrincipals"
    assert access["dependsOn"] == ["keyVault"]


def test_the_existing_key_vault_handling_mirrors_the_existing_account(trees):
    variables = trees["main.bicep"]["variables"]
    def shape(variable: str, parameter: str, flag: str) -> str:
        return repr(variables[variable]["value"]).replace(parameter, "ID").replace(flag, "USE")

    pairs = (("useExistingAccount", "useExistingVault"), ("existingAccountSegments", "existingVaultSegments"))
    for account, vault in pairs:
        account_shape = shape(account, "existingCosmosAccountId", "useExistingAccount")
        assert account_shape == shape(vault, "existingKeyVaultId", "useExistingVault"), (account, vault)


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


def test_app_identity_gets_the_vault_storage_and_telemetry_roles(trees):
    text = read(MODULES / "rbac.bicep")
    for role in ("storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"):
        assert re.search(rf"appStorageRoles = \[[^\]]*roles\.{role}\b", text), role
    declaration = (
        r"resource appTelemetry [^{]*\{\s*"
        r"name: guid\(appInsights\.id, appPrincipalId, roles\.monitoringMetricsPublisher\)\s*"
        r"scope: appInsights\s"
    )
    assert re.search(declaration, text)
    assert "vault" not in code(MODULES / "rbac.bicep").lower()  # the vault's role lives where the vault is
    # Key Vault Secrets Officer, for the app and the operator, on the vault only.
    vault_access = read(MODULES / "keyvault-access.bicep")
    assert re.search(
        r"resource secretsOfficerAssignments [^=]*= \[\s*for principal in principals: \{\s*"
        r"name: guid\(vault\.id, principal\.principalId, roles\.keyVaultSecretsOfficer\)\s*"
        r"scope: vault\s",
        vault_access,
    )
    assert "var rotationPrincipals = hasOperator ? concat(appPrincipals, operatorPrincipals) : appPrincipals" in read(
        INFRA / "main.bicep"
    )
    assert ROLE_DEFINITIONS["keyVaultSecretsOfficer"] == "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"


def test_the_custom_roles_names_are_deployment_outputs(trees):
    roles = trees["modules/cosmos-roles.bicep"]
    suffix = trees["main.bicep"]["modules"]["cosmosRoles"]["config"]["params"]["roleNameSuffix"]
    assert suffix == "${environmentName}-${resourceToken}"
    for symbol, variable, output, expected in (
        ("rotatorRole", "rotatorRoleName", "rotatorRoleName", "Cosmos DB key rotator (${roleNameSuffix})"),
        (
            "operationStatusRole",
            "operationStatusRoleName",
            "operationStatusRoleName",
            "Cosmos DB operation status reader (${roleNameSuffix})",
        ),
    ):
        assert roles["variables"][variable]["value"] == expected
        assert body(roles["resources"][symbol]["config"])["properties"]["roleName"] == variable
        assert output in roles["outputs"]
    assert roles["outputs"]["rotatorRoleName"]["value"] == "rotatorRoleName"
    # No role, no name: an operator must not try to assign a role that was not created.
    status = roles["outputs"]["operationStatusRoleName"]["value"]["operator"]
    assert status["type"] == "conditional" and status["operands"] == {
        "condition": "grantOperationStatusRead",
        "true_value": "operationStatusRoleName",
        "false_value": "",
    }
    main = read(INFRA / "main.bicep")
    assert "output COSMOS_KEY_ROTATOR_ROLE_NAME string = cosmosRoles.outputs.rotatorRoleName" in main
    assert "output COSMOS_OPERATION_STATUS_ROLE_NAME string = cosmosRoles.outputs.operationStatusRoleName" in main


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
    # rbac.bicep: storage (app, operator) and telemetry; cosmos-access, cosmos-roles, keyvault-access: one each;
    # discovery-access: the rotator and the operation status roles.
    assert count >= 8


def _role_name(key: str) -> str:
    """role-definitions.json key -> the built-in role's name: storageBlobDataContributor -> Storage Blob Data
    Contributor."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", key[0].upper() + key[1:])


def test_the_readmes_operator_roles_are_the_ones_the_bicep_grants(trees):
    readme = read(INFRA.parent / "README.md")
    paragraph = readme.split("<!-- operator-roles:start -->", 1)[1].split("<!-- operator-roles:end -->", 1)[0]
    named = {" ".join(name.split()) for name in re.findall(r"\*([^*]+)\*", paragraph)}
    storage = re.search(r"operatorStorageRoles = \[([^\]]*)\]", read(MODULES / "rbac.bicep")).group(1)
    granted = {_role_name(key) for key in re.findall(r"roles\.(\w+)", storage)}
    granted.add(_role_name("keyVaultSecretsOfficer"))  # keyvault-access.bicep, rotationPrincipals
    assert "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', " \
           "roles.logAnalyticsDataReader)\n    principalId: operatorPrincipalId" in read(MODULES / "rbac.bicep")
    granted.add(_role_name("logAnalyticsDataReader"))  # rbac.bicep, operatorKeyUsage: `status` shows key usage
    # cosmos-roles.bicep: the two custom roles, assigned to the app and the operator alike (rotationPrincipals).
    granted |= {"Cosmos DB key rotator", "Cosmos DB operation status reader"}
    assert "var rotationPrincipals = hasOperator ? concat(appPrincipals, operatorPrincipals) : appPrincipals" in read(
        INFRA / "main.bicep")
    assert named == granted


# ---------------------------------------------------------------------------------------------------------------
# The Python worker's threads and the queue trigger's concurrency.
HOST_JSON = INFRA.parent / "host.json"


def test_the_worker_has_a_thread_for_every_queue_message_an_instance_runs_at_once(trees):
    # A queue-triggered function runs up to batchSize + newBatchThreshold messages at once per instance (docs:
    # QueuesOptions.BatchSize, Microsoft.Azure.WebJobs.Extensions.Storage.Queues), and the Python worker runs a
    # synchronous function on one of PYTHON_THREADPOOL_THREAD_COUNT threads: fewer threads would leave fetched
    # messages waiting, invisible, while their visibility timeout runs.
    queues = json.loads(read(HOST_JSON))["extensions"]["queues"]
    threads = app_settings(trees)["PYTHON_THREADPOOL_THREAD_COUNT"]
    assert threads == str(queues["batchSize"] + queues["newBatchThreshold"])
    assert "PYTHON_THREADPOOL_THREAD_COUNT" in names.HOST_SETTINGS


# ---------------------------------------------------------------------------------------------------------------
# Discovery by tag: its settings, and the option that assigns the roles at the discovery subscriptions.
SUBSCRIPTION_A = "aaaaaaaa-0000-0000-0000-000000000001"
SUBSCRIPTION_B = "bbbbbbbb-0000-0000-0000-000000000002"


def _property(operand, name) -> dict:
    """pycep's tree of `operand.name`."""
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": operand, "operand_2": name}}}


def _subscription(subscription_id=None) -> dict:
    """pycep's tree of `subscription()` or `subscription(id)`."""
    return {"function": {"type": "subscription", "parameters": {"subscription_id": subscription_id}}}


def _output(symbol: str, name: str, nested: bool = True) -> dict:
    """pycep's tree of `symbol.outputs.name` (nested) or `symbol.name`."""
    return _property(symbol, _property("outputs", name) if nested else name)


def _description(parameter: dict) -> str:
    return {d["type"]: d["argument"] for d in parameter["decorators"]}["description"]


def _function_app_setting(trees, setting: str, **parameters):
    """An app setting as main.bicep passes it to the function app, for the given parameters."""
    tree = trees["main.bicep"]
    parameter = app_settings(trees)[setting]
    assert isinstance(parameter, str) and parameter in trees["modules/functionapp.bicep"]["parameters"], setting
    return evaluate(body(tree["modules"]["functionApp"]["config"])["params"][parameter], tree, parameters)


def test_discovery_parameters_are_declared_with_their_defaults(trees):
    main = trees["main.bicep"]["parameters"]
    assert main["discoverySubscriptions"]["type"] == "array"
    assert main["discoverySubscriptions"]["default"] == []
    assert main["discoveryTag"]["type"] == "string"
    assert main["discoveryTag"]["default"] == settings.DEFAULT_DISCOVERY_TAG
    assert main["discoveryKeyVaultUri"]["type"] == "string"
    assert main["discoveryKeyVaultUri"]["default"] == ""
    # azd passes an environment value as text: the array's description says to give JSON, and from which azd.
    subscriptions = _description(main["discoverySubscriptions"])
    for words in ("DISCOVERY_SUBSCRIPTIONS", "JSON array", "azd env set", "1.23.4", "Empty: discovery off"):
        assert words in subscriptions, words
    assert "DISCOVERY_TAG" in _description(main["discoveryTag"])
    assert "DISCOVERY_KEY_VAULT_URI" in _description(main["discoveryKeyVaultUri"])


def test_discovery_settings_are_passed_to_the_app(trees):
    settings_ = app_settings(trees)
    assert settings_["DISCOVERY_SUBSCRIPTIONS"] == "discoverySubscriptions"
    assert settings_["DISCOVERY_TAG"] == "discoveryTag"
    assert settings_["DISCOVERY_KEY_VAULT_URI"] == "discoveryKeyVaultUri"
    functionapp = trees["modules/functionapp.bicep"]["parameters"]
    for parameter in ("discoverySubscriptions", "discoveryTag", "discoveryKeyVaultUri"):
        assert functionapp[parameter]["type"] == "string", parameter  # app settings are strings
    # Off by default: an empty DISCOVERY_SUBSCRIPTIONS, which the code reads as "no discovery".
    assert _function_app_setting(trees, "DISCOVERY_SUBSCRIPTIONS") == ""
    # The array becomes the comma-separated list the code reads.
    given = {"discoverySubscriptions": [SUBSCRIPTION_A, SUBSCRIPTION_B]}
    assert _function_app_setting(trees, "DISCOVERY_SUBSCRIPTIONS", **given) == f"{SUBSCRIPTION_A},{SUBSCRIPTION_B}"
    assert _function_app_setting(trees, "DISCOVERY_TAG") == settings.DEFAULT_DISCOVERY_TAG
    assert _function_app_setting(trees, "DISCOVERY_TAG", discoveryTag="team=blue") == "team=blue"
    # '' is what azd passes for an empty DISCOVERY_TAG: the default, like an unset one.
    assert _function_app_setting(trees, "DISCOVERY_TAG", discoveryTag="") == settings.DEFAULT_DISCOVERY_TAG
    assert _function_app_setting(trees, "DISCOVERY_KEY_VAULT_URI") == ""
    vault = "https://kv-fleet.vault.azure.net/"
    assert _function_app_setting(trees, "DISCOVERY_KEY_VAULT_URI", discoveryKeyVaultUri=vault) == vault


def test_parameters_file_maps_the_discovery_parameters_to_azd_environment_values(trees):
    parameters = json.loads(read(INFRA / "main.parameters.json"))["parameters"]
    declared = trees["main.bicep"]["parameters"]
    for name, placeholder in (
        ("discoverySubscriptions", "${DISCOVERY_SUBSCRIPTIONS}"),
        ("discoveryTag", "${DISCOVERY_TAG}"),
        ("discoveryKeyVaultUri", "${DISCOVERY_KEY_VAULT_URI}"),
        ("assignRotatorRoleAtDiscoveryScopes", "${ASSIGN_ROTATOR_ROLE_AT_DISCOVERY_SCOPES}"),
    ):
        # No default in the placeholder: an unset variable leaves the parameter out, so main.bicep's default
        # applies (azd: loadParameters; a bool's "true"/"false" text is converted, armParameterFileValue).
        assert parameters[name] == {"value": placeholder}, name
        assert name in declared, name


def _discovery_role_subscriptions(trees, **parameters) -> list:
    """The subscriptions main.bicep deploys discovery-access.bicep to, for the given parameters."""
    tree = trees["main.bicep"]
    module = tree["modules"]["discoveryAccess"]["config"]
    array = module["loop_type"]["detail"]["array_name"]
    return evaluate(array, tree, parameters)


def test_the_discovery_role_option_is_off_by_default(trees):
    main = trees["main.bicep"]["parameters"]
    option = main["assignRotatorRoleAtDiscoveryScopes"]
    assert option["type"] == "bool" and option["default"] is False
    # The trade-off is in the description, where an operator turning it on reads it.
    description = _description(option)
    for words in ("EVERY Cosmos DB account", "not only the tagged ones", "RBAC cannot filter by tag", "per account",
                  "More targets"):
        assert words in description, words
    # Off: no subscription-scope assignment, even with discovery subscriptions, and the roles stay assignable in
    # the account's subscription only.
    given = {"discoverySubscriptions": [SUBSCRIPTION_A, SUBSCRIPTION_B]}
    assert _discovery_role_subscriptions(trees) == []
    assert _discovery_role_subscriptions(trees, **given) == []
    roles = body(trees["main.bicep"]["modules"]["cosmosRoles"]["config"])["params"]
    assert evaluate(roles["extraAssignableSubscriptionIds"], trees["main.bicep"], given) == []


def test_the_discovery_role_option_assigns_the_roles_once_per_discovery_subscription(trees):
    on = {"assignRotatorRoleAtDiscoveryScopes": True}
    assert _discovery_role_subscriptions(trees, **on) == []  # no discovery, nothing to assign
    given = {**on, "discoverySubscriptions": [SUBSCRIPTION_A, SUBSCRIPTION_B]}
    assert _discovery_role_subscriptions(trees, **given) == [SUBSCRIPTION_A, SUBSCRIPTION_B]
    twice = {**on, "discoverySubscriptions": [SUBSCRIPTION_A, SUBSCRIPTION_B, SUBSCRIPTION_A]}
    assert _discovery_role_subscriptions(trees, **twice) == [SUBSCRIPTION_A, SUBSCRIPTION_B]
    # One subscription-scope module per subscription, at that subscription, for the same principals as the
    # account's and the vault's assignments.
    tree = trees["main.bicep"]
    module = tree["modules"]["discoveryAccess"]
    assert module["detail"]["path"] == "modules/discovery-access.bicep"
    loop = module["config"]["loop_type"]["detail"]
    config = body(module["config"])
    assert config["scope"] == _subscription(loop["item_name"])
    assert "${" + f"uniqueString({loop['item_name']})" + "}" in config["name"]  # a deployment name per subscription
    params = config["params"]
    assert params["principals"] == "rotationPrincipals"
    assert params["rotatorRoleId"] == _output("cosmosRoles", "rotatorRoleId")
    # The operation status role, when granted (the output is empty otherwise), except in the account's own
    # subscription, where cosmos-roles.bicep assigns it already under the same name.
    status = params["operationStatusRoleId"]["operator"]
    assert status["type"] == "conditional"
    assert status["operands"]["true_value"] == ""
    assert status["operands"]["false_value"] == _output("cosmosRoles", "operationStatusRoleId")
    condition = status["operands"]["condition"]
    item = loop["item_name"]
    account = {"existingCosmosAccountId": EXISTING_ACCOUNT}  # in subscription 0000
    assert evaluate(condition, tree, {**account, item: "0000"}) is True
    assert evaluate(condition, tree, {**account, item: SUBSCRIPTION_A}) is False
    # Azure's subscription ids ignore case, and so does the comparison.
    account = {"existingCosmosAccountId": EXISTING_ACCOUNT.replace("/0000/", f"/{SUBSCRIPTION_A}/")}
    assert evaluate(condition, tree, {**account, item: SUBSCRIPTION_A.upper()}) is True
    roles = trees["modules/cosmos-roles.bicep"]
    status_output = roles["outputs"]["operationStatusRoleId"]["value"]["operator"]
    assert status_output["operands"] == {
        "condition": "grantOperationStatusRead",
        "true_value": "operationStatusRoleId",
        "false_value": "",
    }
    assert roles["outputs"]["rotatorRoleId"]["value"] == _output("rotatorRole", "name", nested=False)


def test_the_roles_are_assignable_at_the_discovery_subscriptions_only_when_assigned_there(trees):
    # A custom role can be assigned only within its assignableScopes: cosmos-roles.bicep adds the same list of
    # subscriptions that discovery-access.bicep is deployed to, and nothing by default.
    main = trees["main.bicep"]
    loop = main["modules"]["discoveryAccess"]["config"]["loop_type"]["detail"]
    roles_params = body(main["modules"]["cosmosRoles"]["config"])["params"]
    assert roles_params["extraAssignableSubscriptionIds"] == loop["array_name"] == "discoveryRoleSubscriptions"
    tree = trees["modules/cosmos-roles.bicep"]
    extra = tree["variables"]["extraAssignableScopes"]["value"]
    assert extra["loop_type"]["detail"] == {"item_name": "id", "array_name": "extraAssignableSubscriptionIds"}
    assert extra["config"] == "/subscriptions/${toLower(id)}"
    this_subscription = _property(_subscription(), "id")
    scopes = tree["variables"]["assignableScopes"]["value"]["function"]
    assert scopes["type"] == "union"
    assert scopes["parameters"] == {"arg_1": [this_subscription], "arg_2": "extraAssignableScopes"}
    for symbol in ("rotatorRole", "operationStatusRole"):
        assert body(tree["resources"][symbol]["config"])["properties"]["assignableScopes"] == "assignableScopes"


def test_discovery_access_assigns_both_roles_at_its_subscription_to_each_principal(trees):
    tree = trees["modules/discovery-access.bicep"]
    assert tree["globals"]["scope"]["value"] == "subscription"
    assignments = {s: r for s, r in tree["resources"].items() if r["type"] == "Microsoft.Authorization/roleAssignments"}
    assert set(assignments) == {"rotatorAssignments", "operationStatusAssignments"}
    this_subscription_id = _property(_subscription(), "id")
    principal_id = _property("principal", "principalId")
    roles = {"rotatorAssignments": "rotatorRoleId", "operationStatusAssignments": "operationStatusRoleId"}
    for symbol, role in roles.items():
        resource = assignments[symbol]
        loop = resource["config"]["loop_type"]["detail"]
        config = body(resource["config"])
        assert "scope" not in config  # the module's subscription
        # Named guid(subscription scope, principal, role), like every other assignment.
        guid_call = config["name"]["function"]
        assert guid_call["type"] == "guid"
        assert guid_call["parameters"] == {
            "base_string": this_subscription_id,
            "extra_string_1": principal_id,
            "extra_string_2": role,
        }
        properties = config["properties"]
        assert properties["principalId"] == principal_id
        assert properties["principalType"] == _property("principal", "principalType")
        # The role as this subscription sees it: subscriptionResourceId() without a subscription argument.
        assert properties["roleDefinitionId"] == {
            "function": {
                "type": "subscription_resource_id",
                "parameters": {
                    "resource_type": "Microsoft.Authorization/roleDefinitions",
                    "resource_name_1": role,
                    "resource_name_2": None,
                    "subscription_id": None,
                },
            }
        }
        principals = evaluate(loop["array_name"], tree, {"principals": ["app", "operator"], role: "role-guid"})
        assert principals == ["app", "operator"]
    # No operation status role id (not granted, or the account's subscription): no such assignment.
    status_loop = assignments["operationStatusAssignments"]["config"]["loop_type"]["detail"]["array_name"]
    assert evaluate(status_loop, tree, {"principals": ["app"], "operationStatusRoleId": ""}) == []


# ---------------------------------------------------------------------------------------------------------------
# The in-use guard: the account's data-plane logs in the workspace, and the app's right to query them.


def test_the_account_created_here_sends_its_data_plane_requests_to_the_workspace(trees):
    diagnostics = trees["modules/cosmos.bicep"]["resources"]["dataPlaneLogs"]["config"]
    properties = diagnostics["properties"]
    assert properties["logAnalyticsDestinationType"] == "Dedicated"  # resource-specific: CDBDataPlaneRequests
    assert properties["logs"] == [{"category": "DataPlaneRequests", "enabled": True}]
    assert properties["workspaceId"] == "workspaceId"
    cosmos = body(trees["main.bicep"]["modules"]["cosmosAccount"]["config"])["params"]
    assert cosmos["workspaceId"] == {"operator": {"type": "property_accessor", "operands": {
        "operand_1": "monitoring",
        "operand_2": {"operator": {"type": "property_accessor", "operands": {"operand_1": "outputs",
                                                                             "operand_2": "workspaceId"}}}}}}


def test_the_app_queries_the_workspace_with_the_least_role_and_the_guard_reads_it(trees):
    assert ROLE_DEFINITIONS["logAnalyticsDataReader"] == "3b03c2da-16b3-4a49-8834-0f8130efdd3b"
    rbac = read(MODULES / "rbac.bicep")
    assert "resource appKeyUsage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {" in rbac
    assert "scope: workspace\n  properties: {\n    roleDefinitionId: subscriptionResourceId(" \
           "'Microsoft.Authorization/roleDefinitions', roles.logAnalyticsDataReader)\n    principalId: appPrincipalId" \
           in rbac
    settings = app_settings(trees)
    assert (settings["KEY_USAGE_WORKSPACE_ID"], settings["IN_USE_GUARD"], settings["IN_USE_WINDOW_HOURS"]) == (
        "keyUsageWorkspaceId", "inUseGuard", "inUseWindowHours")
    assert settings["LOGS_ENDPOINT"] == ""  # the code takes AZURE_CLOUD's Logs endpoint
    main = read(INFRA / "main.bicep")
    assert ("var resolvedKeyUsageWorkspaceId = !empty(keyUsageWorkspaceId) ? keyUsageWorkspaceId : "
            "(useExistingAccount ? '' : monitoring.outputs.workspaceCustomerId)") in main
    assert "output workspaceCustomerId string = workspace.properties.customerId" in read(MODULES / "monitoring.bicep")
    # The custom role gains nothing: reading logs is Log Analytics' role, not an action on the account.
    assert set(names.ARM_ACTIONS) == {"Microsoft.DocumentDB/databaseAccounts/read",
                                      "Microsoft.DocumentDB/databaseAccounts/listKeys/action",
                                      "Microsoft.DocumentDB/databaseAccounts/regenerateKey/action"}


# ---------------------------------------------------------------------------------------------------------------
# Safety net: Key Vault's expiry events to the function that rotates.


def test_the_vaults_expiry_events_reach_the_function_that_handles_them(trees):
    from cosmos_key_rotation.expiry_events import EXPIRY_EVENTS
    from cosmos_key_rotation.functions import expiry

    module = read(MODULES / "expiry-events.bicep")
    assert "resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (empty(existingTopicName))" in module
    assert "source: vault.id\n    topicType: 'Microsoft.KeyVault.vaults'" in module
    script = read(INFRA.parent / "scripts" / "subscribe-expiry-events.sh")
    handler = "secret_expiry"
    assert "def secret_expiry(event: func.EventGridEvent)" in read(INFRA.parent / "cosmos_key_rotation" / "functions"
                                                                    / "expiry.py") and expiry.bp is not None
    assert f'--endpoint "$AZURE_FUNCTION_APP_ID/functions/{handler}"' in script
    assert "--endpoint-type azurefunction" in script
    assert f"--included-event-types {' '.join(EXPIRY_EVENTS)}" in script
    outputs = trees["main.bicep"]["outputs"]
    for name in ("EXPIRY_TOPIC_NAME", "EXPIRY_TOPIC_RESOURCE_GROUP", "EXPIRY_TOPIC_SUBSCRIPTION_ID",
                 "AZURE_FUNCTION_APP_ID"):
        assert f'"${{{name}:' in script and name in outputs, name
    assert "run: ./scripts/subscribe-expiry-events.sh" in read(INFRA.parent / "azure.yaml")


# ---------------------------------------------------------------------------------------------------------------
# Entra ID in front of the HTTP API.


def test_entra_id_authentication_when_a_registration_is_named_with_the_clouds_own_authority(trees):
    module = read(MODULES / "functionapp.bicep")
    assert "resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (useEntra)" in module
    assert "var useEntra = !empty(apiClientId)" in module
    auth = trees["modules/functionapp.bicep"]["resources"]["authSettings"]["config"]
    assert auth["condition"] == "useEntra" and auth["config"]["name"] == "authsettingsV2"
    validation = auth["config"]["properties"]["globalValidation"]
    assert validation["requireAuthentication"] is True and validation["unauthenticatedClientAction"] == "Return401"
    # Event Grid's webhook keeps its own key; the host's admin API its own.
    assert validation["excludedPaths"] == ["/runtime/webhooks/eventgrid", "/admin"]
    assert "openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'" in module
    assert "'api://${apiClientId}'" in module
    assert "HTTP_AUTH: useEntra ? 'entra' : 'function-key'" in module
    assert "WEBSITE_AUTH_ENABLED" not in app_settings(trees)  # the platform's, or the header could be forged
