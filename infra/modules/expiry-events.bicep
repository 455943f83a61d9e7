// Safety net: the vault's Event Grid system topic, which carries Key Vault's SecretNearExpiry and
// SecretExpired events (docs: "Azure Key Vault as Event Grid source"). Deployed in the vault's resource
// group, like keyvault-access.bicep. A vault has at most one system topic: give the name of the one it
// already has (existingTopicName) to reuse it.
//
// The subscription that sends those two event types to the function secret_expiry is not created here: Event
// Grid validates an Azure Function destination when the subscription is created, and the function exists
// only once the code is deployed, after the provisioning. azd creates it after each deployment (azure.yaml,
// hooks.postdeploy: scripts/subscribe-expiry-events.sh), with endpoint type azurefunction: Event Grid then
// calls the function with its own system key, so no key passes through the template or the script.

@description('Name of the vault, in the resource group this module is deployed to.')
param vaultName string
@description('Name of the system topic to create.')
param topicName string
@description('Name of the vault\'s existing system topic, to reuse instead of creating one; empty to create.')
param existingTopicName string
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (empty(existingTopicName)) {
  name: topicName
  location: vault.location
  tags: tags
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

output name string = empty(existingTopicName) ? topicName : existingTopicName
output resourceGroup string = resourceGroup().name
output subscriptionId string = subscription().subscriptionId
