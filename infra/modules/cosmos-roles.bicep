// Custom roles for the Cosmos DB account's subscription. Built-in roles do not fit: DocumentDB Account
// Contributor can do anything to the account; Cosmos DB Operator cannot list or regenerate keys.
targetScope = 'subscription'

@description('Makes the role names unique in the tenant (custom role names must be).')
param roleNameSuffix string
@description('Who may poll regenerations: [{ principalId, principalType }].')
param principals array
@description('Grant the subscription-scope read that polling a key regeneration may need (see below).')
param grantOperationStatusRead bool
@description('Ids of other subscriptions where the two roles must be assignable too: the discovery subscriptions when main.bicep assigns the roles there (assignRotatorRoleAtDiscoveryScopes). Empty: this subscription only.')
param extraAssignableSubscriptionIds array

// Exactly the Resource Manager actions the code performs on an account (cosmos_key_rotation/names.py
// ARM_ACTIONS; tests/infra checks they match): read the account (documentEndpoint, keysMetadata),
// list its keys (the connection string is built from a key and the endpoint), regenerate a key.
var rotatorActions = [
  'Microsoft.DocumentDB/databaseAccounts/read'
  'Microsoft.DocumentDB/databaseAccounts/listKeys/action'
  'Microsoft.DocumentDB/databaseAccounts/regenerateKey/action'
]

// regenerateKey is a long-running operation. Its Azure-AsyncOperation URL is not under the account but
// at subscription scope: /subscriptions/{id}/providers/Microsoft.DocumentDB/locations/{region}/
// operationsStatus/{operationId}, so no role on the account covers polling it. Resource Manager
// usually signs that URL and lets the caller poll it without a role check, but that is not promised in
// every cloud, and a 403 there leaves a regenerated key unpublished until the next attempt. So the
// identity also gets this one read, at subscription scope, in a role of its own. It reveals the status
// of Cosmos DB operations only: no key, no data, no account settings.
var operationStatusActions = [
  'Microsoft.DocumentDB/locations/operationsStatus/read'
]

// A custom role can be assigned only at its assignableScopes and below; creating or updating it needs
// Microsoft.Authorization/roleDefinitions/write on every one of them (docs: "Azure custom roles", "Who can
// create, delete, update, or view a custom role"; "Troubleshoot Azure RBAC", "Unable to create or update a
// custom role"). This subscription always; each discovery subscription only when main.bicep assigns the roles
// there (discovery-access.bicep), so that by default the roles stay assignable in one subscription.
// Lower-cased and deduplicated (union), so that listing this subscription again adds no second scope.
var extraAssignableScopes = [for id in extraAssignableSubscriptionIds: '/subscriptions/${toLower(id)}']
var assignableScopes = union([subscription().id], extraAssignableScopes)

// Custom role names are unique in the tenant, hence the suffix (the environment and the resource token).
// main.bicep outputs them, so an operator can assign the roles elsewhere by name.
var rotatorRoleName = 'Cosmos DB key rotator (${roleNameSuffix})'
var operationStatusRoleName = 'Cosmos DB operation status reader (${roleNameSuffix})'

resource rotatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'cosmos-db-key-rotator', roleNameSuffix)
  properties: {
    roleName: rotatorRoleName
    description: 'Read a Cosmos DB account, list its keys and regenerate one. Assigned on single accounts, or on discovery subscriptions when that option is on.'
    type: 'CustomRole'
    permissions: [
      {
        actions: rotatorActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource operationStatusRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (grantOperationStatusRead) {
  name: guid(subscription().id, 'cosmos-db-operation-status-reader', roleNameSuffix)
  properties: {
    roleName: operationStatusRoleName
    description: 'Read the status of Cosmos DB long-running operations (polling a key regeneration).'
    type: 'CustomRole'
    permissions: [
      {
        actions: operationStatusActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

var operationStatusRoleId = guid(subscription().id, 'cosmos-db-operation-status-reader', roleNameSuffix)

resource operationStatusAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in (grantOperationStatusRead ? principals : []): {
    name: guid(subscription().id, principal.principalId, operationStatusRoleId)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', operationStatusRoleId)
      principalId: principal.principalId
      principalType: principal.principalType
    }
    dependsOn: [
      operationStatusRole
    ]
  }
]

output rotatorRoleDefinitionId string = rotatorRole.id
@description('The rotator role definition\'s name (a GUID): discovery-access.bicep assigns it in other subscriptions, under their own ids.')
output rotatorRoleId string = rotatorRole.name
@description('The operation status role definition\'s name (a GUID); empty when grantOperationStatusRead is false.')
output operationStatusRoleId string = grantOperationStatusRead ? operationStatusRoleId : ''
output rotatorRoleName string = rotatorRoleName
@description('Empty when grantOperationStatusRead is false (no such role is created).')
output operationStatusRoleName string = grantOperationStatusRead ? operationStatusRoleName : ''
