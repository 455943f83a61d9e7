"""The emulator's admin API, served under ``/_emulator/`` on the Resource Manager port.

No authentication: the emulator is a loopback development tool. JSON in and out;
errors are ``{"error": {"code", "message"}}``. ``admin.AdminClient`` is its client.

  GET    /_emulator/health                    {"status": "ok"}
  POST   /_emulator/accounts                  create an account (and its data-plane endpoint), with tags
  GET    /_emulator/accounts                  the accounts, as Resource Manager shows them
  PATCH  /_emulator/accounts/{name}           replace an account's tags
  POST   /_emulator/diagnostics               {"account", "workspaceId"}: an account's diagnostic setting
                                              (its data-plane requests logged to the workspace; null: none)
  POST   /_emulator/vaults                    create a vault on its own port
  GET    /_emulator/vaults                    [{"name", "uri"}]
  POST   /_emulator/faults                    add a rule (object) or rules (array)
  GET    /_emulator/faults                    {"faults": [...]}
  DELETE /_emulator/faults                    remove every rule
  GET    /_emulator/config                    the configuration
  POST   /_emulator/config                    change some of it
  GET    /_emulator/state                     accounts, vaults and their history, no secrets
  GET    /_emulator/issued                    every key, token and secret value ever issued
  GET    /_emulator/metrics                   requests per service and operation, throttling, connections
  POST   /_emulator/metrics/reset             the same, and zero the counts (buckets keep their tokens)
  POST   /_emulator/reset                     back to an empty emulator (default vault kept, counts zeroed,
                                              buckets full)

Never throttled, never counted in the metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .faults import FaultRegistry, FaultRuleError
from .http import BadRequestBody, Request, Response
from .state import EmulatorState, StateError

_STATE_ERRORS = {
    "bad_request": (400, "BadRequest"), "conflict": (409, "Conflict"),
    "not_found": (404, "NotFound"), "busy": (409, "Conflict"),
}


class Control(Protocol):
    """What the admin API needs from the emulator."""

    state: EmulatorState
    faults: FaultRegistry

    def create_account(self, subscription_id: str, resource_group: str, name: str,
                       locations: list[str] | None = None, keys_generated_at: str | None = None,
                       tags: dict[str, str] | None = None) -> dict[str, Any]: ...

    def accounts(self) -> list[dict[str, Any]]: ...

    def set_account_tags(self, name: str, tags: dict[str, str], subscription_id: str | None = None,
                         resource_group: str | None = None) -> dict[str, Any]: ...

    def metrics(self, reset: bool = False) -> dict[str, Any]: ...

    def set_diagnostics(self, name: str, workspace_id: str | None) -> dict[str, Any]: ...

    def create_vault(self, name: str) -> dict[str, str]: ...

    def vaults(self) -> list[dict[str, str]]: ...

    def reset(self) -> None: ...


@dataclass
class AccountRequest(Request):
    """A request to ``/_emulator/accounts/{name}``, with the name taken from its path."""

    account_name: str = ""


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}})


def _string(payload: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise StateError("bad_request", f"'{name}' is required and must be a non-empty string.")
    return value


def _locations(payload: dict[str, Any]) -> list[str] | None:
    value = payload.get("locations")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise StateError("bad_request", "'locations' must be a non-empty array of region names.")
    return value


class ControlApi:
    """Dispatches ``/_emulator/*`` requests to the emulator."""

    def __init__(self, control: Control) -> None:
        self._control = control
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "health"): lambda r: Response(200, {"status": "ok"}),
            ("POST", "accounts"): self._create_account,
            ("GET", "accounts"): lambda r: Response(200, {"accounts": self._control.accounts()}),
            ("PATCH", "accounts/{name}"): self._set_account_tags,
            ("POST", "diagnostics"): self._set_diagnostics,
            ("POST", "vaults"): self._create_vault,
            ("GET", "vaults"): lambda r: Response(200, {"vaults": self._control.vaults()}),
            ("POST", "faults"): self._add_faults,
            ("GET", "faults"): lambda r: Response(200, {"faults": self._control.faults.list()}),
            ("DELETE", "faults"): self._clear_faults,
            ("GET", "config"): lambda r: Response(200, self._control.state.config.to_json()),
            ("POST", "config"): self._configure,
            ("GET", "state"): lambda r: Response(200, self._control.state.snapshot()),
            ("GET", "issued"): lambda r: Response(200, self._control.state.issued_json()),
            ("GET", "metrics"): lambda r: Response(200, self._control.metrics()),
            ("POST", "metrics/reset"): lambda r: Response(200, self._control.metrics(reset=True)),
            ("POST", "reset"): self._reset,
        }

    def __call__(self, request: Request) -> Response:
        resource = request.path.strip("/").split("/", 1)[-1].lower()
        account_name = None
        if resource.startswith("accounts/") and resource.count("/") == 1:
            account_name, resource = resource.split("/", 1)[1], "accounts/{name}"
        handler = self._routes.get((request.method, resource))
        if handler is None:
            known = any(name == resource for _, name in self._routes)
            return _error(405 if known else 404, "MethodNotAllowed" if known else "NotFound",
                          f"No admin operation {request.method} /_emulator/{resource}.")
        if account_name is not None:
            request = AccountRequest(request.method, request.target, request.headers, request.body, request.client_ip,
                                     account_name)
        try:
            return handler(request)
        except (BadRequestBody, FaultRuleError) as exc:
            return _error(400, "BadRequest", str(exc))
        except StateError as exc:
            status, code = _STATE_ERRORS.get(exc.kind, (400, "BadRequest"))
            return _error(status, code, exc.message)

    def _create_account(self, request: Request) -> Response:
        payload = request.json_object()
        account = self._control.create_account(
            subscription_id=_string(payload, "subscriptionId") or "",
            resource_group=_string(payload, "resourceGroup") or "",
            name=_string(payload, "name") or "",
            locations=_locations(payload),
            keys_generated_at=_string(payload, "keysGeneratedAt", required=False),
            tags=payload.get("tags"),
        )
        return Response(201, account)

    def _set_account_tags(self, request: Request) -> Response:
        assert isinstance(request, AccountRequest)
        payload = request.json_object()
        if "tags" not in payload:
            raise StateError("bad_request", "The body must be {\"tags\": {...}} (the account's new tags, all of them).")
        account = self._control.set_account_tags(
            request.account_name, payload["tags"],
            subscription_id=_string(payload, "subscriptionId", required=False),
            resource_group=_string(payload, "resourceGroup", required=False),
        )
        return Response(200, account)

    def _set_diagnostics(self, request: Request) -> Response:
        payload = request.json_object()
        workspace = _string(payload, "workspaceId", required=False)
        return Response(200, self._control.set_diagnostics(_string(payload, "account") or "", workspace))

    def _create_vault(self, request: Request) -> Response:
        payload = request.json_object()
        return Response(201, self._control.create_vault(_string(payload, "name") or ""))

    def _add_faults(self, request: Request) -> Response:
        rules = self._control.faults.add(request.json())
        return Response(201, {"faults": [rule.to_json() for rule in rules]})

    def _clear_faults(self, request: Request) -> Response:
        self._control.faults.clear()
        return Response(200, {"faults": []})

    def _configure(self, request: Request) -> Response:
        return Response(200, self._control.state.configure(request.json_object()))

    def _reset(self, request: Request) -> Response:
        self._control.reset()
        return Response(200, {"status": "reset"})
