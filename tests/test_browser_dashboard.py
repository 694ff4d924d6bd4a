"""The dashboard in a real browser (Debian's chromium through Playwright): a person logs in
through the emulator, the first sync runs, and every chart draws its data points; with no
audio features the mood charts give way to a one-line explanation.

    MTM_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser_dashboard.py

also writes docs/dashboard.png (the README's screenshot); otherwise it goes to a temp dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import dashboard
from conftest import browser_log_in
from helpers import query

DOCS = Path(__file__).resolve().parents[1] / "docs"

# For every chart figure: is the canvas shown, how many points Chart.js drew, the explanation.
CHART_STATE = """() => Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(figure => {
    const canvas = figure.querySelector('canvas');
    const chart = Chart.getChart(canvas);
    const values = chart ? chart.data.datasets.flatMap(d => d.data).filter(v => v !== null && v !== undefined) : [];
    const drawn = chart ? chart.data.datasets.reduce((n, _, i) => n + chart.getDatasetMeta(i).data.length, 0) : 0;
    return [figure.dataset.chart, {shown: !figure.querySelector('.chart-canvas').hidden, values: values.length,
                                   drawn: drawn, empty: figure.querySelector('.chart-empty').textContent.trim()}];
}))"""


def test_every_chart_draws_and_mood_charts_explain_themselves(live_server, page, clean_emulator, db, tmp_path):
    clean_emulator.faults.set_audio_features(True)  # as for an app that still has audio features
    page.emulate_media(reduced_motion="reduce")  # no animation: the screenshot shows finished charts
    browser_log_in(page, live_server, "ava")
    page.goto(live_server + "/dashboard")
    page.wait_for_function("() => typeof Chart !== 'undefined' && Chart.getChart(document.querySelector('canvas'))")

    charts = page.evaluate(CHART_STATE)
    assert set(charts) == set(dashboard.CHARTS)
    not_drawn = {
        name: state
        for name, state in charts.items()
        if not (state["shown"] and state["values"] > 0 and state["drawn"] > 0)
    }
    assert not_drawn == {}
    assert page.locator("#sync-status").inner_text().startswith("Last synced")
    assert page.get_by_role("button", name="Sync now").is_visible()
    page.screenshot(
        path=str((DOCS if os.environ.get("MTM_SCREENSHOTS") else tmp_path) / "dashboard.png"), full_page=True
    )

    # No track has audio features any more: after the filter changes (fetched from /api/charts,
    # no reload) the mood charts are replaced by their explanation, the rest still draw.
    query(db, "UPDATE tracks SET audio_features = NULL")
    page.select_option("select[name=time_range]", "short_term")
    page.get_by_role("button", name="Show").click()
    page.wait_for_function("() => document.getElementById('filters-status').textContent === 'Charts updated.'")
    assert page.url.endswith("/dashboard?time_range=short_term&period=1y")
    charts = page.evaluate(CHART_STATE)
    for name in ("energy", "mood"):
        assert not charts[name]["shown"] and charts[name]["drawn"] == 0
        assert charts[name]["empty"].startswith("Mood charts need Spotify audio features")
    assert all(state["drawn"] > 0 for name, state in charts.items() if name not in ("energy", "mood"))

    # 375 px wide: nothing sticks out sideways and the charts redraw at that size.
    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_function("() => Chart.getChart(document.querySelector('canvas')).width <= 375")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.console_errors == []
