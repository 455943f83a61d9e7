// Checks KQL with Microsoft's Kusto language service (npm @kusto/language-service-next): syntax and
// semantics (unknown columns, functions, wrong types) against the Log Analytics AppTraces, AppRequests and
// CDBDataPlaneRequests schemas.
// Usage: node kql_check.js <package dir>  < [{"name": ..., "query": ...}, ...]
// Prints [{"name": ..., "diagnostics": [{"severity", "code", "message", "start"}]}, ...].
const path = require('path');
const fs = require('fs');

const packageDir = process.argv[2];
require(path.join(packageDir, 'bridge.min.js'));
require(path.join(packageDir, 'Kusto.Language.Bridge.min.js'));
const K = globalThis.Kusto.Language;

// Log Analytics workspace table AppTraces (Application Insights traces).
const appTraces = K.Symbols.TableSymbol.From(
  '(TenantId:string, TimeGenerated:datetime, Message:string, SeverityLevel:int, Properties:dynamic, ' +
  'Measurements:dynamic, OperationName:string, OperationId:string, ParentId:string, SyntheticSource:string, ' +
  'SessionId:string, UserId:string, UserAuthenticatedId:string, UserAccountId:string, AppVersion:string, ' +
  'AppRoleName:string, AppRoleInstance:string, ClientType:string, ClientModel:string, ClientOS:string, ' +
  'ClientIP:string, ClientCity:string, ClientStateOrProvince:string, ClientCountryOrRegion:string, ' +
  'ClientBrowser:string, ResourceGUID:string, IKey:string, SDKVersion:string, ItemCount:int, ' +
  'ReferencedItemId:string, ReferencedType:string, SourceSystem:string, Type:string, _ResourceId:string)'
).WithName('AppTraces');

// Log Analytics workspace table AppRequests (Application Insights requests: the Functions host writes one
// per function invocation). Columns from the Azure Monitor Logs reference, "AppRequests"
// (https://learn.microsoft.com/azure/azure-monitor/reference/tables/apprequests).
const appRequests = K.Symbols.TableSymbol.From(
  '(TenantId:string, TimeGenerated:datetime, Id:string, Source:string, Name:string, Url:string, ' +
  'Success:bool, ResultCode:string, DurationMs:real, Properties:dynamic, ' +
  'Measurements:dynamic, OperationName:string, OperationId:string, ParentId:string, SyntheticSource:string, ' +
  'SessionId:string, UserId:string, UserAuthenticatedId:string, UserAccountId:string, AppVersion:string, ' +
  'AppRoleName:string, AppRoleInstance:string, ClientType:string, ClientModel:string, ClientOS:string, ' +
  'ClientIP:string, ClientCity:string, ClientStateOrProvince:string, ClientCountryOrRegion:string, ' +
  'ClientBrowser:string, ResourceGUID:string, IKey:string, SDKVersion:string, ItemCount:int, ' +
  'ReferencedItemId:string, ReferencedType:string, SourceSystem:string, Type:string, _ResourceId:string, ' +
  '_SubscriptionId:string, _BilledSize:real, _IsBillable:string)'
).WithName('AppRequests');
// Log Analytics workspace table CDBDataPlaneRequests (Cosmos DB diagnostic setting DataPlaneRequests,
// resource-specific mode). Columns from the Azure Monitor Logs reference, "CDBDataPlaneRequests"
// (https://learn.microsoft.com/azure/azure-monitor/reference/tables/cdbdataplanerequests).
const cdbDataPlaneRequests = K.Symbols.TableSymbol.From(
  '(AadAppliedRoleAssignmentId:string, AadPrincipalId:string, AccountName:string, ActivityId:string, ' +
  'AuthTokenType:string, _BilledSize:real, ClientIpAddress:string, CollectionName:string, ' +
  'ConnectionMode:string, DatabaseName:string, DurationMs:real, _IsBillable:string, KeyType:string, ' +
  'OperationName:string, PartitionId:string, RegionName:string, RequestCharge:real, RequestLength:real, ' +
  'RequestResourceId:string, RequestResourceType:string, _ResourceId:string, ResourceTokenPermissionId:string, ' +
  'ResourceTokenPermissionMode:string, ResourceTokenUserRid:string, ResponseLength:real, SourceSystem:string, ' +
  'StatusCode:int, _SubscriptionId:string, TenantId:string, TimeGenerated:datetime, Type:string, ' +
  'UserAgent:string)'
).WithName('CDBDataPlaneRequests');
const database = new K.Symbols.DatabaseSymbol.ctor('workspace', [appTraces, appRequests, cdbDataPlaneRequests]);
const globals = K.GlobalState.Default.WithDatabase(database);

const queries = JSON.parse(fs.readFileSync(0, 'utf8'));
const results = queries.map(({ name, query }) => {
  const code = K.KustoCode.ParseAndAnalyze(query, globals);
  const diagnostics = code.GetDiagnostics();
  const found = [];
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    found.push({ severity: String(d.Severity), code: d.Code, message: d.Message, start: d.Start });
  }
  return { name, diagnostics: found };
});
process.stdout.write(JSON.stringify(results));
