// Role assignments in the app's resource group, each on the one resource it is for.
//   app identity: the storage data roles the Functions host needs (blob for its state, leases and the
//     deployment package; queue for the queue trigger and the request queue; table for the rotation
//     records), Monitoring Metrics Publisher on Application Insights (telemetry with Entra ID), Log
//     Analytics Data Reader on the workspace (the in-use guard's query of the data-plane logs: the built-in
//     role with the fewest rights that allows a Logs query, workspaces/query/read and tables/data/read;
//     Log Analytics Reader and Monitoring Reader add */read on every resource in scope).
//   operator (optional): what the command-line tool needs to run the same rotations: blob (the
//     per-account lease) and table (the records), and the same Log Analytics Data Reader (`status` shows
//     who used each key). Not the host's Blob Data Owner.
// The Cosmos DB roles are in cosmos-roles.bicep and cosmos-access.bicep; Key Vault Secrets Officer (app
// and operator) is in keyvault-access.bicep, deployed where the vault is (it may be an existing one).

param storageAccountName string
param applicationInsightsName string
param workspaceName string
param appPrincipalId string
@description('Object id of a user, group or service principal that runs the CLI; empty for none.')
param operatorPrincipalId string
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string

var roles = loadJsonContent('../role-definitions.json')
var hasOperator = !empty(operatorPrincipalId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

var appStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

var operatorStorageRoles = [
  roles.storageBlobDataContributor
  roles.storageTableDataContributor
]

resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appStorageRoles: {
    name: guid(storage.id, appPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appKeyUsage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appPrincipalId, roles.logAnalyticsDataReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.logAnalyticsDataReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorKeyUsage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOperator) {
  name: guid(workspace.id, operatorPrincipalId, roles.logAnalyticsDataReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.logAnalyticsDataReader)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

resource operatorStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in (hasOperator ? operatorStorageRoles : []): {
    name: guid(storage.id, operatorPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: operatorPrincipalId
      principalType: operatorPrincipalType
    }
  }
]
