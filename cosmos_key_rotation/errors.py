"""The product's exception: a stable error code from error_codes.py and a message an operator can act on."""

from __future__ import annotations

from .error_codes import CODES
from .redaction import redact


class RotationError(Exception):
    """A rotation step failed. `code` is one of error_codes.CODES (dashboards group by it); whether a later
    attempt can succeed follows from the code, so one code is never transient here and permanent there."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"{code!r} is not a product error code (error_codes.py)")
        self.code = code
        self.message = redact(message)
        super().__init__(self.message)

    @property
    def transient(self) -> bool:
        return CODES[self.code].transient


class LeaseBusy(RotationError):
    """Another rotation of the same account holds the lease, or waits for Azure (its marker)."""

    def __init__(self, account: str, why: str | None = None) -> None:
        super().__init__("RotationInProgress", why or f"another rotation of account {account} is running")
