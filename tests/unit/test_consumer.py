"""The reference consumer's rules (examples/consumer.py), with a fake vault, client and clock."""

from __future__ import annotations

from types import SimpleNamespace

import azure.cosmos
import pytest
from azure.cosmos.exceptions import CosmosHttpResponseError

from examples.consumer import RotatingCosmosClient

from .fake_clock import Clock


class FakeCosmos:
    built: list[FakeCosmos] = []

    def __init__(self, endpoint, credential, **options):
        self.key, self.closed = credential, False
        FakeCosmos.built.append(self)

    def close(self):
        self.closed = True


class Vault:
    def __init__(self, key):
        self.key, self.reads = key, 0

    def get_secret(self, name):
        self.reads += 1
        return SimpleNamespace(value=f"AccountEndpoint=https://a.documents.azure.com:443/;AccountKey={self.key};")


@pytest.fixture
def consumer(monkeypatch):
    monkeypatch.setattr(azure.cosmos, "CosmosClient", FakeCosmos)
    FakeCosmos.built = []
    clock, vault = Clock(), Vault("k1")
    return RotatingCosmosClient("https://v", "s", None, refresh_seconds=3600, min_reread_seconds=5, clock=clock,
                                secret_client=vault), clock, vault


def unauthorized(client):
    raise CosmosHttpResponseError(status_code=401, message="Unauthorized")


def test_one_client_reused_and_the_secret_read_again_each_period(consumer):
    app, clock, vault = consumer
    first = app.client()
    assert app.client() is first and vault.reads == 1
    clock.now += 3600
    assert app.client() is first and vault.reads == 2  # same secret: same client
    vault.key = "k2"
    clock.now += 3600
    assert app.client().key == "k2" and not first.closed  # a request may still run on the old one
    vault.key = "k3"
    clock.now += 3600
    assert app.client().key == "k3" and first.closed


def test_a_401_rereads_at_once_and_retries_but_at_most_once_per_interval(consumer):
    app, clock, vault = consumer
    app.client()
    vault.key = "k2"
    assert app.call(lambda client: client.key) == "k1"
    clock.now += 10
    keys = []

    def first_fails(client):
        keys.append(client.key)
        if client.key == "k1":
            unauthorized(client)
        return client.key

    assert app.call(first_fails) == "k2" and keys == ["k1", "k2"] and app.rereads_on_401 == 1
    vault.key = "k3"
    clock.now += 1  # a burst of 401s within min_reread_seconds costs no more reads
    with pytest.raises(CosmosHttpResponseError):
        app.call(unauthorized)
    assert vault.reads == 2 and app.rereads_on_401 == 1
