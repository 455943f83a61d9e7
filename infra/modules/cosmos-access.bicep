// Assigns the custom key-rotator role (cosmos-roles.bicep) on the Cosmos DB account only, never on its
// resource group or subscription. Deployed in the account's resource group, which may be another
// subscription's when rotating an existing account.

param accountName string
@description('[{ principalId, principalType }]')
param principals array
param rotatorRoleDefinitionId string

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: accountName
}

resource rotatorAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(account.id, principal.principalId, rotatorRoleDefinitionId)
    scope: account
    properties: {
      roleDefinitionId: rotatorRoleDefinitionId
      principalId: principal.principalId
      principalType: principal.principalType
    }
  }
]
