// The wallboard: read-only. It takes a viewer's token out of the address bar at once (so it
// cannot leak through a bookmark, a screenshot of the URL or a Referer) and keeps it only in
// memory, then polls /api/v1/lines every 10 s and redraws the tiles. No buttons, no forms.
"use strict";
(function () {
  const POLL_MS = 10000;
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  if (token !== null) {
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
  }
  const headers = token ? { Authorization: "Bearer " + token } : {};

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Worded as the daemon words it (risingtide/briefing.py duration_text).
  function duration(v) {
    if (v === null || v === undefined) return "not known";
    let s = Math.round(v);
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (h) return m ? h + "h " + m + "m" : h + "h";
    if (m) return s ? m + "m " + s + "s" : m + "m";
    return s + "s";
  }

  function order(lines) {
    return lines.map((l, i) => [l, i]).sort((a, b) => {
      const [x, i] = a, [y, j] = b;
      if ((x.tier > 0) !== (y.tier > 0)) return x.tier > 0 ? -1 : 1;
      if (x.tier > 0) {
        if (x.tier !== y.tier) return y.tier - x.tier;
        const ex = Date.parse(x.entered_at || "") || 0, ey = Date.parse(y.entered_at || "") || 0;
        if (ex !== ey) return ex - ey;
      }
      return i - j;
    }).map((p) => p[0]);
  }

  function tile(l) {
    const s = l.stats || {};
    const tier = Math.min(l.tier, 4);
    const li = el("li", { class: "tile t" + tier, id: "tile-" + l.line, "data-line": l.line });
    li.appendChild(el("h2", { class: "name" }, l.name));
    const name = l.tier_name.charAt(0).toUpperCase() + l.tier_name.slice(1);
    li.appendChild(el("p", { class: "tier" }, "Tier " + l.tier + " · " + name + (l.stale ? " · figures out of date" : "")));
    const dl = el("dl");
    const wait = el("div");
    const over = s.avg_wait !== null && s.avg_wait !== undefined && s.avg_wait > l.target_wait;
    const dd = el("dd", { class: "wait" + (over ? " over" : "") }, duration(s.avg_wait) + " ");
    dd.appendChild(el("span", { class: "target" }, "target " + duration(l.target_wait)));
    wait.append(el("dt", {}, "Wait"), dd);
    const agents = el("div");
    const need = el("dd", { class: "needed" }, l.agents_needed === null ? "not known" : String(l.agents_needed));
    if (s.agents_staffed !== null && s.agents_staffed !== undefined) {
      need.append(" ", el("span", { class: "target" }, "staffed " + s.agents_staffed));
    }
    agents.append(el("dt", {}, "Agents needed"), need);
    dl.append(wait, agents);
    li.appendChild(dl);
    return li;
  }

  async function refresh() {
    const problem = document.getElementById("problem");
    try {
      const r = await fetch("/api/v1/lines", { credentials: "same-origin", headers, referrerPolicy: "no-referrer" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const body = await r.json();
      document.getElementById("tiles").replaceChildren(...order(body.lines).map(tile));
      // The daemon's "now" (its latest figures' time plus their age), on the UK clock.
      const timed = body.lines.find((l) => l.stats && l.stats.at && l.stats_age !== null);
      const now = timed ? Date.parse(timed.stats.at) + timed.stats_age * 1000 : Date.now();
      document.getElementById("updated").textContent = "Updated at " +
        new Date(now).toLocaleTimeString("en-GB", { timeZone: "Europe/London", hour: "2-digit", minute: "2-digit" });
      problem.hidden = true;
    } catch (e) {
      problem.textContent = "Cannot reach Rising Tide: these figures may be old.";
      problem.hidden = false;
    }
  }

  refresh();
  setInterval(refresh, POLL_MS);
})();
