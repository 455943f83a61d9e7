"""The Azure clouds the product runs in, and the endpoints each one uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cloud:
    name: str
    resource_manager: str
    authority_host: str
    storage_suffix: str
    key_vault_suffix: str
    logs: str  # the Azure Monitor Logs query API, also its token audience (azure-monitor-query)

    def arm_scope(self, arm_endpoint: str | None = None) -> str:
        """The token scope for Resource Manager: its audience is the endpoint itself."""
        return _audience(arm_endpoint or self.resource_manager) + "/.default"


    @property
    def logs_scope(self) -> str:
        """The Logs API's token scope: the cloud's own, also when LOGS_ENDPOINT points elsewhere (the emulator)."""
        return _audience(self.logs) + "/.default"


def _audience(endpoint: str) -> str:
    return endpoint.rstrip("/")


CLOUDS: dict[str, Cloud] = {
    "AzureCloud": Cloud(
        name="AzureCloud",
        resource_manager="https://management.azure.com/",
        authority_host="login.microsoftonline.com",
        storage_suffix="core.windows.net",
        key_vault_suffix="vault.azure.net",
        logs="https://api.loganalytics.io",
    ),
    "AzureChinaCloud": Cloud(
        name="AzureChinaCloud",
        resource_manager="https://management.chinacloudapi.cn/",
        authority_host="login.chinacloudapi.cn",
        storage_suffix="core.chinacloudapi.cn",
        key_vault_suffix="vault.azure.cn",
        logs="https://api.loganalytics.azure.cn",
    ),
    "AzureUSGovernment": Cloud(
        name="AzureUSGovernment",
        resource_manager="https://management.usgovcloudapi.net/",
        authority_host="login.microsoftonline.us",
        storage_suffix="core.usgovcloudapi.net",
        key_vault_suffix="vault.usgovcloudapi.net",
        logs="https://api.loganalytics.us",
    ),
}
