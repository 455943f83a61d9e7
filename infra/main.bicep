// Cosmos DB key rotation: everything the function app needs, in one subscription-scope deployment.
// `azd up` provisions it (azure.yaml); `az deployment sub create` works too (README, "Deploy").
// Cloud-specific endpoints and names come from environment() or from the resources themselves, so the
// same template deploys to Azure, Azure China and Azure US Government.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd); it names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Region of the resource group and of every resource except the Cosmos DB account. It must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

// ---------------------------------------------------------------------------------------------------
// Names: empty means "abbreviation + resource token".
param resourceGroupName string = ''
param cosmosAccountName string = ''
param keyVaultName string = ''
param storageAccountName string = ''
param logAnalyticsName string = ''
param applicationInsightsName string = ''
param appServicePlanName string = ''
param functionAppName string = ''
param identityName string = ''
param actionGroupName string = ''

// ---------------------------------------------------------------------------------------------------
// The Cosmos DB account.
@description('Resource id of an existing Cosmos DB account to rotate instead of creating one; it may be in another resource group or subscription. Empty to create an account.')
param existingCosmosAccountId string = ''

@description('Regions of a new account, the write region first. Empty: two regions, the location and its paired region (region-pairs.json), as the original script used China East + China North; one region if the location has no pair.')
param cosmosLocations array = []

@minValue(5)
@maxValue(86400)
@description('Bounded staleness, seconds (the original script: 10). Raised to 300 for an account in more than one region, the least Azure accepts there.')
param cosmosMaxIntervalInSeconds int = 10

@minValue(1)
@maxValue(2147483647)
@description('Bounded staleness, versions (the original script: 200). Raised to 100000 for an account in more than one region, the least Azure accepts there.')
param cosmosMaxStalenessPrefix int = 200

// ---------------------------------------------------------------------------------------------------
// The Key Vault.
@description('Resource id of an existing Key Vault (/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.KeyVault/vaults/{name}) that receives the connection strings instead of creating one; it may be in another resource group or subscription. It must use Azure RBAC authorization (enableRbacAuthorization), since the app gets Key Vault Secrets Officer on it, and the deploying account must be able to assign roles there. Empty to create a vault.')
param existingKeyVaultId string = ''

// ---------------------------------------------------------------------------------------------------
// Rotation (PRODUCT.md section 4).
@description('NCRONTAB (6 fields), UTC. Default: 03:00 on the 1st and the 15th.')
param rotationSchedule string = '0 0 3 1,15 * *'

@allowed([
  'alternate'
  'primary'
  'secondary'
])
param keyStrategy string = 'alternate'

@description('Key Vault secret for the connection string. Empty: cosmos-<account>-connection-string.')
param secretName string = ''

@description('Key Vault secret for the read-only connection string. Empty: none.')
param readonlySecretName string = ''

@description('ROTATION_TARGETS: a JSON array of targets that replaces the single target (the account and vault deployed here), or empty. Accounts and vaults it names need the app\'s roles there too (README, "Deploy"). Through azd (main.parameters.json) the value is pasted into JSON text, so escape its double quotes: azd env set ROTATION_TARGETS \'[{\\"name\\": ...}]\'.')
param rotationTargets string = ''

// azd leaves a parameter out when its environment variable is unset, and passes '' when it is set to
// empty (Azure/azure-dev, cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go, loadParameters), so ''
// has to mean "the default" here: 'none' is the explicit "no declared key".
@allowed([
  ''
  'none'
  'primary'
  'secondary'
])
@description('LIVE_KEY_KIND: the key applications use today on the single target, which its first run adopts (publishes) instead of failing with NoLiveSecret. Empty: \'primary\' when this deployment creates the Cosmos DB account and no ROTATION_TARGETS is given (a new account has no application holding a key yet), otherwise none: adopt an existing account yourself (python -m cosmos_key_rotation adopt, README). \'none\', \'primary\' or \'secondary\' override that. With ROTATION_TARGETS, give each entry its own liveKeyKind instead.')
param liveKeyKind string = ''

