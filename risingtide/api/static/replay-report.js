/* Charts for the replay report (risingtide/replay_html.py), drawn with uPlot.
   Reads the figures from <script id="replay-data">; fetches nothing. */
(function () {
  "use strict";
  var BAND = { 0: "#cce2d8", 1: "#fff7bf", 2: "#fcd6c3", 3: "#f6d7d2", 4: "#c2c2c2" };
  var LINE = { 1: "#6f5b00", 2: "#b34700", 3: "#d4351c", 4: "#0b0c0c" };
  var WAIT = "#1d70b8", ABANDON = "#4c2c92";

  function drawBands(d) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
      var left = u.bbox.left, right = left + u.bbox.width;
      ctx.save();
      d.bands.forEach(function (b) {
        var x0 = Math.max(left, u.valToPos(b[0], "x", true));
        var x1 = Math.min(right, u.valToPos(b[1], "x", true));
        if (x1 <= x0) { x1 = Math.min(right, x0 + 1); }
        ctx.fillStyle = BAND[b[2]] || BAND[4];
        ctx.fillRect(x0, top, x1 - x0, h);
      });
      ctx.restore();
    };
  }

  function drawMarks(d) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
      var left = u.bbox.left, right = left + u.bbox.width;
      var px = window.devicePixelRatio || 1;
      ctx.save();
      ctx.lineWidth = 1.5 * px;
      d.thresholds.forEach(function (t) {
        var y = u.valToPos(t.value, t.measure === "avg_wait" ? "wait" : "pct", true);
        if (y < top || y > top + h) { return; }
        ctx.strokeStyle = LINE[t.tier] || LINE[4];
        ctx.setLineDash(t.kind === "clear" ? [6 * px, 4 * px] : []);
        ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
        ctx.fillStyle = ctx.strokeStyle;
        ctx.font = (11 * px) + "px system-ui, Arial, sans-serif";
        ctx.fillText((t.measure === "avg_wait" ? "" : "% ") + t.tier + (t.kind === "clear" ? "↓" : "↑"),
          t.measure === "avg_wait" ? left + 3 * px : right - 28 * px, y - 3 * px);
      });
      // Too many to tell apart (a month of flapping): the bands show the tiers, the
      // timeline table lists each change.
      var dense = function (list) { return list.length * 6 * px > right - left; };
      (dense(d.changes) ? [] : d.changes).forEach(function (c) {
        var x = u.valToPos(c[0], "x", true);
        ctx.strokeStyle = "#0b0c0c";
        ctx.setLineDash(c[2] > c[1] ? [] : [3 * px, 3 * px]);
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      });
      ctx.setLineDash([]);
      var s = 5 * px;
      (dense(d.responses) ? [] : d.responses).forEach(function (r) {
        var x = u.valToPos(r[0], "x", true);
        ctx.beginPath(); ctx.moveTo(x - s, top); ctx.lineTo(x + s, top); ctx.lineTo(x, top + 1.6 * s);
        ctx.closePath();
        if (r[1]) { ctx.fillStyle = "#00703c"; ctx.fill(); }
        else { ctx.strokeStyle = "#00703c"; ctx.stroke(); }
      });
      ctx.restore();
    };
  }

  function highest(values, extra) {
    var m = 0;
    values.forEach(function (v) { if (v !== null && v > m) { m = v; } });
    extra.forEach(function (v) { if (v > m) { m = v; } });
    return m > 0 ? m * 1.1 : 1;
  }

  /* 24-hour UK-style times on the x axis, with the date once the span passes a day. */
  function timeLabels(d) {
    var span = d.t[d.t.length - 1] - d.t[0];
    var fmt = uPlot.fmtDate(span > 3 * 86400 ? "{D} {MMM}" : span > 86400 ? "{D} {MMM} {HH}:{mm}" : "{HH}:{mm}");
    return function (u, splits) {
      return splits.map(function (ts) { return fmt(uPlot.tzDate(new Date(ts * 1e3), d.tz)); });
    };
  }

  function chart(d) {
    var el = document.getElementById(d.id);
    if (!el || !d.t.length) { return null; }
    var waitLines = d.thresholds.filter(function (t) { return t.measure === "avg_wait"; })
      .map(function (t) { return t.value; });
    var pctLines = d.thresholds.filter(function (t) { return t.measure !== "avg_wait"; })
      .map(function (t) { return t.value; });
    var waitTop = highest(d.wait, waitLines), pctTop = Math.min(100, highest(d.abandon, pctLines));
    var opts = {
      width: Math.max(240, el.clientWidth),
      height: 300,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), d.tz); },
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: true },
        wait: { range: [0, waitTop] },
        pct: { range: [0, pctTop] }
      },
      axes: [
        { stroke: "#0b0c0c", values: timeLabels(d) },
        { scale: "wait", label: "average wait (min)", stroke: "#0b0c0c" },
        { scale: "pct", side: 1, label: "abandoned (%)", stroke: "#0b0c0c", grid: { show: false } }
      ],
      series: [
        {},
        { label: "average wait (min)", scale: "wait", stroke: WAIT, width: 2, spanGaps: false },
        { label: "abandoned (%)", scale: "pct", stroke: ABANDON, width: 1.5, dash: [6, 3], spanGaps: false }
      ],
      hooks: { drawClear: [drawBands(d)], draw: [drawMarks(d)] }
    };
    var u = new uPlot(opts, [d.t, d.wait, d.abandon], el);
    el.setAttribute("data-rendered", "true");
    return { el: el, u: u };
  }

  var data = JSON.parse(document.getElementById("replay-data").textContent);
  var charts = data.charts.map(chart).filter(function (c) { return c !== null; });
  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(function () {
      charts.forEach(function (c) { c.u.setSize({ width: Math.max(240, c.el.clientWidth), height: 300 }); });
    }, 100);
  });
}());
