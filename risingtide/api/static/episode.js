// An episode's chart: the average and longest wait (uPlot), each tier's threshold as a
// dashed horizontal line, and the time spent in each tier shaded behind. The figures come
// from the JSON beside each chart; the caption and the minute-by-minute table say the same
// in words, so the canvas itself is hidden from screen readers.
"use strict";
(function () {
  const FILL = ["", "rgba(255,221,0,0.22)", "rgba(244,119,56,0.22)", "rgba(212,53,28,0.22)",
    "rgba(148,37,20,0.30)"];
  const LINE = ["#00703c", "#b58800", "#f47738", "#d4351c", "#942514"];

  function wait(v) {
    if (v === null || v === undefined) return "–";
    v = Math.round(v);
    if (v < 60) return v + "s";
    return Math.floor(v / 60) + "m" + (v % 60 ? " " + (v % 60) + "s" : "");
  }

  const UK = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/London", hour: "2-digit",
    minute: "2-digit" });
  const ukTime = (ts) => (ts === null || ts === undefined ? "–" : UK.format(new Date(ts * 1e3)));

  function shadeTiers(bands) {
    return (u) => {
      const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      for (const [from, to, tier] of bands) {
        const x0 = u.valToPos(from, "x", true), x1 = u.valToPos(to, "x", true);
        ctx.fillStyle = FILL[Math.min(tier, FILL.length - 1)];
        ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
      }
      ctx.restore();
    };
  }

  function draw(figure) {
    const data = JSON.parse(figure.querySelector("script[type='application/json']").textContent);
    const box = figure.querySelector(".chart");
    if (!data.x.length || typeof uPlot === "undefined") return;
    const width = Math.max(260, Math.min(box.clientWidth || 800, 1100));
    const series = [
      { label: "Time (UK)", value: (u, v) => ukTime(v) },
      { label: "Average wait", stroke: "#1d70b8", width: 2, value: (u, v) => wait(v) },
      { label: "Longest wait", stroke: "#505a5f", width: 1, dash: [4, 4], value: (u, v) => wait(v) },
    ];
    const columns = [data.x, data.avg_wait, data.longest_wait];
    for (const [tier, value, label] of data.thresholds) {
      series.push({ label: label + " above", stroke: LINE[Math.min(tier, LINE.length - 1)],
        width: 1.5, dash: [10, 5], points: { show: false }, value: () => wait(value) });
      columns.push(data.x.map(() => value));
    }
    new uPlot({
      width: width,
      height: width < 500 ? 220 : 320,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Europe/London"),
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(60, max * 1.1)] } },
      axes: [{ values: (u, vals) => vals.map(ukTime) }, { values: (u, vals) => vals.map(wait), size: 60,
        incrs: [15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600] }],
      series: series,
      hooks: { drawClear: [shadeTiers(data.bands)] },
    }, columns, box);
  }

  document.querySelectorAll("figure.episode-chart").forEach(draw);
})();
