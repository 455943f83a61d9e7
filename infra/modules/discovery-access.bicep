// Discovery's reach (main.bicep, assignRotatorRoleAtDiscoveryScopes; off by default): the custom roles of
// cosmos-roles.bicep, assigned at the scope of ONE discovery subscription. main.bicep deploys this module
// once per subscription (scope: subscription(id)).
//
// Why subscription scope: discovery lists the accounts of the subscription
// (GET /subscriptions/{id}/providers/Microsoft.DocumentDB/databaseAccounts, docs: "Database Accounts - List",
// Cosmos DB resource provider REST API), which needs Microsoft.DocumentDB/databaseAccounts/read there, and it
// then rotates whichever tagged accounts it finds, which needs the rotator role's actions on each of them.
//
// The trade-off: an assignment at subscription scope is inherited by every Cosmos DB account in the
// subscription, so the identity can list the keys of and regenerate the keys of EVERY account there, not only
// the tagged ones. Azure RBAC cannot narrow it by tag: role assignment conditions (Azure ABAC) can be added
// only to roles with Blob or Queue Storage data actions, never to control-plane actions such as listKeys or
// regenerateKey (docs: "What is Azure attribute-based access control (Azure ABAC)?", "Where can conditions
// be added?"). Prefer assigning the rotator role on each account (README, "More targets") unless the fleet
// is too large for that.
//
// The role definitions live in the Cosmos DB account's subscription; a custom role can be assigned only at
// the scopes in its assignableScopes, so cosmos-roles.bicep adds each discovery subscription to them when
// this option is on (docs: "Azure custom roles", AssignableScopes). A custom role is one object of the
// directory that every subscription in its assignable scopes sees under its own id, so the assignment names
// it with subscriptionResourceId() in THIS subscription (docs: "Assign Azure roles using Azure Resource
// Manager templates").
targetScope = 'subscription'

@description('Who gets the roles: [{ principalId, principalType }] (the app\'s identity, and the operator if given).')
param principals array
@description('The rotator role definition\'s name (its GUID), created by cosmos-roles.bicep.')
param rotatorRoleId string
@description('The operation status role definition\'s name (its GUID), or empty for no such assignment here (the role is not granted, or cosmos-roles.bicep already assigns it in this subscription).')
param operationStatusRoleId string

resource rotatorAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(subscription().id, principal.principalId, rotatorRoleId)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rotatorRoleId)
      principalId: principal.principalId
      principalType: principal.principalType
    }
  }
]

// Polling a regeneration of an account in this subscription reads
// /subscriptions/{this}/providers/Microsoft.DocumentDB/locations/{region}/operationsStatus/{id}
// (cosmos-roles.bicep says why it is a role of its own).
resource operationStatusAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in (empty(operationStatusRoleId) ? [] : principals): {
    name: guid(subscription().id, principal.principalId, operationStatusRoleId)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', operationStatusRoleId)
      principalId: principal.principalId
      principalType: principal.principalType
    }
  }
]