@description('PAUSED_TARGETS: comma-separated target names that no rotation runs for (the timer skips them, POST /api/rotations answers 409). The single target\'s name is its account name. A name that is no target is a configuration error. Empty: none paused.')
param pausedTargets string = ''

@minValue(1)
param secretValidityDays int = 60

@minValue(0)
param minRotationIntervalMinutes int = 60

@minValue(1)
param maxKeyAgeDays int = 60

param verifyNewKey bool = true

@minValue(0)
param verifyTimeoutSeconds int = 600

@minValue(1)
@maxValue(10080)
@description('How long a regeneration may run before the rotation gives up on it (REGENERATION_TIMEOUT_MINUTES); Azure documents minutes to hours on a large account.')
param regenerationTimeoutMinutes int = 360

// Request budgets, `size,per_second` token buckets (README, "Performance and scale"): Azure Resource Manager's
// per-subscription write and read buckets (docs: "Understand how Azure Resource Manager throttles requests")
// and Key Vault's secret-create limit per vault (docs: "Azure Key Vault service limits").
@description('ARM_WRITE_BUDGET: Resource Manager writes (POST actions included) per subscription, as `size,per_second`.')
param armWriteBudget string = '200,10'

@description('ARM_READ_BUDGET: Resource Manager reads per subscription, as `size,per_second`.')
param armReadBudget string = '250,25'

@description('KEY_VAULT_WRITE_BUDGET: secret writes per vault, as `size,per_second` (300 per 10 s).')
param keyVaultWriteBudget string = '300,30'

// ---------------------------------------------------------------------------------------------------
// Discovery by tag (cosmos_key_rotation/discovery.py): the accounts of these subscriptions that carry the tag
// are rotated too, next to the single target or ROTATION_TARGETS.
// An array, not a comma-separated string: azd 1.23.4 and later parse the text of an array (or object)
// parameter's environment value as JSON (Azure/azure-dev#6694, cli/azd/pkg/infra/provisioning/bicep/
// bicep_provider.go, loadParameters); an unset value leaves the parameter out, so the default [] applies.
@description('DISCOVERY_SUBSCRIPTIONS: ids of the subscriptions whose Cosmos DB accounts tagged discoveryTag are rotated too; the app setting holds them comma-separated. Empty: discovery off. Through azd (main.parameters.json) give a JSON array, not a comma-separated list: azd env set DISCOVERY_SUBSCRIPTIONS \'["<subscription id>","<subscription id>"]\' (azd 1.23.4 or later; older versions pass the text as a string, which Azure rejects for an array parameter), \'[]\' to turn discovery off. Listing and rotating need the rotator role there: per account (README, "More targets"), or assignRotatorRoleAtDiscoveryScopes.')
param discoverySubscriptions array = []

@description('DISCOVERY_TAG: `name=value`, the tag that marks an account of the discovery subscriptions for rotation. Empty: cosmos-key-rotation=enabled.')
param discoveryTag string = 'cosmos-key-rotation=enabled'

@description('DISCOVERY_KEY_VAULT_URI: the vault (https://...) that receives the connection strings of discovered accounts without a cosmos-key-rotation-vault tag. Empty: none (such an account is reported and skipped). The app needs Key Vault Secrets Officer on it, and on every vault a tag names (README, "More targets").')
param discoveryKeyVaultUri string = ''

// Least privilege against reach (modules/discovery-access.bicep says more): off, the operator assigns the
// rotator role on each discovered account (README, "More targets"); on, the roles are assigned at each
// discovery subscription's scope, which RBAC cannot narrow to the tagged accounts.
@description('Assign the custom rotator role (and the operation status role, if grantOperationStatusRead) to the app\'s identity and the operator at each discovery subscription\'s scope, and make the roles assignable there. Off by default: the identity could then list keys of and regenerate keys of EVERY Cosmos DB account in those subscriptions, not only the tagged ones (RBAC cannot filter by tag), so prefer assigning the rotator role per account (README, "More targets") unless the fleet is large. The deploying account needs Owner or User Access Administrator on those subscriptions. Turning it off later removes no assignment: delete them (az role assignment delete) before the next deployment narrows the roles\' assignable scopes again.')
param assignRotatorRoleAtDiscoveryScopes bool = false

