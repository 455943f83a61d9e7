"""The Azure Functions app: wiring only. Each trigger lives in cosmos_key_rotation/functions/."""

import azure.functions as func

from cosmos_key_rotation.functions import abandoned, http_api, scheduled, worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (scheduled.bp, worker.bp, abandoned.bp, http_api.bp):
    app.register_functions(blueprint)
