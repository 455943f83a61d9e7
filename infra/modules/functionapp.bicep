// The Flex Consumption function app (Python) and its plan. It runs as the user-assigned identity for
// everything: host storage, the deployment package, telemetry and the product's own Azure calls.
// No key, connection string or token is an app setting.

param planName string
param appName string
param location string
param tags object
@description('azd deploys the code to the site tagged with this service name (azure.yaml).')
param serviceName string
param pythonVersion string
param maximumInstanceCount int
param instanceMemoryMB int

param identityId string
param identityClientId string

param storageAccountName string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param deploymentContainerName string

param applicationInsightsConnectionString string

// The product's settings (PRODUCT.md section 4), already resolved by main.bicep.
param rotationSchedule string
param cosmosSubscriptionId string
param cosmosResourceGroup string
param cosmosAccountName string
param keyVaultUri string
param secretName string
param readonlySecretName string
param keyStrategy string
param rotationTargets string
param secretValidityDays int
param minRotationIntervalMinutes int
param maxKeyAgeDays int
param verifyNewKey bool
param verifyTimeoutSeconds int
param regenerationTimeoutMinutes int
param armWriteBudget string
param armReadBudget string
param keyVaultWriteBudget string
@description('The single target\'s declared live key (primary, secondary) or empty.')
param liveKeyKind string
@description('Comma-separated names of the targets that no rotation runs for, or empty.')
param pausedTargets string
@description('Comma-separated ids of the subscriptions searched for tagged accounts, or empty (discovery off).')
param discoverySubscriptions string
@description('The discovery tag, `name=value`.')
param discoveryTag string
@description('The vault for discovered accounts without a vault tag, or empty.')
param discoveryKeyVaultUri string
@description('The Log Analytics workspace id (customerId) holding the accounts\' data-plane logs, or empty (no in-use guard).')
param keyUsageWorkspaceId string
@description('The in-use guard: enforce, warn, off, or empty (enforce when a workspace is named).')
param inUseGuard string
@description('How far back the in-use guard looks, in hours.')
param inUseWindowHours string
@description('An incident rotation\'s wait for applications to re-read before the keys that were live are regenerated, in seconds.')
param incidentGraceSeconds int
@description('When the heartbeat with every key\'s age is logged (NCRONTAB, UTC).')
param heartbeatSchedule string
@description('The client id of the API\'s Entra ID app registration; empty: the HTTP routes take a function key.')
param apiClientId string

var useEntra = !empty(apiClientId)

