"""The Azure Functions app: wiring only. Each trigger lives in cosmos_key_rotation/functions/."""

import logging
import os

import azure.functions as func

from cosmos_key_rotation import redaction
from cosmos_key_rotation.functions import abandoned, expiry, heartbeat, http_api, scheduled, worker

# Every record of the worker passes redaction, whichever handler sends it (the worker's own, Application
# Insights' exporter); the SDKs log each HTTP request at INFO, which would drown the events: warnings only.
redaction.install()
logging.getLogger("azure").setLevel(logging.WARNING)

# HTTP_AUTH=entra: App Service authentication stands in front and the routes check the caller's app roles
# (cosmos_key_rotation/caller.py), so no function key; otherwise a function key, as before.
_ENTRA = os.environ.get("HTTP_AUTH", "").strip().lower() == "entra"
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS if _ENTRA else func.AuthLevel.FUNCTION)
for blueprint in (scheduled.bp, worker.bp, abandoned.bp, http_api.bp, expiry.bp, heartbeat.bp):
    app.register_functions(blueprint)
