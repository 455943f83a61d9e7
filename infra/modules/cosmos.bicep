// The Cosmos DB account whose keys the app rotates, with the original script's settings: a
// GlobalDocumentDB (NoSQL) account in two regions with bounded-staleness consistency.

param name string
param tags object
@description('Regions, the write region first.')
@minLength(1)
param locations array
@description('Bounded staleness: the most seconds a read may lag the writes.')
param maxIntervalInSeconds int
@description('Bounded staleness: the most versions a read may lag the writes.')
param maxStalenessPrefix int
@description('Resource id of the Log Analytics workspace that receives the data-plane requests (the in-use guard reads who used which key there).')
param workspaceId string

// Azure accepts the original script's 10 s / 200 only for a single-region account: an account in more
// than one region needs at least 300 s and 100,000 versions, so raise them to that floor.
var multiRegion = length(locations) > 1
var stalenessSeconds = multiRegion ? max(maxIntervalInSeconds, 300) : maxIntervalInSeconds
var stalenessPrefix = multiRegion ? max(maxStalenessPrefix, 100000) : maxStalenessPrefix

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  // checkov:skip=CKV_AZURE_140: Local (key) authentication must stay enabled: rotating and publishing the account keys is what this product does.
  // checkov:skip=CKV_AZURE_99: The applications that read the published connection string reach the account over its public endpoint; restrict it with IP rules or private endpoints per application, outside this product.
  // checkov:skip=CKV_AZURE_101: Same reason as CKV_AZURE_99: key-based clients and the rotation's own data-plane verification use the public endpoint.
  name: name
  location: locations[0]
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'BoundedStaleness'
      maxIntervalInSeconds: stalenessSeconds
      maxStalenessPrefix: stalenessPrefix
    }
    locations: [
      for (region, i) in locations: {
        locationName: region
        failoverPriority: i
        isZoneRedundant: false
      }
    ]
    enableAutomaticFailover: multiRegion
    enableMultipleWriteLocations: false
    minimalTlsVersion: 'Tls12'
    // Keys may read and write data but not change the account's metadata (databases, containers, throughput).
    disableKeyBasedMetadataWriteAccess: true
    disableLocalAuth: false
    publicNetworkAccess: 'Enabled'
  }
}

// Every data-plane request with the key that signed it (CDBDataPlaneRequests: KeyType, AuthTokenType, client
// IP, user agent), in resource-specific tables ('Dedicated'), which the Cosmos DB docs recommend ("Monitor
// Azure Cosmos DB data by using diagnostic settings"). The in-use guard and the workbook read it.
resource dataPlaneLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'key-usage'
  scope: account
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'DataPlaneRequests'
        enabled: true
      }
    ]
  }
}

output id string = account.id
output name string = account.name
output documentEndpoint string = account.properties.documentEndpoint
