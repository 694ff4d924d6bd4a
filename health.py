"""/healthz: for load balancers and Railway's health check, and the operator's view of the
job queue (waiting jobs, the oldest one's wait, failing jobs, live workers, Spotify's limits)."""

from flask import Blueprint, current_app, jsonify

import database
import jobs

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    # A bound of its own on the database part: a locked table or a full pool shows as
    # "slow" within DB_HEALTH_TIMEOUT instead of hanging the probe. Time queued in front of
    # the app does not count: a busy instance is not an unhealthy one, and taking it out of
    # a load balancer for being busy would only move its load onto the others.
    report = database.health(budget=float(current_app.config.get("DB_HEALTH_TIMEOUT", 1.0)))
    status = 200 if report.pop("ok") else 503
    if status == 200:
        report["jobs"] = jobs.health()
    response = jsonify(status="ok" if status == 200 else "unavailable", **report)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response, status