// ---------------------------------------------------------------------------------------------------
// The in-use guard (cosmos_key_rotation/in_use_guard.py): before regenerating a key, who used it recently,
// from the accounts' data-plane logs. An account created here sends them to this deployment's workspace.
@description('KEY_USAGE_WORKSPACE_ID: the Log Analytics workspace id (its customerId, a GUID) holding the accounts\' data-plane logs (diagnostic setting DataPlaneRequests, resource-specific). Empty: this deployment\'s workspace when it creates the account, else none (the guard is off until an existing account\'s logs are sent somewhere; README, "The in-use guard"). The app can read this deployment\'s workspace; grant it Log Analytics Data Reader on any other.')
param keyUsageWorkspaceId string = ''

@allowed([
  ''
  'enforce'
  'warn'
  'off'
])
@description('IN_USE_GUARD: enforce (refuse to regenerate a key used in the window), warn (rotate and warn), off. Empty: enforce when a workspace is named.')
param inUseGuard string = ''

@description('IN_USE_WINDOW_HOURS: how far back the guard looks for uses of a key (fractions allowed).')
param inUseWindowHours string = '24'

@minValue(0)
@maxValue(86400)
@description('The client id of the API\'s Entra ID app registration (README, "Entra ID in front of the HTTP API"): App Service authentication then requires its tokens, and the routes check the callers\' app roles (HTTP_AUTH=entra). Empty: function keys (HTTP_AUTH=function-key).')
param apiClientId string = ''

@description('HEARTBEAT_SCHEDULE: when the app logs the age of every key of every target (NCRONTAB, UTC); the overdue alert reads it daily.')
param heartbeatSchedule string = '0 30 6 * * *'

@description('INCIDENT_GRACE_SECONDS: after an incident rotation replaced every key, how long applications get to re-read the secrets before the keys that were live are regenerated.')
param incidentGraceSeconds int = 300

// ---------------------------------------------------------------------------------------------------
// Safety net (modules/expiry-events.bicep): Key Vault's expiry events start a rotation.
@description('The name of the vault\'s existing Event Grid system topic, when it has one (a vault has at most one); empty: one is created. azd subscribes the function secret_expiry to it after each deployment.')
param existingVaultSystemTopicName string = ''

