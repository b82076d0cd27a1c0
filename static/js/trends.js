// Trend charts: each <canvas data-chart data-src> is filled from its JSON endpoint,
// and the same numbers are written into a table for people who cannot see the chart.
(function () {
  "use strict";
  var charts = {};
  var palette = { blue: "#0b57a4", green: "#1e6b34", red: "#9b1c1c", amber: "#a86f00", grey: "#6b7480" };

  function lineOrBar(type, labels, datasets, yTitle, yMax) {
    return {
      type: type,
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        spanGaps: true,
        scales: { y: { beginAtZero: true, max: yMax, title: { display: !!yTitle, text: yTitle } } },
        plugins: { legend: { display: datasets.length > 1 } }
      }
    };
  }

  var builders = {
    "daily-success": function (d) {
      return lineOrBar("line", d.labels, [{ label: "Success rate %", data: d.rate_percent, borderColor: palette.green, backgroundColor: palette.green }], "%", 100);
    },
    "failure-reasons": function (d) {
      var config = lineOrBar("bar", d.labels, [{ label: "Failed or retried attempts (" + d.window + ")", data: d.counts, backgroundColor: palette.red }], "attempts");
      config.options.indexAxis = "y";
      config.options.scales = { x: { beginAtZero: true, ticks: { precision: 0 } } };
      return config;
    },
    "retry-success": function (d) {
      return lineOrBar("line", d.labels, [{ label: "Retries that succeeded %", data: d.rate_percent, borderColor: palette.blue, backgroundColor: palette.blue }], "%", 100);
    },
    "calcom": function (d) {
      var config = lineOrBar("line", d.labels, [
        { label: "Average duration (ms)", data: d.avg_ms, borderColor: palette.blue, backgroundColor: palette.blue, yAxisID: "y" },
        { label: "Slowest (ms)", data: d.max_ms, borderColor: palette.grey, backgroundColor: palette.grey, borderDash: [4, 4], yAxisID: "y" },
        { label: "Error rate %", data: d.error_percent, borderColor: palette.red, backgroundColor: palette.red, yAxisID: "y1" }
      ], "ms");
      config.options.scales.y1 = { position: "right", beginAtZero: true, max: 100, title: { display: true, text: "% errors" }, grid: { drawOnChartArea: false } };
      return config;
    }
  };

  var tableColumns = {
    "daily-success": [["Day", "labels"], ["Success %", "rate_percent"], ["Attempts", "attempts"]],
    "failure-reasons": [["Error code", "labels"], ["Count", "counts"]],
    "retry-success": [["Day", "labels"], ["Retries succeeded %", "rate_percent"], ["Retries", "retries"]],
    "calcom": [["Day", "labels"], ["Calls", "calls"], ["Average ms", "avg_ms"], ["Slowest ms", "max_ms"], ["Errors %", "error_percent"]]
  };

  function renderTable(key, data) {
    var holder = document.querySelector('[data-table-for="' + key + '"]');
    if (!holder) return;
    var columns = tableColumns[key];
    var table = document.createElement("table");
    var head = table.createTHead().insertRow();
    columns.forEach(function (c) { var th = document.createElement("th"); th.scope = "col"; th.textContent = c[0]; head.appendChild(th); });
    var body = table.createTBody();
    (data.labels || []).forEach(function (_, i) {
      var row = body.insertRow();
      columns.forEach(function (c) { var v = data[c[1]][i]; row.insertCell().textContent = v === null || v === undefined ? "—" : v; });
    });
    holder.replaceChildren(data.labels && data.labels.length ? table : document.createTextNode("No data."));
  }

  function renderLive(live) {
    var holder = document.querySelector("[data-live-calcom]");
    if (!holder) return;
    if (!live) { holder.textContent = "Live Cal.com API window: no calls recorded."; return; }
    var pct = live.error_rate === null || live.error_rate === undefined ? "—" : (live.error_rate * 100).toFixed(1) + " %";
    holder.textContent = "Live Cal.com API window: " + live.calls + " calls, error rate " + pct +
      ", p50 " + (live.p50_ms ?? "—") + " ms, p95 " + (live.p95_ms ?? "—") + " ms, rate-limited " + (live.rate_limited ?? 0) + ".";
  }

  function load(canvas, src) {
    var key = canvas.dataset.chart;
    fetch(src, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        if (charts[key]) charts[key].destroy();
        charts[key] = new Chart(canvas, builders[key](data));
        renderTable(key, data);
        if (key === "calcom") renderLive(data.live);
      })
      .catch(function (err) {
        var holder = document.querySelector('[data-table-for="' + key + '"]');
        if (holder) holder.textContent = "Could not load the data (" + err.message + ").";
      });
  }

  function init() {
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) { load(canvas, canvas.dataset.src); });
    var windowSelect = document.querySelector("[data-chart-window]");
    if (windowSelect) {
      windowSelect.addEventListener("change", function () {
        var canvas = document.getElementById("chart-" + windowSelect.dataset.chartWindow);
        var url = new URL(canvas.dataset.src, window.location.href);
        url.searchParams.set("window", windowSelect.value);
        load(canvas, url.toString());
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
