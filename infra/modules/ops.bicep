// What the ops team sees: a workbook over the rotation events (PRODUCT.md section 5) and the alert rules
// that read them, sending mail through one action group.
// The events are Python log records exported by the app: Application Insights `traces`, which is the
// workspace table AppTraces, with the structured properties as custom dimensions in `Properties`.
// One rule needs none of them: function-failed reads the host's own record of each execution (AppRequests).
// Alert rules: Microsoft.Insights/scheduledQueryRules 2023-12-01 (REST spec azure-rest-api-specs,
// specification/monitor/resource-manager/Microsoft.Insights/stable/2023-12-01/scheduledQueryRule_API.json;
// criteria.allOf[].dimensions and actions.customProperties).

param location string
param tags object
param workspaceId string
param actionGroupName string
param alertNamePrefix string
@description('E-mail for the alerts; empty for none (the alerts still show in Azure Monitor).')
param alertEmail string

var emailReceivers = [
  {
    name: 'ops-email'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'keyrotation'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : emailReceivers
  }
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'cosmos-key-rotation-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Cosmos DB key rotation'
    category: 'workbook'
    sourceId: workspaceId
    version: 'Notebook/1.0'
    serializedData: replace(loadTextContent('../workbook.json'), '__WORKSPACE_RESOURCE_ID__', workspaceId)
  }
}

// The workbook in the portal of this cloud: environment().portal is https://portal.azure.com,
// https://portal.azure.cn or https://portal.azure.us (Bicep docs, "Deployment functions", environment()),
// followed by the portal's resource link: #resource + the resource id + the resource's view, "workbook"
// for a workbook resource. Azure Monitor docs ("Manage Azure Workbooks", Share a workbook) say the portal
// shares a saved workbook as such a URL but do not spell its format; it is the portal's general resource
// deep link, not checked against a live portal here. Without a tenant (#@<tenant>/resource...) the portal
// opens it in the user's current directory.
// It carries no parameter values: the portal documents no way to pass workbook parameters in the link to
// a saved workbook resource (parameters are set from inside a workbook: links, tabs, global parameters).
// The alert names the target and the rotation id instead (dimensions), and the workbook's optional Target
// and RotationId parameters take them.
var workbookUrl = '${environment().portal}/#resource${workbook.id}/workbook'

// Any rotation that failed for good (RotationFailed not marked "retrying") or was abandoned after the
// host's last attempt (RotationAbandoned). One alert per target, rotation, event and error code; the
// alert's custom properties link the workbook (with the common alert schema they are in the payload's
// customProperties; Azure Monitor docs, "Common alert schema").
resource rotationFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}rotation-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Cosmos DB key rotation failed'
    description: 'A key rotation failed (RotationFailed with an outcome other than retrying), was abandoned (RotationAbandoned), or the timer could not enqueue (ScheduleFailed). The old key stays live. The alert names the target and the rotationId: open the workbook (custom property "workbook") and set its Target and RotationId filters, or GET /api/rotations/{rotationId}.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/rotation-failed.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'event'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'target'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'rotationId'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'errorCode'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
      customProperties: {
        workbook: workbookUrl
      }
    }
  }
}

// A key older than MAX_KEY_AGE_DAYS, of any target, read-only keys included; or no heartbeat for two days
// (the app is down). A log search alert reads at most two days of data (longer ago() ranges and
// overrideQueryTimeRange are cut to 48 hours): it runs daily over the last two days and reads the daily
// RotationHeartbeat events (see queries/stale-rotation.kql).
resource rotationOverdueAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}rotation-overdue'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Cosmos DB key rotation overdue'
    description: 'A key of a target is older than MAX_KEY_AGE_DAYS (read-only keys included), or the app logged no heartbeat for two days.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'P1D'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/stale-rotation.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'target'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// A failed execution of the timer or of the queue worker, whatever the product logged (see
// queries/function-failed.kql): a broken setting fails every run before any rotation event exists.
// The window is an hour because a record's TimeGenerated is the start of the execution, which may have run
// for the whole functionTimeout (host.json, 30 minutes); the query keeps only the records that arrived since
// the last evaluation, so one failure sends one mail. One alert per function.
resource functionFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}function-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Cosmos DB key rotation function failed'
    description: 'An execution of scheduled_rotation (the timer) or rotation_worker (the queue worker) failed without a rotation event that another alert covers: typically invalid app settings (ConfigurationError), which stop every run before anything is logged. Open the invocation with that OperationId in the function app (Monitor, Invocations): a ConfigurationError names each invalid setting.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/function-failed.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'functionName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
output workbookId string = workbook.id
output workbookUrl string = workbookUrl
