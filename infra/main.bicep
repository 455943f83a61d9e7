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

@description('ROTATION_TARGETS: a JSON array of targets that replaces the single target (the account and vault deployed here), or empty. Accounts and vaults it names need the app\'s roles there too (README, "Deploy").')
param rotationTargets string = ''

@minValue(1)
param secretValidityDays int = 60

@minValue(0)
param minRotationIntervalMinutes int = 60

@minValue(1)
param maxKeyAgeDays int = 60

param verifyNewKey bool = true

@minValue(0)
param verifyTimeoutSeconds int = 600

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

@minValue(2)
@description('Alert when a target has had no successful rotation for this many days: twice the schedule\'s longest gap (17 days for the default schedule).')
param staleRotationLookbackDays int = 34

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

// ROTATION_TARGETS replaces the single target: then the COSMOS_* and secret settings stay empty, and the
// deployed account is rotated only if the list names it (KEY_STRATEGY stays the targets' default).
var useTargetList = !empty(rotationTargets)
var resolvedSecretName = !empty(secretName) ? secretName : 'cosmos-${cosmos.name}-connection-string'

var hasOperator = !empty(operatorPrincipalId)

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
  }
}

module keyVault 'modules/keyvault.bicep' = {
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
    keyVaultUri: keyVault.outputs.uri
    secretName: useTargetList ? '' : resolvedSecretName
    readonlySecretName: useTargetList ? '' : readonlySecretName
    keyStrategy: keyStrategy
    rotationTargets: rotationTargets
    secretValidityDays: secretValidityDays
    minRotationIntervalMinutes: minRotationIntervalMinutes
    maxKeyAgeDays: maxKeyAgeDays
    verifyNewKey: verifyNewKey
    verifyTimeoutSeconds: verifyTimeoutSeconds
  }
  // The host starts as soon as the site exists: let it find its storage, vault and telemetry roles.
  dependsOn: [
    rbac
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
var cosmosPrincipals = hasOperator ? concat(appPrincipals, operatorPrincipals) : appPrincipals

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
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
    principals: cosmosPrincipals
    grantOperationStatusRead: grantOperationStatusRead
  }
}

module cosmosAccess 'modules/cosmos-access.bicep' = {
  name: 'cosmos-access-${resourceToken}'
  scope: resourceGroup(cosmos.subscriptionId, cosmos.resourceGroup)
  params: {
    accountName: cosmos.name
    principals: cosmosPrincipals
    rotatorRoleDefinitionId: cosmosRoles.outputs.rotatorRoleDefinitionId
  }
  dependsOn: [
    cosmosAccount
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
    staleRotationLookbackDays: staleRotationLookbackDays
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
output KEY_VAULT_URI string = keyVault.outputs.uri
output SECRET_NAME string = resolvedSecretName
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.workspaceId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output WORKBOOK_ID string = ops.outputs.workbookId
