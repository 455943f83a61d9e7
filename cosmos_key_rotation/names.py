"""Names shared by the code, the function bindings and the Bicep: one place, so they cannot drift."""

QUEUE_NAME = "key-rotation-requests"
POISON_QUEUE_NAME = "key-rotation-requests-poison"
TABLE_NAME = "keyrotations"
LEASE_CONTAINER = "key-rotation-leases"
STORAGE_CONNECTION = "AzureWebJobsStorage"

# Every app setting the product reads (PRODUCT.md §4).
PRODUCT_SETTINGS = (
    "ROTATION_SCHEDULE",
    "COSMOS_SUBSCRIPTION_ID",
    "COSMOS_RESOURCE_GROUP",
    "COSMOS_ACCOUNT_NAME",
    "KEY_VAULT_URI",
    "SECRET_NAME",
    "READONLY_SECRET_NAME",
    "KEY_STRATEGY",
    "ROTATION_TARGETS",
    "AZURE_CLOUD",
    "ARM_ENDPOINT",
    "AZURE_CLIENT_ID",
    "SECRET_VALIDITY_DAYS",
    "MIN_ROTATION_INTERVAL_MINUTES",
    "MAX_KEY_AGE_DAYS",
    "VERIFY_NEW_KEY",
    "VERIFY_TIMEOUT_SECONDS",
    "LIVE_KEY_KIND",
    "PAUSED_TARGETS",
    "REGENERATION_TIMEOUT_MINUTES",
    "ARM_WRITE_BUDGET",
    "ARM_READ_BUDGET",
    "KEY_VAULT_WRITE_BUDGET",
    "DISCOVERY_SUBSCRIPTIONS",
    "DISCOVERY_TAG",
    "DISCOVERY_KEY_VAULT_URI",
    "KEY_USAGE_WORKSPACE_ID",
    "IN_USE_GUARD",
    "IN_USE_WINDOW_HOURS",
    "LOGS_ENDPOINT",
    "INCIDENT_GRACE_SECONDS",
    "HEARTBEAT_SCHEDULE",
    "HTTP_AUTH",
)

# Settings the Functions host reads, not the product code; the Bicep sets them too.
HOST_SETTINGS = (
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    # The host builds global-cloud addresses from accountName alone; in Azure China and US Government it
    # needs the service URIs. The product reads them too when set.
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    # The Python worker's threads for synchronous functions: as many as host.json lets queue messages run at
    # once per instance (batchSize + newBatchThreshold), so a rotation waiting for Azure never queues another.
    "PYTHON_THREADPOOL_THREAD_COUNT",
    # App Service authentication reports itself on (the platform sets it; never the Bicep): under
    # HTTP_AUTH=entra the app serves only then, since the principal header could otherwise be forged.
    "WEBSITE_AUTH_ENABLED",
    # Operators pause the timer with it (the host reads it; `status` shows it); never set by the Bicep.
    "AzureWebJobs.scheduled_rotation.Disabled",
    "AzureWebJobs__scheduled_rotation__Disabled",
    "AzureWebJobs_scheduled_rotation_Disabled",
)

# The Resource Manager actions the code performs on a Cosmos DB account (accounts.py).
ARM_ACTIONS = (
    "Microsoft.DocumentDB/databaseAccounts/read",
    "Microsoft.DocumentDB/databaseAccounts/listKeys/action",
    "Microsoft.DocumentDB/databaseAccounts/regenerateKey/action",
)

# Every event the product logs (PRODUCT.md §5).
EVENT_NAMES = (
    "RotationScheduled",
    "RotationRequested",
    "RotationStarted",
    "KeyRegenerated",
    "KeyVerified",
    "SecretPublished",
    "RotationSucceeded",
    "RotationSkipped",
    "RotationFailed",
    "RotationAbandoned",
    "ScheduleFailed",
    "AccountAdopted",
    "RotationRolledBack",
    "LiveSecretExpired",
    "RotationWaiting",
    "TargetsDiscovered",
    "KeyInUse",
    "KeyUsageUnknown",
    "OldVersionsDisabled",
    "OldVersionsNotDisabled",
    "KeysRetiring",
    "KeyRetired",
    "RotationHeartbeat",
)
