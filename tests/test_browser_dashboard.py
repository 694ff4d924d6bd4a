"""The dashboard in a real browser (Debian's chromium through Playwright): a person logs in
through the emulator, the first sync runs, and every chart draws its data points; with no
audio features the mood charts give way to a one-line explanation.

    MTM_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser_dashboard.py

also writes docs/dashboard.png (the README's screenshot); otherwise it goes to a temp dir.
"""

from __future__ import annotations

import re

import dashboard
from conftest import CHARTS_OUTSIDE_THEIR_FIGURE, browser_log_in, screenshot
from helpers import query

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
    assert page.evaluate(CHARTS_OUTSIDE_THEIR_FIGURE) == []
    assert page.locator("#sync-status").inner_text().startswith("Last synced")
    assert page.get_by_role("button", name="Sync now").is_visible()
    screenshot(page, "dashboard.png", tmp_path)

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
    assert page.evaluate(CHARTS_OUTSIDE_THEIR_FIGURE) == []
    assert page.console_errors == []


# For every chart: its table's header and rows, and whether a keyboard can reach its summary.
CHART_TABLES = """() => Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(figure => {
    const details = figure.querySelector('details.chart-table');
    const table = details && details.querySelector('table');
    return [figure.dataset.chart, details && {
        hidden: details.hidden, summary: details.querySelector('summary').textContent.trim(),
        caption: table && table.caption.textContent,
        head: table ? [...table.tHead.rows[0].cells].map(c => c.textContent) : [],
        rows: table ? [...table.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent)) : []}];
}))"""

# What the rank chart draws: colours and point shapes per line, the value axis, the tooltip.
RANK_CHART = """() => {
    const chart = Chart.getChart(document.getElementById('chart-rank-movement'));
    const label = chart.options.plugins.tooltip.callbacks.label;
    const first = chart.data.datasets[0].data.findIndex(v => v !== null);
    return {colours: chart.data.datasets.map(d => d.borderColor), shapes: chart.data.datasets.map(d => d.pointStyle),
            min: chart.scales.y.min, max: chart.scales.y.max,
            tooltip: label.call(chart.tooltip, {dataset: chart.data.datasets[0], datasetIndex: 0, chart: chart,
                                                parsed: {y: chart.data.datasets[0].data[first]}}),
            struck: chart.legend.legendItems.filter(i => i.hidden).length, legend: chart.legend.legendItems.length};
}"""


def test_every_chart_has_its_numbers_as_a_table_a_keyboard_opens(live_server, page):
    page.emulate_media(reduced_motion="reduce")
    browser_log_in(page, live_server, "ava")
    page.goto(live_server + "/dashboard")
    page.wait_for_function("() => !document.querySelector('[data-chart][aria-busy=true]')")
    tables = page.evaluate(CHART_TABLES)
    charts = page.evaluate(CHART_STATE)
    assert set(tables) == set(dashboard.CHARTS)
    for name, table in tables.items():
        assert table is not None, name
        if charts[name]["empty"]:
            assert table["hidden"], name
            continue
        assert not table["hidden"] and table["caption"] == dashboard.CHARTS[name].title, name
        assert table["summary"] == dashboard.CHARTS[name].title + " as a table"
        assert len(table["head"]) >= 2 and all(table["head"]), (name, table["head"])
        assert len(table["rows"]) > 0 and all(len(r) == len(table["head"]) for r in table["rows"]), name
    rank_rows = tables["rank-movement"]["rows"]
    assert any(cell.startswith("rank ") for row in rank_rows for cell in row[1:])

    # Tab by Tab to the rank chart's table: Enter opens it, and a screen reader finds the table by its name.
    summary = page.locator("#chart-rank-movement-table summary")
    for _ in range(60):
        page.keyboard.press("Tab")
        if summary.evaluate("s => s === document.activeElement"):
            break
    assert summary.evaluate("s => s === document.activeElement"), "the keyboard never reached the table"
    page.keyboard.press("Enter")
    table = page.get_by_role("table", name=dashboard.CHARTS["rank-movement"].title)
    assert table.is_visible()
    assert table.get_by_role("columnheader").count() == len(tables["rank-movement"]["head"])

    # The rank chart: ten lines, ten colours, ten point shapes, the axis zoomed to the ranks held.
    rank = page.evaluate(RANK_CHART)
    assert len(rank["colours"]) == 10 and len(set(rank["colours"])) == 10
    assert len(set(rank["shapes"])) == 10
    held = [int(cell.removeprefix("rank ")) for row in rank_rows for cell in row[1:] if cell != "–"]
    assert (rank["min"], rank["max"]) == (min(held), max(held))
    assert re.fullmatch(r"#1 .+: rank \d+", rank["tooltip"]), rank["tooltip"]
    # a series hidden by a click on its legend entry is faded, not struck through
    page.evaluate("() => Chart.getChart(document.getElementById('chart-rank-movement')).hide(0)")
    assert page.evaluate(RANK_CHART)["struck"] == 0

    growth = page.evaluate("""() => { const c = Chart.getChart(document.getElementById('chart-library-growth'));
        return {min: c.scales.y.min, values: c.data.datasets[0].data}; }""")
    assert 0 < growth["min"] <= min(growth["values"]), growth
    assert page.console_errors == []


# Every axis title's widest line against the length of its axis, for every drawn chart.
CLIPPED_TITLES = """() => [...document.querySelectorAll('[data-chart] canvas')].flatMap(canvas => {
    const chart = Chart.getChart(canvas);
    if (!chart) return [];
    return Object.values(chart.scales).filter(s => s.options.title && s.options.title.display).flatMap(scale => {
        chart.ctx.font = Chart.helpers.toFont(scale.options.title.font).string;
        const widest = Math.max(...[].concat(scale.options.title.text).map(t => chart.ctx.measureText(t).width));
        const room = scale.isHorizontal() ? chart.width : chart.height;
        return widest > room ? [canvas.id + ' ' + scale.id + ': ' + Math.round(widest) + ' > ' + room] : [];
    });
})"""


def test_on_a_phone_the_header_is_small_the_numbers_come_first_and_no_axis_title_is_clipped(live_server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, reduced_motion="reduce")
    page = context.new_page()
    browser_log_in(page, live_server, "ava")
    page.goto(live_server + "/dashboard")
    page.wait_for_function("() => !document.querySelector('[data-chart][aria-busy=true]')")
    banner = page.locator(".demo-banner").bounding_box()
    assert banner["y"] + banner["height"] <= 0.2 * 740, banner  # header and demo banner: a fifth at most
    numbers = page.locator("#key-numbers")
    assert numbers.bounding_box()["y"] < page.locator("#sync").bounding_box()["y"]
    assert re.fullmatch(r"\d+ tracks in your library · \d+ snapshot days", numbers.inner_text())
    assert page.evaluate(CLIPPED_TITLES) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate(CHARTS_OUTSIDE_THEIR_FIGURE) == []

    # the listening page (ava's captured plays) the same way: its numbers before its charts
    page.goto(live_server + "/listening")
    page.wait_for_function("() => typeof Chart !== 'undefined' && Chart.getChart(document.querySelector('canvas'))")
    first_chart = page.locator("[data-chart]").first.bounding_box()
    assert page.locator("#listening-numbers").bounding_box()["y"] < first_chart["y"]
    assert page.evaluate(CLIPPED_TITLES) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate(CHARTS_OUTSIDE_THEIR_FIGURE) == []
    context.close()
