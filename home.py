"""The landing page."""

from flask import Blueprint, current_app, render_template

import spotify

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    return render_template("home/index.html", demo=spotify.settings_for(current_app).demo)
