// Draws the dashboard's charts into the boxes the frame reserved for them, from
// /api/charts (the page's <link rel="preload"> has usually fetched it already), and
// redraws them from the same API when the filters change. Pages that carry their charts'
// data in the page (<script type="application/json" id="chart-data">, the listening
// pages, whose tables come from the same numbers) are drawn from that instead.
(function () {
  "use strict";
  const form = document.getElementById("chart-filters");
  const status = document.getElementById("filters-status");
  if (typeof Chart === "undefined") return;
  let shown = null; // the last answer drawn, for redrawing on a theme switch

  // Ten colours for the ten tracks of the rank chart: Okabe–Ito's eight (distinguishable
  // with every common colour-vision deficiency; its black is the text colour, so it shows in
  // dark mode) and two of Paul Tol's muted set. Each line also has its own point shape, so
  // no two series depend on colour alone; more series than colours change the dash pattern.
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "--fg",
                   "#999999", "#AA4499"];
  const POINTS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot", "rectRounded", "cross", "dash", "line"];
  const DASHES = [[], [6, 4], [2, 3]];

  function colourAt(i) {
    const colour = PALETTE[i % PALETTE.length];
    return colour.startsWith("--") ? cssVar(colour, "#1d1d1b") : colour;
  }

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function applyTheme() {
    Chart.defaults.color = cssVar("--fg", "#1d1d1b");
    Chart.defaults.borderColor = cssVar("--chart-grid", "rgba(127, 127, 127, 0.25)");
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  }

  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function axisTitle(text) {
    return text ? { display: true, text: text } : { display: false };
  }

  function withUnit(data, value) {
    return value === null || value === undefined ? "–" : (data.value_prefix || "") + value + (data.unit || "");
  }

  // A hidden series is drawn faded in the legend, not struck through (a struck-through
  // name reads as "wrong" or "removed"); clicking a name still hides and shows its line.
  function legendLabels(chart) {
    return Chart.defaults.plugins.legend.labels.generateLabels(chart).map(function (item) {
      const hidden = item.hidden;
      return Object.assign(item, { hidden: false, fontColor: hidden ? cssVar("--muted", "#5f5f5a") : undefined,
                                   fillStyle: hidden ? "transparent" : item.fillStyle });
    });
  }

  // A long axis title on a phone ran past the canvas edge and was clipped: break it into
  // lines that fit the axis (again whenever the chart is resized).
  const measurer = document.createElement("canvas").getContext("2d");
  function wrapTitle(text, room) {
    if (!text) return text;
    measurer.font = Chart.helpers.toFont(Chart.defaults.font).string;
    const lines = [];
    text.split(" ").forEach(function (word) {
      const last = lines.length ? lines[lines.length - 1] + " " + word : word;
      if (lines.length && measurer.measureText(last).width <= room) lines[lines.length - 1] = last;
      else lines.push(word);
    });
    return lines.length === 1 ? lines[0] : lines;
  }

  function fitTitles(options, data, width, height) {
    if (!options.scales) return;
    const room = { x: width - 16, y: height - 16 };
    ["x", "y"].forEach(function (axis) {
      const title = options.scales[axis] && options.scales[axis].title; // a doughnut has no axes
      if (title && title.display) title.text = wrapTitle(axis === "x" ? data.x_title : data.y_title, room[axis]);
    });
  }

  function datasetsFor(data) {
    return data.datasets.map(function (set, i) {
      const colour = colourAt(i);
      const style = { label: set.label, data: set.data, hidden: Boolean(set.hidden) };
      if (data.kind === "doughnut") {
        return Object.assign(style, { backgroundColor: set.data.map(function (_, j) { return colourAt(j); }),
                                      borderColor: cssVar("--card", "#fff"), borderWidth: 2 });
      }
      if (data.kind === "line") {
        return Object.assign(style, { borderColor: colour, backgroundColor: colour, borderWidth: 2,
                                      pointStyle: POINTS[i % POINTS.length], pointRadius: 4, pointHoverRadius: 6,
                                      borderDash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length],
                                      spanGaps: false, tension: 0.2 });
      }
      return Object.assign(style, { backgroundColor: colour, borderColor: colour, borderRadius: 3 });
    });
  }

  function configFor(data) {
    const horizontal = data.kind === "hbar";
    const type = horizontal ? "bar" : data.kind;
    const options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: reducedMotion ? false : { duration: 400 },
      plugins: {
        legend: { display: data.datasets.length > 1 || data.kind === "doughnut", position: "bottom",
                  labels: { boxWidth: 12, usePointStyle: data.kind === "line", generateLabels: legendLabels } },
        tooltip: { callbacks: { label: function (item) {
          const raw = horizontal ? item.parsed.x : (data.kind === "doughnut" ? item.parsed : item.parsed.y);
          return (item.dataset.label ? item.dataset.label + ": " : "") + withUnit(data, raw);
        } } },
      },
    };
    if (data.kind !== "doughnut") {
      // y_zero false: the axis fits the values (a library of 730 to 734 tracks shows the
      // change instead of a flat line near the top); y_min/y_max: the range the data holds
      const valueAxis = { beginAtZero: !data.y_reverse && data.y_zero !== false, reverse: Boolean(data.y_reverse),
                          ticks: { precision: 0 } };
      if (data.y_max) valueAxis.max = data.y_max;
      if (data.y_reverse) valueAxis.min = 1;
      if (data.y_min) valueAxis.min = data.y_min;
      const categoryAxis = { stacked: Boolean(data.stacked), ticks: { autoSkip: true, maxRotation: 60 } };
      if (data.stacked) valueAxis.stacked = true;
      if (horizontal) {
        options.indexAxis = "y";
        options.scales = { x: Object.assign(valueAxis, { title: axisTitle(data.x_title) }),
                           y: Object.assign(categoryAxis, { title: axisTitle(data.y_title) }) };
      } else {
        options.scales = { x: Object.assign(categoryAxis, { title: axisTitle(data.x_title) }),
                           y: Object.assign(valueAxis, { title: axisTitle(data.y_title) }) };
      }
    }
    options.onResize = function (chart, size) { fitTitles(chart.options, data, size.width, size.height); };
    return { type: type, data: { labels: data.labels, datasets: datasetsFor(data) }, options: options };
  }

  function cell(row, tag, text, scope) {
    const element = document.createElement(tag);
    if (scope) element.scope = scope;
    element.textContent = text;
    row.appendChild(element);
  }

  // The chart's numbers as a table under it (a <details> the keyboard opens): what a screen
  // reader reads and a person without a mouse compares, as the track page's rank history.
  function fillTable(figure, data) {
    const details = figure.querySelector(".chart-table");
    if (!details) return; // the listening pages render theirs on the server
    const box = details.querySelector(".table-scroll");
    box.replaceChildren();
    details.hidden = Boolean(data.empty);
    if (data.empty) return;
    const table = document.createElement("table");
    table.className = "data-table";
    const caption = table.createCaption();
    caption.className = "visually-hidden";
    caption.textContent = data.title;
    const head = table.createTHead().insertRow();
    const first = data.category_title || (data.kind === "hbar" ? data.y_title : data.x_title) || "";
    cell(head, "th", first, "col");
    data.datasets.forEach(function (set) { cell(head, "th", set.label, "col"); });
    const body = table.createTBody();
    data.labels.forEach(function (label, i) {
      const row = body.insertRow();
      cell(row, "th", label, "row");
      data.datasets.forEach(function (set) { cell(row, "td", withUnit(data, set.data[i])); });
    });
    box.appendChild(table);
  }

  function draw(data) {
    const figure = document.querySelector('[data-chart="' + data.name + '"]');
    if (!figure) return;
    const canvas = figure.querySelector("canvas");
    const existing = Chart.getChart(canvas);
    if (existing) existing.destroy();
    // Not enough data: the one-line explanation replaces the chart (no empty axes).
    figure.querySelector(".chart-canvas").hidden = Boolean(data.empty);
    const empty = figure.querySelector(".chart-empty");
    empty.hidden = !data.empty;
    // during the first sync every chart is empty for a reason that will pass: say that,
    // not "run a sync" (static/sync_status.js reloads the page when it ends)
    const firstSync = document.querySelector("#sync[data-first-sync]");
    empty.textContent = data.empty && firstSync ? "Your first sync is running: this chart fills in when it ends."
                                                 : data.empty || "";
    figure.querySelector(".chart-summary").textContent = data.summary || "";
    fillTable(figure, data);
    if (!data.empty) {
      const config = configFor(data);
      const box = figure.querySelector(".chart-canvas");
      fitTitles(config.options, data, box.clientWidth, box.clientHeight);
      new Chart(canvas, config);
    }
    figure.setAttribute("aria-busy", "false");
  }

  function drawAll(charts) {
    Object.keys(charts).forEach(function (name) { draw(charts[name]); });
  }

  function failed(message) {
    status.textContent = message;
    document.querySelectorAll('[data-chart][aria-busy="true"]').forEach(function (figure) {
      figure.setAttribute("aria-busy", "false");
      const empty = figure.querySelector(".chart-empty");
      empty.hidden = false;
      empty.textContent = "This chart could not be loaded.";
    });
  }

  // Same URL, mode and credentials as the preload, so the browser reuses its answer.
  async function load(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) {
      const refused = new Error((body.error && body.error.message) || "The charts could not be loaded.");
      refused.fromServer = true;
      throw refused;
    }
    shown = body.charts;
    drawAll(shown);
    return body;
  }

  applyTheme();
  // A network failure says so in plain words; a refusal (400, 503) in the server's.
  function messageOf(error, fallback) {
    return error.fromServer ? error.message : fallback;
  }

  // Follow a light/dark switch without a reload.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
    applyTheme();
    if (shown) drawAll(shown);
  });

  const inPage = document.getElementById("chart-data");
  if (inPage) {
    shown = JSON.parse(inPage.textContent).charts;
    drawAll(shown);
    return;
  }
  if (!form) return;
  load(form.dataset.chartsUrl).catch(function (error) {
    failed(messageOf(error, "The charts could not be loaded. Please reload the page."));
  });

  // The filter form works without JavaScript (a GET of /dashboard); with it, only the
  // chart data is fetched.
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const query = new URLSearchParams(new FormData(form)).toString();
    status.textContent = "Loading…";
    try {
      await load(form.dataset.apiUrl + "?" + query);
      history.replaceState(null, "", form.action + "?" + query);
      status.textContent = "Charts updated.";
    } catch (error) {
      status.textContent = messageOf(error, "The charts could not be loaded. Please try again.");
    }
  });
})();
