"""Who is asking, over HTTP (HTTP_AUTH): a function key, or an Entra ID caller with app roles.

Under `entra`, App Service authentication ("Easy Auth") validates the caller's token in front of the app and
passes its claims in the `X-MS-CLIENT-PRINCIPAL` header: base64 of `{"auth_typ", "name_typ", "role_typ",
"claims": [{"typ", "val"}]}` (docs: "Work with user identities in Azure App Service authentication"). The
header is only trustworthy when the platform put it there, so the app refuses to serve unless the platform
reports authentication enabled (`WEBSITE_AUTH_ENABLED`), and it accepts only the `aad` provider.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

REQUEST_ROLE = "Rotations.Request"
READ_ROLE = "Rotations.Read"
PRINCIPAL_HEADER = "x-ms-client-principal"
_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_OBJECT_ID_CLAIMS = ("oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
_NAME_CLAIMS = ("preferred_username", "upn", "name", "appid", "azp")


class Denied(Exception):
    """The caller may not do this: `status` 401 (who?), 403 (not allowed) or 500 (the app is misconfigured)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Caller:
    object_id: str
    name: str
    roles: frozenset[str]

    @property
    def requested_by(self) -> str:
        """For records and events: the object id and a readable name; never a token."""
        return f"{self.object_id} ({self.name})" if self.name and self.name != self.object_id else self.object_id


def principal(header: str) -> Caller:
    """The caller in an `X-MS-CLIENT-PRINCIPAL` header; Denied 401 when it is not one."""
    try:
        document = json.loads(base64.b64decode(header, validate=False).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Denied(401, "InvalidPrincipal", "the X-MS-CLIENT-PRINCIPAL header is not base64 JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
        raise Denied(401, "InvalidPrincipal", "the X-MS-CLIENT-PRINCIPAL header carries no claims")
    if str(document.get("auth_typ", "")).lower() != "aad":
        raise Denied(401, "InvalidPrincipal", f"identity provider {str(document.get('auth_typ'))[:20]!r} is not "
                     "accepted; only Entra ID (aad)")
    claims: dict[str, list[str]] = {}
    for claim in document["claims"]:
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str):
            claims.setdefault(claim["typ"], []).append(claim["val"])
    role_claims = (*_ROLE_CLAIMS, str(document.get("role_typ") or "roles"))
    roles = frozenset(value for typ in role_claims for value in claims.get(typ, []))
    object_id = next((claims[typ][0] for typ in _OBJECT_ID_CLAIMS if typ in claims), "")
    if not object_id:
        raise Denied(401, "InvalidPrincipal", "the caller's claims carry no object id (oid)")
    name = next((claims[typ][0] for typ in _NAME_CLAIMS if typ in claims), "")
    return Caller(object_id, name[:200], roles)


def token_name(token: str) -> str | None:
    """The signed-in identity's name in an access token (a JWT's claims, read, not verified: for the audit
    trail only), or None when the token is not a JWT or names nobody."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    name = next((claims[key] for key in ("upn", "unique_name", "preferred_username", "appid")
                 if isinstance(claims.get(key), str)), None)
    return name[:200] if name else None


def cli_caller(get_token: Callable[[], str]) -> str:
    """`cli:<who>` for the CLI's requests: the signed-in identity (`az login`, a managed identity) when its
    token names it, else the operating-system user."""
    try:
        name = token_name(get_token())
    except Exception:  # no credential at all: the rotation itself will say so
        name = None
    return f"cli:{name or getpass.getuser()}"


def authorize(mode: str, auth_enabled: bool, headers: Mapping[str, str], allowed: frozenset[str]) -> str:
    """The `requestedBy` of an allowed request; Denied otherwise. Under `function-key` the host has already
    checked the key."""
    if mode != "entra":
        return "function key"
    if not auth_enabled:
        raise Denied(500, "ConfigurationError", "HTTP_AUTH is entra but App Service authentication is not enabled "
                     "(WEBSITE_AUTH_ENABLED): the principal header could be forged, so no request is served; "
                     "deploy with apiClientId, or set HTTP_AUTH=function-key")
    lowered = {name.lower(): value for name, value in headers.items()}
    header = lowered.get(PRINCIPAL_HEADER)
    if not header:
        raise Denied(401, "Unauthenticated", "no authenticated caller (X-MS-CLIENT-PRINCIPAL missing): send an "
                     "Entra ID token for this API")
    caller = principal(header)
    if not caller.roles & allowed:
        raise Denied(403, "MissingRole", f"the caller {caller.requested_by} lacks the app role "
                     f"{' or '.join(sorted(allowed))}")
    return caller.requested_by
