import base64
import io
import json
import logging
import secrets

import pytest

from cosmos_key_rotation import redaction
from cosmos_key_rotation.events import EventLog, JsonLinesFormatter, emit
from cosmos_key_rotation.redaction import redact


def fake_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def test_redact_masks_keys_connection_strings_and_tokens():
    key = fake_key()
    text = (f"AccountEndpoint=https://a.documents.azure.com:443/;AccountKey={key}; "
            f"Authorization: Bearer abc.def-ghi_jkl0123456789 sig=Zm9vYmFy token {key}")
    cleaned = redact(text)
    assert key not in cleaned
    assert "abc.def-ghi_jkl0123456789" not in cleaned
    assert "Zm9vYmFy" not in cleaned
    assert "AccountEndpoint=https://a.documents.azure.com:443/" in cleaned


def test_redact_keeps_resource_ids_and_messages():
    text = ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
            "Microsoft.DocumentDB/databaseAccounts/docdb-test was rotated")
    assert redact(text) == text


def capture() -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    redaction.install()
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return stream, handler


def test_events_are_json_lines_with_flat_properties():
    stream, handler = capture()
    try:
        EventLog({"rotationId": "r1", "target": "docdb-test"}).emit(
            "KeyRegenerated", "KeyRegenerated docdb-test secondary", keyKind="secondary", durationMs=12)
    finally:
        logging.getLogger().removeHandler(handler)
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["event"] == "KeyRegenerated"
    assert record["message"] == "KeyRegenerated docdb-test secondary"
    assert (record["rotationId"], record["target"], record["keyKind"], record["durationMs"]) == (
        "r1", "docdb-test", "secondary", 12)
    assert record["level"] == "INFO"


def test_event_properties_are_redacted_and_checked():
    key = fake_key()
    stream, handler = capture()
    try:
        emit("RotationFailed", f"failed with AccountKey={key};", logging.ERROR, errorMessage=f"echo {key}")
        logging.getLogger("azure.something").warning("leaked %s", key)
    finally:
        logging.getLogger().removeHandler(handler)
    assert key not in stream.getvalue()
    with pytest.raises(ValueError):
        emit("NoSuchEvent", "x")
    with pytest.raises(ValueError):
        emit("RotationFailed", "x", colour="red")
