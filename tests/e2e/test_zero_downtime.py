"""Zero downtime, proven from the application's side: the reference consumer (examples/consumer.py) issues
requests without a pause against the account while the product rotates four times, through the timer and
through HTTP. Under `alternate` no request fails; under a fixed strategy the test shows the failures it
causes (which is why `alternate` is the default)."""

from __future__ import annotations

import json
import threading
import time

from azure.cosmos.exceptions import CosmosHttpResponseError

from examples.consumer import RotatingCosmosClient

# The consumer's periodic re-read, and its least wait between two re-reads after 401s (hourly and 5 s in
# production, where rotations are days apart).
REFRESH_SECONDS = 0.3
MIN_REREAD_SECONDS = 0.1


class Application(threading.Thread):
    """The consumer in a loop, counting what happened to each request."""

    def __init__(self, world) -> None:
        super().__init__(daemon=True)
        self.consumer = RotatingCosmosClient(world.env["KEY_VAULT_URI"], world.secret_name, None,
                                             refresh_seconds=REFRESH_SECONDS, min_reread_seconds=MIN_REREAD_SECONDS,
                                             secret_client=world.secret_client(),
                                             client_options={"retry_total": 0})
        self.stop = threading.Event()
        self.succeeded = self.failed = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.consumer.call(lambda client: list(client.list_databases()))
                self.succeeded += 1
            except CosmosHttpResponseError as error:
                self.failed += 1
                self.failures.append(f"{error.status_code}")
            time.sleep(0.002)

    def finish(self) -> str:
        self.stop.set()
        self.join(timeout=30)
        self.consumer.close()
        return (f"consumer: {self.succeeded} requests succeeded, {self.failed} failed, "
                f"{self.consumer.rereads_on_401} re-read(s) of the secret after a 401")


def rotate_four_times(world) -> list[str]:
    """Timer, HTTP, timer, HTTP: each a real rotation through the function app, a period apart."""
    host = world.host()
    outcomes = []
    for turn in range(4):
        time.sleep(4 * REFRESH_SECONDS)  # the period between rotations, in which applications re-read
        if turn % 2 == 0:
            host.run_timer("scheduled_rotation")
        else:
            response = host.call_http("request_rotation", "POST", "/api/rotations",
                                      body=json.dumps({"target": world.account}))
            assert response.status_code == 202, response.get_body()
        host.process_queues()
        outcomes.append(world.live_secret().properties.tags["keyKind"])
    time.sleep(4 * REFRESH_SECONDS)
    return outcomes


def test_alternate_rotations_fail_no_request_of_an_application_that_rereads(world):
    world.set(MIN_ROTATION_INTERVAL_MINUTES="0")
    app = Application(world)
    app.start()
    published = rotate_four_times(world)
    report = app.finish()
    print(f"\nalternate, 4 rotations ({', '.join(published)}): {report}")
    assert published == ["secondary", "primary", "secondary", "primary"]
    assert app.failed == 0, app.failures[:5]
    assert app.succeeded > 100
    assert world.regenerations() == {"primary": 2, "secondary": 2, "primaryReadonly": 0, "secondaryReadonly": 0}


def test_a_fixed_strategy_fails_requests_which_is_why_alternate_is_the_default(world):
    world.set(MIN_ROTATION_INTERVAL_MINUTES="0", KEY_STRATEGY="secondary")
    app = Application(world)
    app.start()
    published = rotate_four_times(world)
    report = app.finish()
    print(f"\nsecondary (fixed), 4 rotations: {report}")
    assert published == ["secondary"] * 4
    # Each regeneration of the live key kills it before the new one is published: requests fail in between.
    assert app.failed > 0 and set(app.failures) == {"401"} and app.consumer.rereads_on_401 > 0
