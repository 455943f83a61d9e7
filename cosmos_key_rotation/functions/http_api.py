"""HTTP triggers: request a rotation, read its status, list the targets (the routes: http_routes.py).

Every method reaches the handler, which answers 405 with `Allow` to the wrong one. The product's modules
are imported on the first request, not when the host loads the app (every cold start pays for that).
"""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@bp.route(route="rotations", methods=ALL_METHODS)
def request_rotation(req: func.HttpRequest) -> func.HttpResponse:
    from .. import http_routes

    return http_routes.request_rotation(req)


@bp.route(route="rotations/{id}", methods=ALL_METHODS)
def rotation_status(req: func.HttpRequest) -> func.HttpResponse:
    from .. import http_routes

    return http_routes.rotation_status(req)


@bp.route(route="targets", methods=ALL_METHODS)
def targets(req: func.HttpRequest) -> func.HttpResponse:
    from .. import http_routes

    return http_routes.targets(req)
