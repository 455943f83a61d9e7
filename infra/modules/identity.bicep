// The function app's user-assigned managed identity. User-assigned rather than system-assigned so that
// its principal exists before the app does: every role assignment, the identity-based host storage
// settings and the deployment container's authentication can name it in the same deployment.

param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
