"""Event Grid: Key Vault's SecretNearExpiry and SecretExpired events start a rotation (expiry_events.py).

The subscription on the vault's system topic sends only those two event types here (README, "Safety
nets"); anything else is ignored. A failure to enqueue raises, so Event Grid delivers the event again."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def secret_expiry(event: func.EventGridEvent) -> None:
    from ..expiry_events import handle  # on the first event, not at every cold start

    data = event.get_json()
    handle(event.id, event.event_type, data if isinstance(data, dict) else {})
