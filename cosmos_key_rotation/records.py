"""Rotation records in Table storage (table `keyrotations`), read by the HTTP status routes and the CLI.

Two kinds of row: one per rotation (PartitionKey `rotation`, RowKey the rotation id), and one per target
(PartitionKey `target`, RowKey the target name) that keeps its latest rotation, for `GET /api/targets`.
"""

from __future__ import annotations

from typing import Any

from .error_table import from_sdk
from .names import TABLE_NAME
from .times import now_text

STATUSES = ("queued", "running", "succeeded", "failed", "skipped")  # running: also while waiting for Azure
FINAL_STATUSES = ("succeeded", "failed", "skipped")
# Written before each regenerateKey request so that a redelivery finishes that regeneration: they describe
# work in progress, and a finished rotation's answer leaves them out (its outcome fields say what happened).
IN_PROGRESS_FIELDS = ("phase", "regeneratingKeyKind", "regenerationRequestedAt", "keyGeneratedBefore",
                      "graceUntil", "retireGeneratedBefore")

# The fields a rotation record may hold, in the order the HTTP API shows them.
FIELDS = (
    "id", "target", "operation", "status", "trigger", "requestedBy", "requestedKeyKind", "force", "keyKind",
    "previousKeyKind", "secretName", "secretVersion", "readonlyKeyKind", "readonlySecretVersion", "reason", "errorCode",
    "errorMessage", "attempt", "requestedAt", "startedAt", "finishedAt", "durationMs",
    "phase", "regeneratingKeyKind", "regenerationRequestedAt", "keyGeneratedBefore",
    # An incident rotation (scope all-keys): where it stands (replacing, grace, retiring, done), until when
    # applications get to re-read, the key kinds it regenerated last and each one's generationTime before.
    "scope", "incidentPhase", "graceUntil", "retireGeneratedBefore", "retiredKeyKinds",
)


class Records:
    def __init__(self, table_service: Any) -> None:
        self._service = table_service
        self._table = table_service.get_table_client(TABLE_NAME)
        self._ready = False

    def _client(self) -> Any:
        if not self._ready:
            try:
                self._service.create_table_if_not_exists(TABLE_NAME)
            except Exception as exc:
                raise from_sdk(exc, "storage", f"create table {TABLE_NAME}") from None
            self._ready = True
        return self._table

    def save(self, rotation_id: str, **fields: Any) -> None:
        """Create or update a rotation record; fields given as None are left as they were."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown record field(s): {', '.join(sorted(unknown))}")
        entity = {"PartitionKey": "rotation", "RowKey": rotation_id, "id": rotation_id}
        entity.update({k: v for k, v in fields.items() if v is not None})
        self._upsert(entity)
        if fields.get("status") in FINAL_STATUSES and fields.get("target"):
            self._save_latest(rotation_id, fields)

    def _save_latest(self, rotation_id: str, fields: dict[str, Any]) -> None:
        latest = {
            "PartitionKey": "target",
            "RowKey": fields["target"],
            "lastRotationId": rotation_id,
            "lastStatus": fields["status"],
            "lastFinishedAt": fields.get("finishedAt") or now_text(),
        }
        if fields["status"] == "succeeded":
            latest["lastSucceededAt"] = latest["lastFinishedAt"]
        self._upsert(latest)

    def _upsert(self, entity: dict[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        try:
            self._client().upsert_entity(entity, mode=UpdateMode.MERGE)
        except Exception as exc:
            raise from_sdk(exc, "storage", f"write a record to table {TABLE_NAME}") from None

    def get(self, rotation_id: str) -> dict[str, Any] | None:
        return self._read("rotation", rotation_id, FIELDS)

    def shown(self, rotation_id: str) -> dict[str, Any] | None:
        """The record as the status route shows it: without the in-progress fields once it is finished."""
        record = self.get(rotation_id)
        if record is not None and record.get("status") in FINAL_STATUSES:
            for name in IN_PROGRESS_FIELDS:
                record.pop(name, None)
        return record

    def latest(self, target: str) -> dict[str, Any] | None:
        return self._read("target", target, ("lastRotationId", "lastStatus", "lastFinishedAt", "lastSucceededAt"))

    def _read(self, partition: str, row: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._client().get_entity(partition, row)
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise from_sdk(exc, "storage", f"read table {TABLE_NAME}") from None
        return {name: entity[name] for name in fields if name in entity}
