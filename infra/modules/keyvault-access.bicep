// Assigns Key Vault Secrets Officer on the vault only, never on its resource group or subscription: the
// app reads the live secret's tags and publishes new versions; the operator (optional) runs the same
// rotations from the command line. Deployed in the vault's resource group, which may be another
// subscription's when the vault is an existing one (main.bicep, existingKeyVaultId), like
// cosmos-access.bicep for the account. The vault must use Azure RBAC authorization
// (properties.enableRbacAuthorization, Microsoft.KeyVault/vaults 2023-07-01): under access policies a role
// assignment grants no data-plane access (Key Vault docs, "Provide access to Key Vault keys, certificates,
// and secrets with Azure role-based access control").

@description('Name of the vault, in the resource group this module is deployed to.')
param vaultName string
@description('[{ principalId, principalType }]')
param principals array

var roles = loadJsonContent('../role-definitions.json')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

// Named guid(vault id, principal, role) as before this module existed (rbac.bicep held them), so a
// redeployment over an older one updates the same assignments instead of failing with RoleAssignmentExists.
resource secretsOfficerAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(vault.id, principal.principalId, roles.keyVaultSecretsOfficer)
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
      principalId: principal.principalId
      principalType: principal.principalType
    }
  }
]

output id string = vault.id
output name string = vault.name
// The vault's own URI (https://<name>.vault.azure.net/ in Azure, vault.azure.cn in Azure China,
// vault.usgovcloudapi.net in US Government): never built from the name.
output uri string = vault.properties.vaultUri
