"""The storage front before Azurite's Blob endpoint, driven by the real azure-storage-blob client."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)

from local_azure.azurite import Azurite
from local_azure.faults import FaultRuleError

LEASE_ID_MISSING = "There is currently a lease on the blob and no lease ID was specified in the request."


@pytest.fixture(autouse=True)
def _no_storage_faults(azurite: Azurite) -> Iterator[None]:
    """The Azurite fixture (and its front) lives for the whole session: leave no rule behind."""
    azurite.faults.clear()
    yield
    azurite.faults.clear()


def _container(connection_string: str, **options: Any) -> Any:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string, **options)
    container = service.get_container_client(f"front-{secrets.token_hex(4)}")
    container.create_container()
    return container


@pytest.fixture
def container(azurite: Azurite) -> Any:
    return _container(azurite.connection_string)


@pytest.fixture
def no_retry(azurite: Azurite, container: Any) -> Any:
    """The same container through a client that never retries (the storage SDK retries 5xx and dropped
    connections by itself, with back-off)."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string, retry_total=0)
    return service.get_container_client(container.container_name)


def test_blob_endpoint_is_the_front(azurite: Azurite) -> None:
    settings = dict(part.split("=", 1) for part in azurite.connection_string.strip(";").split(";"))

    assert settings["BlobEndpoint"] == f"http://127.0.0.1:{azurite.front_port}/devstoreaccount1"
    assert settings["QueueEndpoint"] == f"http://127.0.0.1:{azurite.ports['queue']}/devstoreaccount1"
    assert settings["TableEndpoint"] == f"http://127.0.0.1:{azurite.ports['table']}/devstoreaccount1"
    assert azurite.front_port != azurite.ports["blob"]


def test_azurite_alone_answers_409_to_put_blob_on_a_leased_blob(azurite: Azurite) -> None:
    """Why the front exists (Azure/Azurite issue 2637). If Azurite is fixed, this fails: the correction can go."""
    blob = _container(azurite.direct_connection_string).get_blob_client("leased")
    blob.upload_blob(b"", overwrite=False)
    blob.acquire_lease(lease_duration=15)

    with pytest.raises(ResourceExistsError) as caught:
        blob.upload_blob(b"", overwrite=False)

    assert (caught.value.status_code, caught.value.error_code) == (409, "BlobAlreadyExists")


def test_put_blob_on_a_leased_blob_is_412_lease_id_missing(container: Any) -> None:
    blob = container.get_blob_client("accounts/docdb-one")
    blob.upload_blob(b"", overwrite=False)
    lease = blob.acquire_lease(lease_duration=15)

    with pytest.raises(HttpResponseError) as caught:
        blob.upload_blob(b"", overwrite=False)  # If-None-Match: *

    error = caught.value
    assert not isinstance(error, ResourceExistsError)
    assert (error.status_code, error.error_code) == (412, "LeaseIdMissing")
    response = error.response
    assert response.reason == LEASE_ID_MISSING
    assert response.headers["x-ms-error-code"] == "LeaseIdMissing"
    assert response.headers["Content-Type"] == "application/xml"
    request_id = response.headers["x-ms-request-id"]
    assert re.fullmatch(
        r'<\?xml version="1.0" encoding="utf-8"\?><Error><Code>LeaseIdMissing</Code><Message>'
        + re.escape(LEASE_ID_MISSING)
        + r"\nRequestId:" + re.escape(request_id) + r"\nTime:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z</Message></Error>",
        response.text(),
    )
    # Without If-None-Match too, and the blob is untouched; with the lease id the write goes through.
    with pytest.raises(HttpResponseError) as overwrite:
        blob.upload_blob(b"changed", overwrite=True)
    assert overwrite.value.error_code == "LeaseIdMissing"
    assert blob.download_blob().readall() == b""
    blob.upload_blob(b"with the lease", overwrite=True, lease=lease)
    assert blob.download_blob().readall() == b"with the lease"


def test_put_blob_on_an_unleased_blob_is_409_as_before(container: Any) -> None:
    blob = container.get_blob_client("free")
    blob.upload_blob(b"", overwrite=False)
    blob.acquire_lease(lease_duration=15).release()

    with pytest.raises(ResourceExistsError) as caught:
        blob.upload_blob(b"", overwrite=False)

    assert (caught.value.status_code, caught.value.error_code) == (409, "BlobAlreadyExists")


