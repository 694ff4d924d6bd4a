// Rank history of one track: a line per time range, rank 1 at the top.
// Data comes from the JSON block the page embeds (no inline script: CSP-friendly).
(function () {
  "use strict";
  var canvas = document.getElementById("rank-history-chart");
  var source = document.getElementById("rank-history-data");
  if (!canvas || !source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  // Okabe–Ito colours: distinguishable with colour-blindness, fine on light and dark.
  var colours = ["#0072B2", "#E69F00", "#009E73"];
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  var ink = dark ? "#ececec" : "#1d1d1b";
  var grid = dark ? "rgba(255,255,255,0.12)" : "rgba(0,0,0,0.1)";
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.dates,
      datasets: data.series.filter(function (s) { return s.points.length; }).map(function (s, i) {
        return { label: s.label, data: s.points, borderColor: colours[i % 3], backgroundColor: colours[i % 3],
                 spanGaps: false, pointRadius: 3,
                 // monotone: the line never bends past a rank held (no curve above rank 1);
                 // clip 4 px: the points on the top and bottom rank are drawn whole
                 tension: 0.2, cubicInterpolationMode: "monotone", clip: 4 };
      })
    },
    options: {
      responsive: true, maintainAspectRatio: false, parsing: { xAxisKey: "x", yAxisKey: "y" },
      scales: {
        x: { type: "category", title: { display: true, text: "Snapshot date", color: ink }, ticks: { color: ink }, grid: { color: grid } },
        y: { reverse: true, min: 1, title: { display: true, text: "Rank (1 = top)", color: ink },
             ticks: { color: ink, precision: 0 }, grid: { color: grid } }
      },
      plugins: { legend: { labels: { color: ink } }, title: { display: false } }
    }
  });
})();
