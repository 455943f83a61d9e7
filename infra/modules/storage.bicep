// The function app's storage account: the Functions host's own state, the deployment package, and what
// the product keeps there (a lease blob per Cosmos DB account, the rotation records, the request
// queue). Shared-key access is off: everything uses Entra ID.

param name string
param location string
param tags object
@description('Blob container that holds the app package (Flex Consumption deployment storage).')
param deploymentContainerName string

// These names are the product's (cosmos_key_rotation/names.py); tests/infra checks that they match.
var leaseContainerName = 'key-rotation-leases'
var queueNames = [
  'key-rotation-requests'
  'key-rotation-requests-poison'
]
var tableName = 'keyrotations'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: The Flex Consumption app runs without a virtual network here, so the host reaches its storage over the public endpoint; shared keys are off and every request needs Entra ID.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35; anonymous blob access is off.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // Geo-redundant like the Cosmos DB account: the rotation records and leases survive a regional outage.
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource leaseContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: leaseContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource table 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: tableName
}

output id string = storage.id
output name string = storage.name
// The endpoints come from the account itself, so they carry the right suffix in every cloud.
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