// Every app setting, in one place: tests/infra compares these names with cosmos_key_rotation/names.py.
// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENTSHARE and WEBSITE_TIME_ZONE (functionAppConfig replaces
// them), so none appears here. An empty string means "not configured" to the product.
var appSettings = {
  // Host storage, by identity. From accountName alone the host builds the global cloud's endpoints,
  // wrong in Azure China and Azure US Government; the service URIs come from the account itself.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__blobServiceUri: blobEndpoint
  AzureWebJobsStorage__queueServiceUri: queueEndpoint
  AzureWebJobsStorage__tableServiceUri: tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId

  // Telemetry with Entra ID (local auth is off on Application Insights). The Python worker exports the
  // product's log records with their custom dimensions; the host's telemetryMode stays classic, since
  // OpenTelemetry mode does not support timer and queue triggers.
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'

  // The Python worker runs synchronous functions on this many threads (docs: "Improve throughput performance
  // of Python apps in Azure Functions"); host.json lets batchSize 16 + newBatchThreshold 8 queue messages run
  // at once per instance, most of them waiting for Azure.
  PYTHON_THREADPOOL_THREAD_COUNT: '24'

  // The product.
  ROTATION_SCHEDULE: rotationSchedule
  // entra: App Service authentication in front, app roles checked by the routes (cosmos_key_rotation/caller.py).
  HTTP_AUTH: useEntra ? 'entra' : 'function-key'
  HEARTBEAT_SCHEDULE: heartbeatSchedule
  COSMOS_SUBSCRIPTION_ID: cosmosSubscriptionId
  COSMOS_RESOURCE_GROUP: cosmosResourceGroup
  COSMOS_ACCOUNT_NAME: cosmosAccountName
  KEY_VAULT_URI: keyVaultUri
  SECRET_NAME: secretName
  READONLY_SECRET_NAME: readonlySecretName
  KEY_STRATEGY: keyStrategy
  ROTATION_TARGETS: rotationTargets
  AZURE_CLOUD: environment().name
  ARM_ENDPOINT: environment().resourceManager
  AZURE_CLIENT_ID: identityClientId
  SECRET_VALIDITY_DAYS: string(secretValidityDays)
  MIN_ROTATION_INTERVAL_MINUTES: string(minRotationIntervalMinutes)
  MAX_KEY_AGE_DAYS: string(maxKeyAgeDays)
  VERIFY_NEW_KEY: verifyNewKey ? 'true' : 'false'
  VERIFY_TIMEOUT_SECONDS: string(verifyTimeoutSeconds)
  REGENERATION_TIMEOUT_MINUTES: string(regenerationTimeoutMinutes)
  ARM_WRITE_BUDGET: armWriteBudget
  ARM_READ_BUDGET: armReadBudget
  KEY_VAULT_WRITE_BUDGET: keyVaultWriteBudget
  LIVE_KEY_KIND: liveKeyKind
  PAUSED_TARGETS: pausedTargets
  DISCOVERY_SUBSCRIPTIONS: discoverySubscriptions
  DISCOVERY_TAG: discoveryTag
  DISCOVERY_KEY_VAULT_URI: discoveryKeyVaultUri
  KEY_USAGE_WORKSPACE_ID: keyUsageWorkspaceId
  IN_USE_GUARD: inUseGuard
  IN_USE_WINDOW_HOURS: inUseWindowHours
  INCIDENT_GRACE_SECONDS: string(incidentGraceSeconds)
  // Empty: the Logs API of AZURE_CLOUD (api.loganalytics.io, .azure.cn, .us); set only to aim elsewhere.
  LOGS_ENDPOINT: ''
  // Not here on purpose: AzureWebJobs.scheduled_rotation.Disabled (and its two underscore spellings), which
  // operators set to pause the timer. This list replaces the site's settings on every deployment (a PUT
  // of the site; Azure/azure-quickstart-templates#8495, Azure/azure-cli#11718), so a redeployment clears an
  // operator's pause: set it again afterwards, or pause targets with PAUSED_TARGETS.
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: A zone-redundant Flex Consumption plan keeps at least two always-ready instances billed around the clock; rotations run twice a month, and the queue trigger's retries and poison queue already carry a rotation across an outage.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Operators call the HTTP API (POST /api/rotations, GET /api/targets) from their own networks; there is no virtual network here, and every call needs a function key or an Entra ID token.
  // checkov:skip=CKV_AZURE_17: The HTTP API authenticates callers with function keys (auth level function, PRODUCT.md section 3); requiring client certificates would break that interface.
  // checkov:skip=CKV_AZURE_212: numberOfWorkers does not apply to Flex Consumption, which scales instances per trigger.
  // checkov:skip=CKV_AZURE_213: App Service health check does not apply to Flex Consumption, and the app has no health endpoint: its work arrives by timer and queue.
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        for setting in items(appSettings): {
          name: setting.key
          value: setting.value
        }
      ]
    }
  }
}

// Entra ID in front of the HTTP routes (App Service authentication v2), when an app registration is named:
// every request must carry a token for the registration (401 otherwise), issued by the cloud's own
// authority (environment(): Azure China and US Government included); the app then checks the caller's app
// roles from the X-MS-CLIENT-PRINCIPAL header the platform injects. Excluded from authentication:
// /runtime/webhooks/eventgrid, where Event Grid delivers Key Vault's expiry events (it authenticates with
// the function's own system key, checked by the host), and /admin, the host's own API (keyed by the host).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (useEntra) {
  // checkov:skip=CKV_AZURE_13: this resource IS the site's App Service authentication (authsettingsV2); checkov's check reads this child resource as a site and finds no auth settings in it.
  // checkov:skip=CKV_AZURE_63: this is the site's authsettingsV2 configuration, which checkov's App Service checks read as if it were the site itself; HTTP logging is a site setting, not an authentication one.
  // checkov:skip=CKV_AZURE_65: this is the site's authsettingsV2 configuration, which checkov's App Service checks read as if it were the site itself; detailed error messages are a site setting.
  // checkov:skip=CKV_AZURE_66: this is the site's authsettingsV2 configuration, which checkov's App Service checks read as if it were the site itself; failed request tracing is a site setting.
  // checkov:skip=CKV_AZURE_80: this is the site's authsettingsV2 configuration, which checkov's App Service checks read as if it were the site itself; the app runs Python, not .NET.
  // checkov:skip=CKV_AZURE_88: this is the site's authsettingsV2 configuration, which checkov's App Service checks read as if it were the site itself; Azure Files does not apply to Flex Consumption.
  // checkov:skip=CKV_AZURE_222: this is the site's authsettingsV2 configuration, which checkov's App Service checks read as if it were the site itself; public network access is the site's, skipped there with its reason.
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/runtime/webhooks/eventgrid'
        '/admin'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: apiClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${apiClientId}'
            apiClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

// azd and the Functions tools deploy with Entra ID; publishing with basic credentials is off.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
