"""The Bicep in infra/ parses and follows the project's conventions (PRODUCT.md section 8)."""

import json
import re
from pathlib import Path

from .support import INFRA, MODULES, bicep_files, body, read

MAIN = INFRA / "main.bicep"

# One module per concern (issue 3); main.bicep must call each of them.
CONCERN_MODULES = {
    "identity.bicep",
    "cosmos.bicep",
    "keyvault.bicep",
    "storage.bicep",
    "monitoring.bicep",
    "functionapp.bicep",
    "expiry-events.bicep",
    "rbac.bicep",
    "cosmos-roles.bicep",
    "cosmos-access.bicep",
    "keyvault-access.bicep",
    "discovery-access.bicep",
    "ops.bicep",
}

# Host names that differ between Azure, Azure China and Azure US Government. They must come from
# environment() or from the resources' own properties, never from the template's text.
CLOUD_SUFFIXES = re.compile(
    r"core\.windows\.net|core\.chinacloudapi\.cn|core\.usgovcloudapi\.net|chinacloudapi\.cn"
    r"|usgovcloudapi\.net|vault\.azure\.net|vault\.azure\.cn|vault\.usgovcloudapi\.net"
    r"|documents\.azure\.(com|cn|us)|management\.(azure\.com|chinacloudapi\.cn|usgovcloudapi\.net)"
    r"|login\.(microsoftonline\.com|chinacloudapi\.cn|microsoftonline\.us)|azurewebsites\.(net|us)"
    r"|chinacloudsites\.cn|applicationinsights\.azure\.(com|cn|us)|monitor\.azure\.(com|cn|us)",
    re.IGNORECASE,
)

# Every resource name main.bicep chooses can be overridden by one of these parameters.
NAME_PARAMETERS = (
    "resourceGroupName",
    "cosmosAccountName",
    "keyVaultName",
    "storageAccountName",
    "logAnalyticsName",
    "applicationInsightsName",
    "appServicePlanName",
    "functionAppName",
    "identityName",
    "actionGroupName",
)

RESOURCE_DECLARATION = re.compile(r"^resource\s+\w+\s+'([^'@]+)@([^']+)'", re.MULTILINE)


def test_every_bicep_file_parses(parsed_bicep):
    assert {Path(name).name for name in parsed_bicep} >= CONCERN_MODULES | {"main.bicep"}
    errors = {name: value["error"] for name, value in parsed_bicep.items() if "error" in value}
    assert errors == {}


def test_main_deploys_at_subscription_scope_and_creates_the_resource_group(trees):
    main = trees["main.bicep"]
    assert main["globals"]["scope"]["value"] == "subscription"
    resource_types = {resource["type"] for resource in main["resources"].values()}
    assert "Microsoft.Resources/resourceGroups" in resource_types


def test_main_calls_one_module_per_concern(trees):
    called = {Path(module["detail"]["path"]).name for module in trees["main.bicep"]["modules"].values()}
    assert called == CONCERN_MODULES
    assert {path.name for path in MODULES.glob("*.bicep")} == CONCERN_MODULES


def test_modules_are_local_files_not_registry_modules(trees):
    for name, tree in trees.items():
        for module in tree.get("modules", {}).values():
            path = module["detail"]["path"]
            assert module["type"] == "local", f"{name}: registry module {path}"
            assert not re.match(r"^(br|ts)[:/]", path), f"{name}: registry module {path}"
            assert (INFRA / Path(name).parent / path).is_file(), f"{name}: missing {path}"


def test_no_hard_coded_cloud_suffix():
    files = [*bicep_files(), *INFRA.glob("queries/*.kql"), INFRA / "workbook.json"]
    for path in files:
        for number, line in enumerate(read(path).splitlines(), start=1):
            if line.strip().startswith("//"):
                continue  # a comment may name a cloud's host; code may not
            assert not CLOUD_SUFFIXES.search(line), f"{path.relative_to(INFRA)}:{number}: {line.strip()}"


def test_cloud_specific_settings_come_from_environment():
    text = read(MODULES / "functionapp.bicep")
    assert re.search(r"^\s*AZURE_CLOUD: environment\(\)\.name$", text, re.MULTILINE)
    assert re.search(r"^\s*ARM_ENDPOINT: environment\(\)\.resourceManager$", text, re.MULTILINE)


def test_names_come_from_abbreviations_and_the_resource_token_and_can_be_overridden():
    text = read(MAIN)
    assert "var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))" in text
    abbreviations = json.loads(read(INFRA / "abbreviations.json"))
    used = set(re.findall(r"abbrs\.(\w+)", text))
    assert used and used <= set(abbreviations), used - set(abbreviations)
    for name in NAME_PARAMETERS:
        assert f"param {name} string = ''" in text, name
        assert re.search(rf"!empty\({name}\) \? {name} : '\$\{{abbrs\.\w+\}}", text), name


def test_every_taggable_resource_is_tagged_with_the_azd_environment(trees):
    assert "'azd-env-name': environmentName" in read(MAIN)
    for name, tree in trees.items():
        for symbol, resource in tree.get("resources", {}).items():
            config = body(resource["config"])
            if resource.get("existing") or "location" not in config:
                continue
            assert "tags" in config, f"{name}: resource {symbol} has a location but no tags"


def test_every_module_receives_the_tags_when_it_creates_located_resources(trees):
    for module_name in ("identity", "cosmosAccount", "keyVault", "storage", "monitoring", "functionApp", "ops"):
        params = body(trees["main.bicep"]["modules"][module_name]["config"])["params"]
        assert params.get("tags") == "tags", module_name


