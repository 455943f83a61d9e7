"""A small stand-in for the Azure Functions host, for tests and the demo (Core Tools cannot be
installed here). It drives a FunctionApp's real functions the way the host does:

- queue triggers read Azure Storage queues (Azurite) with base64 messages, pass the dequeue count,
  make a failed message visible again after the visibility timeout, and after `maxDequeueCount`
  attempts move it to `<queue>-poison`, whose trigger then runs;
- timer triggers run on demand with `past_due` as given;
- HTTP triggers are called with a real `func.HttpRequest`.

It takes the app object, so it never imports the product itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


class FunctionsHost:
    def __init__(self, app: Any, storage_connection: str, host_json: str | Path = "host.json",
                 visibility_timeout: float | None = None, base_url: str = "http://localhost:7071") -> None:
        settings = json.loads(Path(host_json).read_text())["extensions"]["queues"]
        self.max_dequeue_count = int(settings.get("maxDequeueCount", 5))
        # As the host does: up to batchSize messages at once, more fetched when fewer than
        # newBatchThreshold still run (docs: "Azure Queue storage trigger", host.json settings).
        self.concurrency = int(settings.get("batchSize", 16)) + int(settings.get("newBatchThreshold", 8))
        # The real host waits host.json's visibilityTimeout between attempts; tests pass a shorter one.
        self.visibility_timeout = visibility_timeout if visibility_timeout is not None else _seconds(
            settings.get("visibilityTimeout", "00:00:00"))
        self.storage_connection = storage_connection
        self.base_url = base_url
        self.functions = _indexed(app)

    # -- bindings -------------------------------------------------------------------------------------

    def _trigger(self, name: str) -> dict[str, Any]:
        bindings = json.loads(self.functions[name].get_function_json())["bindings"]
        return next(b for b in bindings if b["type"].endswith("Trigger"))

    def _user_function(self, name: str) -> Any:
        return self.functions[name].get_user_function()

    def _queue_functions(self) -> dict[str, str]:
        found = {}
        for name in self.functions:
            trigger = self._trigger(name)
            if trigger["type"] == "queueTrigger":
                found[trigger["queueName"]] = name
        return found

    def _queue(self, queue_name: str) -> Any:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        client = QueueClient.from_connection_string(
            self.storage_connection, queue_name,
            message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy())
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client

    # -- triggers -------------------------------------------------------------------------------------

    def run_timer(self, name: str, past_due: bool = False, retry_scale: float = 0.0) -> int:
        """Run a timer function as the host does, with its retry policy (`@app.retry`): a failed run is run
        again up to max_retry_count times, the delay growing from minimum_interval to maximum_interval
        (exponential_backoff) or fixed (fixed_delay); `retry_scale` shrinks the delays for tests. Returns how
        many times it ran; the last failure is raised when every retry failed."""
        from azure.functions.timer import TimerRequest

        policy = self.functions[name].get_settings_dict("retry_policy") or {}
        retries = int(policy.get("max_retry_count") or 0)
        delays = _retry_delays(policy, retries)
        for attempt in range(retries + 1):
            try:
                self._user_function(name)(TimerRequest(past_due=past_due))
                return attempt + 1
            except Exception:
                if attempt == retries:
                    raise
                time.sleep(delays[attempt] * retry_scale)
        raise AssertionError("unreachable")

    def call_http(self, name: str, method: str, path: str, body: bytes | str | None = None,
                  route_params: dict[str, str] | None = None, params: dict[str, str] | None = None,
                  principal: dict[str, Any] | None = None) -> Any:
        """Call an HTTP function. `principal`: the caller App Service authentication would let through, injected
        as it does in X-MS-CLIENT-PRINCIPAL (base64 JSON of auth_typ, name_typ, role_typ and claims)."""
        import base64

        import azure.functions as func

        data = body.encode() if isinstance(body, str) else (body or b"")
        headers = {"content-type": "application/json"}
        if principal is not None:
            headers["x-ms-client-principal"] = base64.b64encode(json.dumps(principal).encode()).decode()
        request = func.HttpRequest(method, self.base_url + path, headers=headers,
                                   params=params or {}, route_params=route_params or {}, body=data)
        return self._user_function(name)(request)

    def send_event(self, name: str, event: dict[str, Any]) -> None:
        """Deliver one Event Grid event (Event Grid schema, as Event Grid posts it) to an Event Grid trigger,
        decoded by the worker library's own converter. An exception is what makes Event Grid retry."""
        from azure.functions import meta
        from azure.functions.eventgrid import EventGridEventInConverter

        decoded = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
        self._user_function(name)(decoded)

    def process_queues(self, timeout: float = 60.0, idle: float = 0.5) -> int:
        """Deliver messages until every trigger queue has been empty for `idle` seconds; return how
        many deliveries were made."""
        queues = {queue: (self._queue(queue), name) for queue, name in self._queue_functions().items()}
        deadline = time.monotonic() + timeout
        deliveries = 0
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            delivered = 0
            for queue_name, (client, function_name) in queues.items():
                delivered += self._deliver(queue_name, client, function_name)
            deliveries += delivered
            if delivered:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= idle and self._all_empty(queues):
                return deliveries
            else:
                time.sleep(0.1)
        raise TimeoutError(f"queues not drained after {timeout} s")

    def _all_empty(self, queues: dict[str, tuple[Any, str]]) -> bool:
        return all(client.get_queue_properties().approximate_message_count == 0 for client, _ in queues.values())

    def _deliver(self, queue_name: str, client: Any, function_name: str) -> int:
        # Invisible while it runs, as the host does; a long rotation is not handed out twice.
        messages = list(client.receive_messages(max_messages=min(32, self.concurrency), visibility_timeout=300))
        if len(messages) <= 1:
            for message in messages:
                self._run(queue_name, client, function_name, message)
            return len(messages)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            list(pool.map(lambda message: self._run(queue_name, client, function_name, message), messages))
        return len(messages)

    def _run(self, queue_name: str, client: Any, function_name: str, message: Any) -> None:
        from azure.functions.queue import QueueMessage

        body = message.content.encode() if isinstance(message.content, str) else message.content
        trigger_message = QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                                       pop_receipt=message.pop_receipt)
        try:
            self._user_function(function_name)(trigger_message)
        except Exception:
            self._failed(queue_name, client, message)
        else:
            client.delete_message(message)

    def _failed(self, queue_name: str, client: Any, message: Any) -> None:
        if message.dequeue_count >= self.max_dequeue_count:
            self._queue(f"{queue_name}-poison").send_message(message.content)
            client.delete_message(message)
        else:
            client.update_message(message, visibility_timeout=int(self.visibility_timeout))


_INDEXED: dict[int, dict[str, Any]] = {}


def _indexed(app: Any) -> dict[str, Any]:
    """The app's functions by name. Indexing twice fails (the library sees duplicate names), so once."""
    if id(app) not in _INDEXED:
        _INDEXED[id(app)] = {fn.get_function_name(): fn for fn in app.get_functions()}
    return _INDEXED[id(app)]


def _seconds(text: str) -> float:
    hours, minutes, seconds = (float(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds



def _retry_delays(policy: dict[str, Any], retries: int) -> list[float]:
    """The waits between runs under a Functions retry policy (docs: "Azure Functions error handling and
    retries": exponential_backoff starts at minimum_interval and doubles up to maximum_interval)."""
    if policy.get("strategy") == "fixed_delay":
        return [_seconds(policy.get("delay_interval") or "00:00:00")] * retries
    low = _seconds(policy.get("minimum_interval") or "00:00:00")
    high = _seconds(policy.get("maximum_interval") or "00:15:00")
    return [min(low * 2**n, high) for n in range(retries)]
