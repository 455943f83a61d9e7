// What the ops team sees: a workbook over the rotation events (PRODUCT.md section 5) and the alert rules
// that read them, sending mail through one action group.
// The events are Python log records exported by the app: Application Insights `traces`, which is the
// workspace table AppTraces, with the structured properties as custom dimensions in `Properties`.

param location string
param tags object
param workspaceId string
param actionGroupName string
param alertNamePrefix string
@description('E-mail for the alerts; empty for none (the alerts still show in Azure Monitor).')
param alertEmail string
@description('Alert when a target has had no successful rotation for this many days.')
param staleRotationLookbackDays int

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

// Any rotation that failed for good (RotationFailed not marked "retrying") or was abandoned after the
// host's last attempt (RotationAbandoned). One alert per target, event and error code.
resource rotationFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}rotation-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Cosmos DB key rotation failed'
    description: 'A key rotation failed (RotationFailed with an outcome other than retrying) or was abandoned (RotationAbandoned). The old key stays live; see the workbook for the error code.'
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
    }
  }
}

// No successful rotation within staleRotationLookbackDays (default 34: twice the longest gap of the
// default schedule, 03:00 UTC on the 1st and the 15th, i.e. one missed or failed run is tolerated).
// A log search alert reads at most two days of data (longer ago() ranges and overrideQueryTimeRange are
// cut to 48 hours), so the rule cannot look 34 days back. Instead it runs daily over the last two days
// and uses the key generation times that every final rotation event carries (see
// queries/stale-rotation.kql). It fires on the evaluation after a run that leaves a target overdue.
resource rotationOverdueAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}rotation-overdue'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Cosmos DB key rotation overdue'
    description: 'A target had no successful rotation for more than ${staleRotationLookbackDays} days: the newest of its master keys is older than that.'
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
          query: replace(loadTextContent('../queries/stale-rotation.kql'), '{lookbackDays}', string(staleRotationLookbackDays))
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

output actionGroupId string = actionGroup.id
output workbookId string = workbook.id
