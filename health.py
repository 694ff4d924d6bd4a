"""/healthz: for load balancers and Railway's health check."""

from flask import Blueprint, jsonify

import database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    report = database.health()
    status = 200 if report.pop("ok") else 503
    response = jsonify(status="ok" if status == 200 else "unavailable", **report)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response, status
