"""Queue messages: what the worker accepts, and what it drops as a bad message."""

import json

import pytest

from cosmos_key_rotation.rotation import RotationRequest
from cosmos_key_rotation.rotation_queue import BadMessage, from_message, to_message


def test_a_request_survives_the_queue():
    request = RotationRequest.new("docdb", "http", key_kind="primary", force=True)
    back = from_message(to_message(request), attempt=3)
    assert (back.id, back.target, back.trigger, back.key_kind, back.force, back.attempt, back.retryable) == (
        request.id, "docdb", "http", "primary", True, 3, True)


@pytest.mark.parametrize("body, words", [
    ("not json", "not JSON"),
    ("[1]", "not a JSON object"),
    (json.dumps({"target": "docdb", "trigger": "timer"}), "no 'id'"),
    (json.dumps({"id": "1", "target": "docdb", "trigger": "cron"}), "'trigger' is 'cron'"),
    (json.dumps({"id": "1", "target": "docdb", "trigger": "timer", "keyKind": "tertiary"}), "'keyKind' is 'tertiary'"),
    (json.dumps({"id": "1", "target": "docdb", "trigger": "timer", "keyKind": "primaryReadonly"}), "'keyKind'"),
    (json.dumps({"id": "1", "target": "docdb", "trigger": "timer", "keyKind": 5}), "'keyKind' is '5'"),
])
def test_a_message_the_product_does_not_know_is_a_bad_message(body, words):
    with pytest.raises(BadMessage, match=words):
        from_message(body, attempt=1)
