"""The in-use guard's decision: may this rotation regenerate that key, given who used it recently?

A pure function of what was read (the key usage, the plan, the request), so it reads and tests alone;
rotation.py reads the usage and acts on the verdict. The rules (IN_USE_GUARD):
- the key regenerated is the live one (a fixed strategy): applications are meant to use it, so never a
  refusal; its clients are reported, at warning level, as the ones that lose their key;
- anyone used the key in the window: `enforce` refuses (KeyStillInUse), `warn` reports and rotates;
  `force` rotates all the same and says so;
- the workspace saw no request of the account at all: the guard cannot tell (KeyUsageUnknown), a refusal
  under `enforce`, a warning under `warn` or with `force`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .key_usage import Client, KeyUsage


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    code: str | None  # KeyStillInUse or KeyUsageUnknown; None when nothing is worth saying
    message: str
    clients: tuple[Client, ...] = ()

    @property
    def event(self) -> str:
        return "KeyInUse" if self.code == "KeyStillInUse" else "KeyUsageUnknown"


def judge(usage: KeyUsage, mode: str, account: str, kind: str, regenerates_live: bool, forced: bool,
          forced_by: str = "the request says force") -> Verdict:
    clients = tuple(usage.clients_of(kind))
    window = window_text(usage.window_hours)
    if clients:
        named = "; ".join(c.describe() for c in clients)
        said = f"{kind} key of {account} used by {len(clients)} client(s) in the last {window}: {named}"
        if regenerates_live:
            why = (f"the {kind} key is the live one (a fixed strategy), so they lose it now unless they re-read "
                   "the secret")
        elif forced or mode == "warn":
            why = "rotating anyway: " + (forced_by if forced else "IN_USE_GUARD=warn")
        else:
            return Verdict(False, code="KeyStillInUse", message=f"{said}; nothing was regenerated", clients=clients)
        return Verdict(True, code="KeyStillInUse", message=f"{said}; {why}", clients=clients)
    if usage.seen_requests == 0 and not regenerates_live:
        said = (f"the workspace holds no data-plane request of {account} in the last {window}: no diagnostic "
                "setting sends DataPlaneRequests there, or nothing used the account")
        if forced or mode == "warn":
            why = forced_by if forced else "IN_USE_GUARD=warn"
            return Verdict(True, code="KeyUsageUnknown", message=f"{said}; rotating anyway: {why}")
        return Verdict(False, code="KeyUsageUnknown", message=f"{said}; nothing was regenerated")
    return Verdict(True, code=None, message=f"no client used the {kind} key of {account} in the last {window}")


def window_text(hours: float) -> str:
    """24 h, 30 min, 6 s: the window as an operator set it."""
    if hours >= 1:
        return f"{hours:g} h"
    if hours * 60 >= 1:
        return f"{hours * 60:.3g} min"
    return f"{hours * 3600:.3g} s"
