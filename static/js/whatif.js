// What-if page: poll the comparison while it runs, then draw the plans side by side.
(function () {
  "use strict";
  var box = document.getElementById("whatif-progress");
  if (box) {
    var step = document.getElementById("whatif-step");
    var poll = function () {
      fetch(box.getAttribute("data-status-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (s) {
          step.textContent = s.step;
          if (s.done) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
        })
        .catch(function () {
          step.textContent = "Lost contact with the server; retrying…";
          window.setTimeout(poll, 3000);
        });
    };
    window.setTimeout(poll, 700);
  }
  ["print-button", "print-button-2"].forEach(function (id) {
    var b = document.getElementById(id);
    if (b) b.addEventListener("click", function () { window.print(); });
  });

  var el = document.getElementById("whatif-chart");
  var src = document.getElementById("whatif-chart-data");
  if (!el || !src || !window.Plotly) return;
  var data = JSON.parse(src.textContent);
  var COLOURS = ["#000000", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"];
  var DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot", "solid"];
  function rgba(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }
  var vars = data.variables, gap = 0.04, h = (1 - gap * (vars.length - 1)) / vars.length;
  var layout = {
    height: 180 * vars.length + 90,
    margin: { l: 70, r: 20, t: 10, b: 40 },
    hovermode: "x unified",
    legend: { orientation: "h", y: -0.06 },
    font: { family: "system-ui, sans-serif", size: 12, color: "#1f2328" },
    xaxis: { type: "date", anchor: "y" + vars.length, gridcolor: "#eaeef2" },
    annotations: [],
  };
  var traces = [];
  vars.forEach(function (v, i) {
    var axis = i === 0 ? "y" : "y" + (i + 1);
    var top = 1 - i * (h + gap);
    layout[i === 0 ? "yaxis" : "yaxis" + (i + 1)] = { domain: [top - h, top], title: { text: data.units[v], font: { size: 11 } }, gridcolor: "#eaeef2", automargin: true };
    layout.annotations.push({ text: "<b>" + data.labels[v] + "</b>", xref: "paper", yref: "paper", x: 0, y: top, xanchor: "left", yanchor: "bottom", showarrow: false });
    Object.keys(data.series).forEach(function (name, k) {
      var s = data.series[name], b = s.variables[v];
      if (!b) return;
      var c = COLOURS[k % COLOURS.length];
      traces.push({ x: s.t, y: b.lo80, xaxis: "x", yaxis: axis, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: name, name: name + " 80 % band (low)" });
      traces.push({ x: s.t, y: b.hi80, xaxis: "x", yaxis: axis, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: k === 0 ? "rgba(140,149,159,0.22)" : rgba(c, 0.07), hoverinfo: "skip", showlegend: false, legendgroup: name, name: name + " 80 % band" });
      traces.push({ x: s.t, y: b.median, xaxis: "x", yaxis: axis, mode: "lines", line: { color: c, width: 2.5, dash: DASHES[k % DASHES.length] }, name: name, legendgroup: name, showlegend: i === 0, hovertemplate: name + ": %{y:.1f}<extra></extra>" });
    });
  });
  window.Plotly.newPlot(el, traces, layout, { responsive: true, displaylogo: false }).then(function () {
    el.setAttribute("data-rendered", "1");
  });
})();