# Diagnostic settings have no dated GA version that takes logAnalyticsDestinationType ('Dedicated': the
# resource-specific tables the in-use guard reads); 2021-05-01-preview is the one the Cosmos DB docs ("Monitor
# Azure Cosmos DB data by using diagnostic settings") and Azure/bicep-types-az carry.
PREVIEW_VERSIONS_ALLOWED = {("Microsoft.Insights/diagnosticSettings", "2021-05-01-preview")}


def test_resources_use_dated_api_versions_not_registry_or_preview_versions():
    for path in bicep_files():
        for resource_type, version in RESOURCE_DECLARATION.findall(read(path)):
            if (resource_type, version) in PREVIEW_VERSIONS_ALLOWED:
                continue
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", version), f"{path.name}: {resource_type}@{version}"


def test_flex_consumption_function_app(trees):
    module = trees["modules/functionapp.bicep"]
    plan = module["resources"]["plan"]["config"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    app = module["resources"]["app"]["config"]
    assert app["kind"] == "functionapp,linux"
    assert app["identity"]["type"] == "UserAssigned"
    config = app["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert "linuxFxVersion" not in app["properties"]["siteConfig"]
    main_params = trees["main.bicep"]["parameters"]
    assert main_params["pythonVersion"]["default"] == "3.12"


def test_cosmos_account_keeps_the_original_script_defaults(trees):
    account = trees["modules/cosmos.bicep"]["resources"]["account"]["config"]
    assert account["kind"] == "GlobalDocumentDB"
    properties = account["properties"]
    assert properties["consistencyPolicy"]["defaultConsistencyLevel"] == "BoundedStaleness"
    assert properties["minimalTlsVersion"] == "Tls12"
    assert properties["disableKeyBasedMetadataWriteAccess"] is True
    assert properties["disableLocalAuth"] is False
    main_params = trees["main.bicep"]["parameters"]
    assert main_params["cosmosMaxIntervalInSeconds"]["default"] == 10
    assert main_params["cosmosMaxStalenessPrefix"]["default"] == 200


def test_key_vault_uses_rbac_soft_delete_and_purge_protection(trees):
    properties = trees["modules/keyvault.bicep"]["resources"]["vault"]["config"]["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True


def test_storage_refuses_shared_keys_and_monitoring_refuses_local_auth(trees):
    storage = trees["modules/storage.bicep"]["resources"]["storage"]["config"]["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    monitoring = trees["modules/monitoring.bicep"]["resources"]
    assert monitoring["appInsights"]["config"]["properties"]["DisableLocalAuth"] is True
    assert monitoring["workspace"]["config"]["properties"]["features"]["disableLocalAuth"] is True


def test_azure_yaml_deploys_the_service_the_bicep_tags():
    azure_yaml = read(INFRA.parent / "azure.yaml")
    assert re.search(r"^  path: infra$", azure_yaml, re.MULTILINE)
    service = re.search(r"^services:\n(?:  #.*\n)*  (\w+):\n((?:    .*\n)+)", azure_yaml, re.MULTILINE)
    assert service, "azure.yaml declares no service"
    assert "host: function" in service.group(2)
    assert "language: python" in service.group(2)
    assert f"var serviceName = '{service.group(1)}'" in read(MAIN)


def test_parameters_file_names_only_parameters_that_main_declares(trees):
    parameters = json.loads(read(INFRA / "main.parameters.json"))["parameters"]
    declared = trees["main.bicep"]["parameters"]
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"


# azd environment values an operator sets with `azd env set NAME value`, each mapped to its parameter. An
# unset variable leaves the parameter out, so main.bicep's default applies (Azure/azure-dev,
# cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go, loadParameters): every one of these defaults to ''.
AZD_ENVIRONMENT_PARAMETERS = {
    "existingCosmosAccountId": "${EXISTING_COSMOS_ACCOUNT_ID}",
    "existingKeyVaultId": "${EXISTING_KEY_VAULT_ID}",
    "rotationTargets": "${ROTATION_TARGETS}",
    "liveKeyKind": "${LIVE_KEY_KIND}",
    "pausedTargets": "${PAUSED_TARGETS}",
    "discoveryKeyVaultUri": "${DISCOVERY_KEY_VAULT_URI}",
    "keyUsageWorkspaceId": "${KEY_USAGE_WORKSPACE_ID}",
    "apiClientId": "${API_CLIENT_ID}",
    "inUseGuard": "${IN_USE_GUARD}",
    "alertEmail": "${ALERT_EMAIL}",
    "operatorPrincipalId": "${OPERATOR_PRINCIPAL_ID}",
}


def test_parameters_file_maps_the_operators_settings_to_azd_environment_values(trees):
    parameters = json.loads(read(INFRA / "main.parameters.json"))["parameters"]
    declared = trees["main.bicep"]["parameters"]
    for name, placeholder in AZD_ENVIRONMENT_PARAMETERS.items():
        assert parameters[name] == {"value": placeholder}, name
        assert declared[name]["type"] == "string" and declared[name]["default"] == "", name
        assert any(d["type"] == "description" for d in declared[name]["decorators"]), f"{name} has no description"
    # Every placeholder is one variable, named like the app setting or the README says.
    for name, parameter in parameters.items():
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", parameter["value"]), name


def test_outputs_show_what_an_operator_needs_after_deploying(trees):
    outputs = trees["main.bicep"]["outputs"]
    for name in (
        "KEY_VAULT_URI",
        "KEY_VAULT_NAME",
        "WORKBOOK_URL",
        "COSMOS_KEY_ROTATOR_ROLE_NAME",
        "COSMOS_OPERATION_STATUS_ROLE_NAME",
    ):
        assert outputs[name]["type"] == "string", name