// ---------------------------------------------------------------------------------------------------
// The function app.
@allowed([
  '3.10'
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.12'

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// ---------------------------------------------------------------------------------------------------
// Operations.
@description('E-mail that receives the alerts; empty for none.')
param alertEmail string = ''


@minValue(30)
@maxValue(730)
@description('Log Analytics retention; the workbook\'s last-rotation and key-age views read up to 90 days back.')
param logRetentionInDays int = 90

// ---------------------------------------------------------------------------------------------------
// Access.
@description('Object id of a user, group or service principal that may run the command-line tool with the same rights as the app. Empty for none.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Grant Microsoft.DocumentDB/locations/operationsStatus/read at the Cosmos DB account\'s subscription scope, for polling a key regeneration (modules/cosmos-roles.bicep says why).')
param grantOperationStatusRead bool = true

// ---------------------------------------------------------------------------------------------------
var abbrs = loadJsonContent('abbreviations.json')
var regionPairs = loadJsonContent('region-pairs.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// azure.yaml's service name; azd deploys to the function app tagged with it.
var serviceName = 'rotation'

var names = {
  resourceGroup: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  cosmos: !empty(cosmosAccountName) ? cosmosAccountName : '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
  keyVault: !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
  storage: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
  logAnalytics: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
  applicationInsights: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.insightsComponents}${resourceToken}'
  plan: !empty(appServicePlanName) ? appServicePlanName : '${abbrs.webServerFarms}${resourceToken}'
  functionApp: !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}${resourceToken}'
  identity: !empty(identityName) ? identityName : '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
  actionGroup: !empty(actionGroupName) ? actionGroupName : '${abbrs.insightsActionGroups}${resourceToken}'
  alertPrefix: '${abbrs.insightsScheduledQueryRules}${resourceToken}-'
  expiryTopic: '${abbrs.eventGridSystemTopics}${resourceToken}'
}
var functionAppResolvedName = names.functionApp
var deploymentContainerName = 'app-package-${toLower(take(functionAppResolvedName, 32))}-${take(resourceToken, 7)}'

// The account to rotate: an existing one (/subscriptions/{s}/resourceGroups/{g}/providers/
// Microsoft.DocumentDB/databaseAccounts/{name}) or the one created here.
var useExistingAccount = !empty(existingCosmosAccountId)
// Split a placeholder when there is no id, so the indexes below are valid either way.
var existingAccountSegments = split(useExistingAccount ? existingCosmosAccountId : '/subscriptions/-/resourceGroups/-/providers/-/-/-', '/')
var cosmos = {
  subscriptionId: useExistingAccount ? existingAccountSegments[2] : subscription().subscriptionId
  resourceGroup: useExistingAccount ? existingAccountSegments[4] : names.resourceGroup
  name: useExistingAccount ? last(existingAccountSegments) : names.cosmos
}
var locationKey = toLower(replace(location, ' ', ''))
var defaultCosmosRegions = contains(regionPairs, locationKey) ? [locationKey, regionPairs[locationKey]] : [locationKey]
var cosmosRegions = !empty(cosmosLocations) ? cosmosLocations : defaultCosmosRegions

// The vault: an existing one (/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.KeyVault/vaults/
// {name}) or the one created here, handled like the account above.
var useExistingVault = !empty(existingKeyVaultId)
var existingVaultSegments = split(useExistingVault ? existingKeyVaultId : '/subscriptions/-/resourceGroups/-/providers/-/-/-', '/')
var vault = {
  subscriptionId: useExistingVault ? existingVaultSegments[2] : subscription().subscriptionId
  resourceGroup: useExistingVault ? existingVaultSegments[4] : names.resourceGroup
  name: useExistingVault ? last(existingVaultSegments) : names.keyVault
}

// ROTATION_TARGETS replaces the single target: then the COSMOS_* and secret settings stay empty, and the
// deployed account is rotated only if the list names it (KEY_STRATEGY stays the targets' default).
var useTargetList = !empty(rotationTargets)
var resolvedSecretName = !empty(secretName) ? secretName : 'cosmos-${cosmos.name}-connection-string'

// LIVE_KEY_KIND belongs to the single target (the code reads it only without ROTATION_TARGETS). A new
// account has no application holding either key, so adopting primary is safe and the first scheduled
// run publishes it; an existing account's live key is the operator's to declare.
// (Parenthesized so that pycep, which checkov and tests/infra parse with, reads it as Bicep does.)
var defaultLiveKeyKind = ((!useExistingAccount) && (!useTargetList)) ? 'primary' : ''
var resolvedLiveKeyKind = empty(liveKeyKind) ? defaultLiveKeyKind : ((liveKeyKind == 'none') ? '' : liveKeyKind)

var hasOperator = !empty(operatorPrincipalId)

// '' is what azd passes for an empty DISCOVERY_TAG (see liveKeyKind above): it means the default here too.
var resolvedDiscoveryTag = empty(discoveryTag) ? 'cosmos-key-rotation=enabled' : discoveryTag
// The subscriptions where the custom roles are assigned for discovery: none unless the option is on. Listed
// once each (union), since two assignments of one name in one deployment would race.
// The workspace the guard reads: the one named, else this deployment's when the account is created here (its
// diagnostic setting sends the data-plane requests there), else none.
var resolvedKeyUsageWorkspaceId = !empty(keyUsageWorkspaceId) ? keyUsageWorkspaceId : (useExistingAccount ? '' : monitoring.outputs.workspaceCustomerId)
var discoveryRoleSubscriptions = assignRotatorRoleAtDiscoveryScopes ? union(discoverySubscriptions, []) : []

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module cosmosAccount 'modules/cosmos.bicep' = if (!useExistingAccount) {
  name: 'cosmos'
  scope: rg
  params: {
    name: names.cosmos
    tags: tags
    locations: cosmosRegions
    maxIntervalInSeconds: cosmosMaxIntervalInSeconds
    maxStalenessPrefix: cosmosMaxStalenessPrefix
    workspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'modules/keyvault.bicep' = if (!useExistingVault) {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    planName: names.plan
    appName: functionAppResolvedName
    location: location
    tags: tags
    serviceName: serviceName
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    rotationSchedule: rotationSchedule
    // The code takes either one target (COSMOS_*) or ROTATION_TARGETS, never both.
    cosmosSubscriptionId: useTargetList ? '' : cosmos.subscriptionId
    cosmosResourceGroup: useTargetList ? '' : cosmos.resourceGroup
    cosmosAccountName: useTargetList ? '' : cosmos.name
    keyVaultUri: keyVaultAccess.outputs.uri
    secretName: useTargetList ? '' : resolvedSecretName
    readonlySecretName: useTargetList ? '' : readonlySecretName
    keyStrategy: keyStrategy
    rotationTargets: rotationTargets
    secretValidityDays: secretValidityDays
    minRotationIntervalMinutes: minRotationIntervalMinutes
    maxKeyAgeDays: maxKeyAgeDays
    verifyNewKey: verifyNewKey
    verifyTimeoutSeconds: verifyTimeoutSeconds
    regenerationTimeoutMinutes: regenerationTimeoutMinutes
    armWriteBudget: armWriteBudget
    armReadBudget: armReadBudget
    keyVaultWriteBudget: keyVaultWriteBudget
    liveKeyKind: useTargetList ? '' : resolvedLiveKeyKind
    pausedTargets: pausedTargets
    discoverySubscriptions: join(discoverySubscriptions, ',')
    discoveryTag: resolvedDiscoveryTag
    discoveryKeyVaultUri: discoveryKeyVaultUri
    keyUsageWorkspaceId: resolvedKeyUsageWorkspaceId
    inUseGuard: inUseGuard
    inUseWindowHours: inUseWindowHours
    incidentGraceSeconds: incidentGraceSeconds
    heartbeatSchedule: heartbeatSchedule
    apiClientId: apiClientId
  }
  // The host starts as soon as the site exists: let it find its storage, vault and telemetry roles.
  dependsOn: [
    rbac
    keyVaultAccess
  ]
}

// ---------------------------------------------------------------------------------------------------
// Least privilege: each role on the one resource it is for.
var appPrincipals = [
  {
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
  }
]
var operatorPrincipals = [
  {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
]
// The app and the operator get the same rights on the account and on the vault.
var rotationPrincipals = hasOperator ? concat(appPrincipals, operatorPrincipals) : appPrincipals

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    workspaceName: monitoring.outputs.workspaceName
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module cosmosRoles 'modules/cosmos-roles.bicep' = {
  name: 'cosmos-roles-${resourceToken}'
  scope: subscription(cosmos.subscriptionId)
  params: {
    roleNameSuffix: '${environmentName}-${resourceToken}'
    principals: rotationPrincipals
    grantOperationStatusRead: grantOperationStatusRead
    extraAssignableSubscriptionIds: discoveryRoleSubscriptions
  }
}

module cosmosAccess 'modules/cosmos-access.bicep' = {
  name: 'cosmos-access-${resourceToken}'
  scope: resourceGroup(cosmos.subscriptionId, cosmos.resourceGroup)
  params: {
    accountName: cosmos.name
    principals: rotationPrincipals
    rotatorRoleDefinitionId: cosmosRoles.outputs.rotatorRoleDefinitionId
  }
  dependsOn: [
    cosmosAccount
  ]
}

// Off by default (assignRotatorRoleAtDiscoveryScopes): the custom roles at each discovery subscription's scope,
// for the same principals. The operation status role is assigned in the account's subscription by
// cosmos-roles.bicep already, so not a second time here.
module discoveryAccess 'modules/discovery-access.bicep' = [
  for subscriptionId in discoveryRoleSubscriptions: {
    name: 'discovery-access-${resourceToken}-${uniqueString(subscriptionId)}'
    scope: subscription(subscriptionId)
    params: {
      principals: rotationPrincipals
      rotatorRoleId: cosmosRoles.outputs.rotatorRoleId
      operationStatusRoleId: (toLower(subscriptionId) == toLower(cosmos.subscriptionId)) ? '' : cosmosRoles.outputs.operationStatusRoleId
    }
  }
]

// Key Vault Secrets Officer on the vault only, in the vault's resource group (another subscription's
// when the vault is an existing one). It also reads the vault's own URI, so KEY_VAULT_URI is right in
// every cloud and for a vault created here or elsewhere.
module keyVaultAccess 'modules/keyvault-access.bicep' = {
  name: 'keyvault-access-${resourceToken}'
  scope: resourceGroup(vault.subscriptionId, vault.resourceGroup)
  params: {
    vaultName: vault.name
    principals: rotationPrincipals
  }
  dependsOn: [
    keyVault
  ]
}

module expiryEvents 'modules/expiry-events.bicep' = {
  name: 'expiry-events-${resourceToken}'
  scope: resourceGroup(vault.subscriptionId, vault.resourceGroup)
  params: {
    vaultName: vault.name
    topicName: names.expiryTopic
    existingTopicName: existingVaultSystemTopicName
    tags: tags
  }
  dependsOn: [
    keyVault
  ]
}

// ---------------------------------------------------------------------------------------------------
module ops 'modules/ops.bicep' = {
  name: 'ops'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    actionGroupName: names.actionGroup
    alertNamePrefix: names.alertPrefix
    alertEmail: alertEmail
  }
}

// ---------------------------------------------------------------------------------------------------
// Outputs become azd environment values.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CLOUD string = environment().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output FUNCTION_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output COSMOS_SUBSCRIPTION_ID string = cosmos.subscriptionId
output COSMOS_RESOURCE_GROUP string = cosmos.resourceGroup
output COSMOS_ACCOUNT_NAME string = cosmos.name
output COSMOS_LOCATIONS array = useExistingAccount ? [] : cosmosRegions
output KEY_VAULT_URI string = keyVaultAccess.outputs.uri
output KEY_VAULT_NAME string = vault.name
output SECRET_NAME string = resolvedSecretName
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.workspaceId
// The workspace the in-use guard reads (empty: the guard is off), by its customerId.
output KEY_USAGE_WORKSPACE_ID string = resolvedKeyUsageWorkspaceId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
// What scripts/subscribe-expiry-events.sh (azd postdeploy) needs to subscribe the function to the topic.
output EXPIRY_TOPIC_NAME string = expiryEvents.outputs.name
output EXPIRY_TOPIC_RESOURCE_GROUP string = expiryEvents.outputs.resourceGroup
output EXPIRY_TOPIC_SUBSCRIPTION_ID string = expiryEvents.outputs.subscriptionId
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output WORKBOOK_ID string = ops.outputs.workbookId
output WORKBOOK_URL string = ops.outputs.workbookUrl
// The custom roles' names carry the environment and the resource token (custom role names are unique
// per tenant): assign them elsewhere with az role assignment create --role "<name>" (README, "More targets").
output COSMOS_KEY_ROTATOR_ROLE_NAME string = cosmosRoles.outputs.rotatorRoleName
output COSMOS_OPERATION_STATUS_ROLE_NAME string = cosmosRoles.outputs.operationStatusRoleName