def test_everything_else_passes_through(container: Any) -> None:
    from azure.storage.blob import ContentSettings

    data = secrets.token_bytes(5 * 1024 * 1024)  # more than the emulator's usual 4 MiB request limit
    big = container.upload_blob("big.bin", data, content_settings=ContentSettings(content_type="application/x-test"),
                                metadata={"purpose": "front"})
    small = container.upload_blob("dir/small.txt", b"hello")

    properties = big.get_blob_properties()  # HEAD: the front passes Azurite's Content-Length through
    assert (properties.size, properties.content_settings.content_type, properties.metadata) == (
        len(data), "application/x-test", {"purpose": "front"})
    assert big.download_blob().readall() == data
    assert small.download_blob(offset=1, length=3).readall() == b"ell"
    assert sorted(b.name for b in container.list_blobs()) == ["big.bin", "dir/small.txt"]

    lease = small.acquire_lease(lease_duration=15)
    assert small.get_blob_properties().lease.state == "leased"
    lease.renew()
    lease.release()
    assert small.get_blob_properties().lease.state == "available"
    small.acquire_lease(lease_duration=-1)
    small.get_blob_properties()
    assert small.get_blob_properties().lease.status == "locked"
    from azure.storage.blob import BlobLeaseClient

    BlobLeaseClient(small).break_lease(lease_break_period=0)
    assert small.get_blob_properties().lease.state == "broken"
    small.upload_blob(b"after the break", overwrite=True)
    container.delete_blob("big.bin")
    assert [b.name for b in container.list_blobs()] == ["dir/small.txt"]


def test_fault_on_renew_lease_answers_its_status(azurite: Azurite, container: Any) -> None:
    blob = container.get_blob_client("renewed")
    blob.upload_blob(b"")
    lease = blob.acquire_lease(lease_duration=15)
    azurite.faults.add({"service": "storage", "operation": "renewLease", "status": 409,
                        "errorCode": "LeaseIdMismatchWithLeaseOperation",
                        "errorMessage": "The lease ID specified did not match the lease ID for the blob."})

    with pytest.raises(HttpResponseError) as caught:
        lease.renew()
    lease.renew()  # the rule is used up

    error = caught.value
    assert (error.status_code, error.error_code) == (409, "LeaseIdMismatchWithLeaseOperation")
    assert error.response.headers["x-ms-error-code"] == "LeaseIdMismatchWithLeaseOperation"
    assert "<Code>LeaseIdMismatchWithLeaseOperation</Code>" in error.response.text()
    assert [(f["matched"], f["remaining"]) for f in azurite.faults.list()] == [(1, 0)]


def test_server_busy_with_retry_after(azurite: Azurite, container: Any, no_retry: Any) -> None:
    azurite.faults.add({"service": "storage", "operation": "putBlob", "status": 503, "retryAfter": 2,
                        "container": container.container_name})

    with pytest.raises(HttpResponseError) as caught:
        no_retry.upload_blob("busy", b"x")

    error = caught.value
    assert (error.status_code, error.error_code) == (503, "ServerBusy")
    assert error.response.headers["Retry-After"] == "2"
    assert not container.get_blob_client("busy").exists()


def test_delay_rule_delays(azurite: Azurite, container: Any) -> None:
    blob = container.upload_blob("slow", b"x")
    azurite.faults.add({"service": "storage", "operation": "getBlobProperties", "delaySeconds": 0.4})

    started = time.monotonic()
    properties = blob.get_blob_properties()

    assert time.monotonic() - started >= 0.4
    assert properties.size == 1


def test_drop_rule_is_a_connection_error(azurite: Azurite, container: Any, no_retry: Any) -> None:
    no_retry.upload_blob("dropped", b"")
    azurite.faults.add({"service": "storage", "operation": "acquireLease", "drop": True})

    with pytest.raises((ServiceResponseError, ServiceRequestError)):
        no_retry.get_blob_client("dropped").acquire_lease(lease_duration=15)

    assert container.get_blob_client("dropped").get_blob_properties().lease.state == "available"


def test_acted_lease_is_taken_and_the_answer_lost(azurite: Azurite, container: Any, no_retry: Any) -> None:
    no_retry.upload_blob("acted", b"")
    azurite.faults.add({"service": "storage", "operation": "acquireLease", "status": 500, "acted": True})

    with pytest.raises(HttpResponseError) as caught:
        no_retry.get_blob_client("acted").acquire_lease(lease_duration=15)

    assert (caught.value.status_code, caught.value.error_code) == (500, "InternalError")
    # The lease exists although its taker never learnt its id: a retry finds it taken.
    assert container.get_blob_client("acted").get_blob_properties().lease.state == "leased"
    with pytest.raises(ResourceExistsError) as again:
        no_retry.get_blob_client("acted").acquire_lease(lease_duration=15)
    assert again.value.error_code == "LeaseAlreadyPresent"


def test_storage_rules_are_validated(azurite: Azurite) -> None:
    with pytest.raises(FaultRuleError, match="Unknown operation"):
        azurite.faults.add({"service": "storage", "operation": "putBlock", "status": 500})
    with pytest.raises(FaultRuleError, match="'lroStatus'"):
        azurite.faults.add({"service": "storage", "operation": "putBlob", "lroStatus": "Failed"})
    with pytest.raises(FaultRuleError, match="'service' must be one of storage"):
        azurite.faults.add({"service": "arm", "operation": "listKeys", "status": 500})
    assert azurite.faults.list() == []
