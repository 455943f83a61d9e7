"""The Azure Functions app: wiring only. Each trigger lives in cosmos_key_rotation/functions/."""

import logging

import azure.functions as func

from cosmos_key_rotation import redaction
from cosmos_key_rotation.functions import abandoned, expiry, heartbeat, http_api, scheduled, worker

# Every record of the worker passes redaction, whichever handler sends it (the worker's own, Application
# Insights' exporter); the SDKs log each HTTP request at INFO, which would drown the events: warnings only.
redaction.install()
logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (scheduled.bp, worker.bp, abandoned.bp, http_api.bp, expiry.bp, heartbeat.bp):
    app.register_functions(blueprint)
