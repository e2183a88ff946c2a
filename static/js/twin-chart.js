// The twin page's trajectories: one plotly figure, one shared time axis, a panel per measure.
// Data come from the page's JSON block (no inline script); colours are Okabe-Ito (colour-blind safe).
(function () {
  "use strict";
  var el = document.getElementById("twin-chart");
  var src = document.getElementById("twin-chart-data");
  if (!el || !src || !window.Plotly) return;
  var data = JSON.parse(src.textContent);
  var COLOURS = { sbp: "#0072B2", dbp: "#E69F00", hba1c: "#009E73", glucose: "#CC79A7", weight: "#56B4E9", ldl: "#0072B2", egfr: "#009E73" };
  var FLAG = "#D55E00";
  function rgba(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }
  var panels = data.panels;
  var rows = panels.length + 1; // a thin strip on top for treatment changes
  var gap = 0.025, strip = 0.05;
  var h = (1 - strip - gap * rows) / panels.length;
  var layout = {
    height: 150 * panels.length + 80,
    margin: { l: 70, r: 20, t: 10, b: 40 },
    showlegend: false,
    hovermode: "closest",
    font: { family: "system-ui, sans-serif", size: 12, color: "#1f2328" },
    xaxis: { type: "date", anchor: "y" + panels.length, showgrid: true, gridcolor: "#eaeef2" },
    shapes: [],
    annotations: [],
  };
  var traces = [];
  panels.forEach(function (panel, i) {
    var axis = i === 0 ? "y" : "y" + (i + 1);
    var key = i === 0 ? "yaxis" : "yaxis" + (i + 1);
    var top = 1 - strip - gap - i * (h + gap);
    layout[key] = { domain: [top - h, top], title: { text: panel.unit, font: { size: 11 } }, gridcolor: "#eaeef2", zeroline: false, automargin: true };
    layout.annotations.push({ text: "<b>" + panel.title + "</b>", xref: "paper", yref: "paper", x: 0, y: top, xanchor: "left", yanchor: "bottom", showarrow: false, font: { size: 12 } });
    panel.variables.forEach(function (v) {
      var c = COLOURS[v] || "#0072B2";
      var label = data.labels[v];
      var f = data.forecast && data.forecast.variables[v];
      if (f) {
        var t = data.forecast.t;
        traces.push({ name: label + " 95 % band (low)", x: t, y: f.lo95, yaxis: axis, mode: "lines", line: { width: 0 }, hoverinfo: "skip" });
        traces.push({ name: label + " 95 % band", x: t, y: f.hi95, yaxis: axis, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: rgba(c, 0.12), hoverinfo: "skip" });
        traces.push({ name: label + " 80 % band (low)", x: t, y: f.lo80, yaxis: axis, mode: "lines", line: { width: 0 }, hoverinfo: "skip" });
        traces.push({ name: label + " 80 % band", x: t, y: f.hi80, yaxis: axis, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: rgba(c, 0.25), hoverinfo: "skip" });
        traces.push({ name: label + " forecast", x: t, y: f.median, yaxis: axis, mode: "lines", line: { color: c, width: 2 }, hovertemplate: label + " forecast %{y:.1f} " + panel.unit + "<br>%{x|%d %b %Y}<extra></extra>" });
      }
      var o = data.observed[v];
      if (o && o.t.length) {
        var ok = { x: [], y: [] }, bad = { x: [], y: [] };
        o.t.forEach(function (when, k) { var d = o.flagged[k] ? bad : ok; d.x.push(when); d.y.push(o.y[k]); });
        traces.push({ name: label + " observed", x: ok.x, y: ok.y, yaxis: axis, mode: "markers", marker: { color: c, size: 5, line: { color: "#fff", width: 0.5 } }, hovertemplate: label + " %{y} " + panel.unit + "<br>%{x|%d %b %Y}<extra></extra>" });
        if (bad.x.length) {
          traces.push({ name: label + " flagged", x: bad.x, y: bad.y, yaxis: axis, mode: "markers", marker: { color: FLAG, size: 10, symbol: "x-thin-open", line: { color: FLAG, width: 2 } }, hovertemplate: "Flagged: " + label + " %{y} " + panel.unit + "<br>%{x|%d %b %Y}<extra></extra>" });
        }
      }
    });
  });
  var stripKey = "yaxis" + (panels.length + 1);
  layout[stripKey] = { domain: [1 - strip, 1], visible: false, range: [-1, 1], fixedrange: true };
  if (data.markers.length) {
    traces.push({
      name: "Treatment changes",
      x: data.markers.map(function (m) { return m.at; }),
      y: data.markers.map(function () { return 0; }),
      yaxis: "y" + (panels.length + 1),
      mode: "markers",
      marker: { symbol: data.markers.map(function (m) { return m.kind === "start" ? "triangle-down" : "triangle-down-open"; }), size: 11, color: "#59636e" },
      text: data.markers.map(function (m) { return m.label; }),
      hovertemplate: "%{text}<br>%{x|%d %b %Y}<extra></extra>",
    });
    data.markers.forEach(function (m) {
      layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: m.at, x1: m.at, y0: 0, y1: 1 - strip, line: { color: "#8c959f", width: 1, dash: m.kind === "start" ? "solid" : "dash" } });
    });
  }
  if (data.forecast) {
    var ref = data.forecast.reference_at;
    layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: ref, x1: ref, y0: 0, y1: 1, line: { color: "#1f2328", width: 1, dash: "dot" } });
  }
  traces.forEach(function (t) { t.xaxis = "x"; });
  window.Plotly.newPlot(el, traces, layout, { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] }).then(function () {
    el.setAttribute("data-rendered", "1");
  });
})();
