// The duty board: polls /api/v1/board every 5 s (the lines, raised first, each with its
// briefing: why, since when, what next and to whom, who has been told, agents needed) and
// updates each line's row in place, so keyboard focus and open forms survive an update.
// With more than COLLAPSE_AT lines the calm ones fold away under a "N calm lines" summary. Changes (acknowledge, silence, declare)
// call the JSON API with the session's CSRF value from GET /api/v1/session. The "On duty"
// panel comes rendered by the daemon and is refreshed from /api/v1/groups at the same pace;
// the "Coming up" panel (the demand calendar) from /api/v1/demand once a minute.
"use strict";
(function () {
  const POLL_MS = 5000;
  const COLLAPSE_AT = 20;          // more lines than this: calm lines are collapsed
  const UK = "Europe/London";      // every time on the board is the UK's wall clock
  const TREND_MS = 60 * 60 * 1000;  // the sparkline keeps the last hour
  const rows = new Map();           // line id -> {tr, cells, msg, buttons}
  const history = new Map();        // line id -> [{t, v}] average wait, from this page's polls
  const lastTier = new Map();       // line id -> tier seen at the previous poll
  const lines = new Map();          // line id -> the latest JSON for it
  let session = { authenticated: false };
  let pollTimer = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function duration(v) {
    if (v === null || v === undefined) return "not known";
    v = Math.max(0, Math.round(v));
    if (v < 60) return v + "s";
    const h = Math.floor(v / 3600), m = Math.floor((v % 3600) / 60), s = v % 60;
    if (h >= 24) return Math.floor(h / 24) + "d " + (h % 24) + "h";
    if (h) return h + "h " + m + "m";
    return m + "m " + s + "s";
  }

  function clockTime(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString("en-GB", { timeZone: UK, day: "numeric", month: "short",
      hour: "2-digit", minute: "2-digit" });
  }

  function tierText(l) { return "Tier " + l.tier + " (" + l.tier_name + ")"; }

  // The daemon's "now": its latest stats' time plus their age (the daemon may run on a
  // clock other than this browser's). Without stats, this browser's clock.
  function daemonNow(l) {
    if (l.stats && l.stats.at && l.stats_age !== null) {
      return Date.parse(l.stats.at) + l.stats_age * 1000;
    }
    return Date.now();
  }

  function announce(text) {
    const region = $("announce");
    region.textContent = "";
    // A fresh text node after a tick, so screen readers announce repeats too.
    setTimeout(() => { region.textContent = text; }, 50);
  }

  // ------------------------------------------------------------------ who is signed in
  async function loadSession() {
    try {
      const r = await fetch("/api/v1/session", { credentials: "same-origin" });
      session = r.ok ? await r.json() : { authenticated: false, users_configured: true };
    } catch (e) {
      session = { authenticated: false };
    }
    const who = $("who");
    who.replaceChildren();
    if (session.authenticated) {
      who.textContent = "Signed in as " + session.name + " ";
      if (session.csrf_token) {
        // A POST with the session's CSRF value: a link could sign anyone out from elsewhere.
        const form = el("form", { method: "post", action: "/logout", class: "sign-out" });
        form.append(el("input", { type: "hidden", name: "csrf_token", value: session.csrf_token }),
          el("button", { type: "submit", class: "link-button" }, "Sign out"));
        who.appendChild(form);
      }
    } else {
      who.appendChild(el("a", { href: "/login?next=/" }, "Sign in"));
    }
  }

  function mayChange() {
    return session.authenticated && ["duty_manager", "admin"].includes(session.role) &&
      Boolean(session.csrf_token);
  }

  // ------------------------------------------------------------------ one line's row
  const COLUMNS = [
    ["tier", "Tier and why"], ["time", "Since"], ["avg", "Average wait"],
    ["longest", "Longest wait"], ["waiting", "Calls waiting"], ["agents", "Agents"],
    ["abandoned", "Abandoned"], ["trend", "Average wait trend"], ["status", "Status"],
    ["actions", "Actions"],
  ];

  // A button's visible word, and the line's name for screen readers and voice control
  // ("Silence Council Tax"), so six rows never give six identical button names.
  function named(button, word, lineName) {
    button.replaceChildren(word, el("span", { class: "visually-hidden" }, " " + lineName));
  }

  function makeRow(l) {
    const tr = el("tr", { id: "line-" + l.line, "data-line": l.line });
    const th = el("th", { scope: "row" });
    th.appendChild(el("span", { class: "line-name" }, l.name));
    tr.appendChild(th);
    const cells = {};
    for (const [key, label] of COLUMNS) {
      const td = el("td", { "data-label": label, class: "col-" + key });
      const inner = el("div");
      td.appendChild(inner);
      tr.appendChild(td);
      cells[key] = inner;
      if (["avg", "longest", "waiting", "agents", "abandoned", "time"].includes(key)) td.classList.add("num");
    }
    // Actions: built once, so a button keeps focus across updates.
    const box = el("div", { class: "actions" });
    const ack = el("button", { type: "button", class: "ack" });
    const silence = el("button", { type: "button", class: "secondary silence" });
    const declare = el("button", { type: "button", class: "secondary declare" });
    th.firstChild.id = "line-" + l.line + "-name";
    ack.addEventListener("click", () => acknowledge(l.line));
    silence.addEventListener("click", () => openDialog("silence", l.line));
    declare.addEventListener("click", () => openDialog("declare", l.line));
    box.append(ack, silence, declare);
    const signIn = el("a", { href: "/login?next=/", class: "sign-in" }, "Sign in to acknowledge");
    signIn.appendChild(el("span", { class: "visually-hidden" }, " " + l.name));
    const cannot = el("p", { class: "note cannot" }, "");
    const msg = el("p", { class: "row-message", tabindex: "-1", "aria-live": "polite" });
    cells.actions.append(box, signIn, cannot, msg);
    return { tr, cells, msg, buttons: { box, ack, silence, declare, signIn, cannot } };
  }

  function sparkline(id, now) {
    const points = (history.get(id) || []).filter((p) => now - p.t <= TREND_MS);
    history.set(id, points);
    const box = el("div");
    const known = points.filter((p) => p.v !== null);
    if (known.length < 2) {
      box.appendChild(el("span", { class: "spark-text" }, "Not enough updates yet"));
      return box;
    }
    const target = lines.get(id).target_wait;
    const vals = known.map((p) => p.v);
    const top = Math.max(...vals, target) * 1.1 || 1;
    const t0 = known[0].t, span = Math.max(known[known.length - 1].t - t0, 1);
    const W = 120, H = 30;
    const pts = known.map((p) => ((p.t - t0) / span * W).toFixed(1) + "," +
      (H - p.v / top * H).toFixed(1)).join(" ");
    const minutes = Math.max(1, Math.round(span / 60000));
    const first = vals[0], last = vals[vals.length - 1];
    const trend = last > first ? "rising" : last < first ? "falling" : "steady";
    const label = "Average wait over the last " + minutes + " minute" + (minutes === 1 ? "" : "s") +
      ": " + trend + ", from " + duration(first) + " to " + duration(last) + ", highest " +
      duration(Math.max(...vals)) + ". Target " + duration(target) + ".";
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(NS, "title");
    title.textContent = label;
    const tline = document.createElementNS(NS, "line");
    const ty = (H - target / top * H).toFixed(1);
    tline.setAttribute("x1", "0"); tline.setAttribute("x2", String(W));
    tline.setAttribute("y1", ty); tline.setAttribute("y2", ty);
    const poly = document.createElementNS(NS, "polyline");
    poly.setAttribute("points", pts);
    svg.append(title, tline, poly);
    box.appendChild(svg);
    box.appendChild(el("span", { class: "spark-text" }, trend + ", now " + duration(last)));
    return box;
  }

  function names(list) {
    if (!list.length) return "nobody";
    return list.length === 1 ? list[0] : list.slice(0, -1).join(", ") + " and " + list[list.length - 1];
  }

  const OUTCOMES = { ok: "sent", retry: "retrying", dead: "failed" };

  function statusItems(l) {
    const items = [];
    const b = l.briefing || {};
    if (!l.open) items.push("Closed (out of hours): not checked");
    if (l.stale) items.push("Figures are out of date" + (l.stale_since ? " since " + clockTime(l.stale_since) : "") + ": tier held");
    if (l.tier > 0) {
      if (l.acknowledged && l.acknowledgement) {
        items.push("Acknowledged by " + l.acknowledgement.by + " at " + clockTime(l.acknowledgement.at) +
          (b.ack_expires_text ? ", until the handover at " + b.ack_expires_text : "") +
          (l.acknowledgement.note ? " – " + l.acknowledgement.note : ""));
      } else if (l.declaration && l.declaration.level >= l.tier) {
        items.push("Declared by " + l.declaration.by + ": counts as acknowledged");
      } else {
        items.push("Not acknowledged");
      }
      if (b.next) {
        items.push({ cls: "next", text: "Next: " + b.next.what + (b.next.overdue ? " due now" : " at " + b.next.at_text) +
          ", to " + names(b.next.to) });
      } else if (!l.acknowledged && !l.silence && !(l.declaration && l.declaration.level >= l.tier)) {
        items.push({ cls: "next", text: "No reminder or escalation is set up for this tier" });
      }
      const told = b.notified || [];
      items.push({ cls: "notified", text: told.length
        ? "Told: " + told.map((n) => n.title + " at " + n.at_text + " to " + names(n.to) +
            " (" + (OUTCOMES[n.outcome] || n.outcome) + ")").join("; ")
        : "Told: nobody yet" });
    } else if (l.acknowledgement && l.acknowledged) {
      items.push("Acknowledged by " + l.acknowledgement.by);
    }
    if (l.silence) items.push("Silenced by " + l.silence.by + " until " + clockTime(l.silence.until) + ": " + l.silence.reason);
    if (l.declaration) items.push("Tier " + l.declaration.level + " declared by " + l.declaration.by +
      " until " + clockTime(l.declaration.until) + ": " + l.declaration.reason);
    const on = b.switched_on ? b.switched_on.map((x) => x.title) : l.live_switches;
    items.push({ cls: "switched", text: on.length ? "Switched on: " + on.join(", ") : "Nothing switched on" });
    if (l.last_error) items.push("Source problem: " + l.last_error);
    return items;
  }

  function render(l, now) {
    let row = rows.get(l.line);
    if (!row) {
      row = makeRow(l);
      rows.set(l.line, row);
    }
    const c = row.cells;
    const s = l.stats || {};
    const brief = l.briefing || {};
    const badge = el("span", { class: "tier t" + Math.min(l.tier, 4) }, tierText(l));
    c.tier.replaceChildren(badge);
    if (brief.cause) c.tier.appendChild(el("p", { class: "cause" }, "Why: " + brief.cause));
    const entered = l.entered_at ? Date.parse(l.entered_at) : null;
    const held = entered === null ? "–" : duration((daemonNow(l) - entered) / 1000);
    c.time.textContent = l.tier > 0 && brief.since_text ? "since " + brief.since_text + " (" + held + ")" : held;
    const over = s.avg_wait !== null && s.avg_wait !== undefined && s.avg_wait > l.target_wait;
    c.avg.replaceChildren(el("span", over ? { class: "over" } : {},
      duration(s.avg_wait) + (over ? " (over target " : " (target ") + duration(l.target_wait) + ")"));
    c.longest.textContent = duration(s.longest_wait);
    c.waiting.textContent = s.calls_waiting ?? "not known";
    c.agents.replaceChildren(el("span", { class: "free" }, "Free: " + (s.agents_available ?? "not known")));
    if (brief.agents_needed !== undefined && brief.agents_needed !== null) {
      const gap = brief.agents_gap;
      const pct = brief.agents_gap_percent ? ", " + brief.agents_gap_percent : "";
      c.agents.append(el("br"), el("span", { class: "needed" + (gap > 0 ? " over" : "") }, "Needed: " + brief.agents_needed +
        (gap === null || gap === undefined ? "" : gap > 0 ? " (" + gap + " short" + pct + ")" : " (enough staffed)")));
      if (brief.predicted_wait_text) {
        c.agents.append(el("br"), el("span", { class: "predicted" }, "Predicted wait: " + brief.predicted_wait_text));
      }
    }
    c.abandoned.textContent = s.abandon_rate == null ? "not known" : (s.abandon_rate * 100).toFixed(1) + "%";
    c.trend.replaceChildren(sparkline(l.line, now));
    const ul = el("ul", { class: "status-list" });
    for (const item of statusItems(l)) {
      ul.appendChild(typeof item === "string" ? el("li", {}, item) : el("li", { class: item.cls }, item.text));
    }
    c.status.replaceChildren(ul);
    // Actions for who is signed in.
    const b = row.buttons;
    const can = mayChange();
    b.box.hidden = !can;
    b.signIn.hidden = session.authenticated;
    b.cannot.hidden = !session.authenticated || can;
    b.cannot.textContent = session.authenticated && !can
      ? "Only a duty manager can acknowledge, silence or declare." : "";
    b.ack.hidden = !(l.tier > 0 && !l.acknowledged);
    named(b.ack, "Acknowledge tier " + l.tier, "on " + l.name);
    named(b.silence, l.silence ? "Lift silence" : "Silence", l.silence ? "on " + l.name : l.name);
    named(b.declare, l.declaration ? "End declaration" : "Declare", l.declaration ? "on " + l.name : "a tier on " + l.name);
    return row.tr;
  }

  // ------------------------------------------------------------------ who is on duty
  // Worded as the daemon words it (risingtide/api/duty.py): times in the rota's zone, with
  // the weekday when the change is not on the same day.
  function dutyNote(g, at) {
    if (!g.next_change) return "";
    const fmt = (options) => new Intl.DateTimeFormat("en-GB", { timeZone: g.timezone, ...options });
    const day = fmt({ year: "numeric", month: "2-digit", day: "2-digit" });
    const change = new Date(g.next_change), now = new Date(at);
    let when = fmt({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(change);
    if (day.format(change) !== day.format(now)) when = fmt({ weekday: "short" }).format(change) + " " + when;
    return g.by_rota ? "(until " + when + ")" : "(gap in the rota until " + when + ")";
  }

  async function refreshDuty() {
    const panel = $("on-duty"), list = $("on-duty-list");
    if (!panel || !list) return;
    try {
      const r = await fetch("/api/v1/groups", { credentials: "same-origin" });
      if (!r.ok) return;  // the lines' poll says when the daemon cannot be reached
      const body = await r.json();
      const items = [];
      for (const g of body.groups) {
        if (!g.paged_by.length) continue;  // the panel shows the groups responses page
        const li = el("li", { "data-group": g.group });
        li.append(el("span", { class: "group-name" }, g.name.charAt(0).toUpperCase() + g.name.slice(1) + ":"),
          " ", el("span", { class: "who" }, g.on_duty.map((p) => p.name).join(", ")));
        const note = dutyNote(g, body.at);
        if (note) li.append(" ", el("span", { class: "until" }, note));
        items.push(li);
      }
      // Replace the list only when it reads differently, so nothing flickers.
      const text = (nodes) => nodes.map((n) => n.dataset.group + "|" + n.textContent).join("\n");
      if (text(items) !== text(Array.from(list.children))) list.replaceChildren(...items);
      panel.hidden = items.length === 0;
    } catch (e) {
      /* keep what is shown; the lines' poll reports a daemon it cannot reach */
    }
  }

  // ------------------------------------------------------------------ coming up
  // Worded as the daemon words it (risingtide/api/demand.py, demand_rows): UK times, with
  // the day when not today; each event once, with the names of its lines.
  function ukWhen(iso, now) {
    const fmt = (options) => new Intl.DateTimeFormat("en-GB", { timeZone: UK, ...options });
    const day = fmt({ year: "numeric", month: "2-digit", day: "2-digit" });
    const t = new Date(iso), hm = fmt({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(t);
    if (day.format(t) === day.format(now)) return hm;
    return fmt({ weekday: "short" }).format(t) + " " + fmt({ day: "2-digit" }).format(t) + " " +
      fmt({ month: "short" }).format(t) + " " + hm;
  }

  function demandDoes(e, now) {
    const parts = [];
    if (e.multiply !== null) parts.push(e.multiply + "× the usual calls");
    else if (e.calls_per_hour !== null) parts.push(e.calls_per_hour + " calls an hour expected");
    if (e.prearm_level !== null) parts.push("tier " + e.prearm_level + " pre-armed from " + ukWhen(e.prearm_from, now));
    if (e.responses.length) parts.push(e.responses.join(", ") + " at " + ukWhen(e.responses_at, now));
    return parts.join("; ");
  }

  let demandPolls = 0;
  async function refreshDemand() {
    const panel = $("coming-up"), list = $("coming-up-list");
    if (!panel || !list || demandPolls++ % 12 !== 11) return;  // once a minute
    try {
      const r = await fetch("/api/v1/demand?days=7", { credentials: "same-origin" });
      if (!r.ok) return;
      const body = await r.json(), now = new Date(body.at), found = new Map();
      for (const line of body.lines) {
        for (const e of line.events) {
          const key = e.name + "|" + e.start;
          if (!found.has(key)) found.set(key, { e, lines: [] });
          found.get(key).lines.push(line.name);
        }
      }
      const rows = Array.from(found.values()).sort((a, b) => new Date(a.e.start) - new Date(b.e.start));
      const items = rows.map(({ e, lines }) => {
        const when = e.running ? "under way until " + ukWhen(e.end, now)
          : ukWhen(e.start, now) + " to " + ukWhen(e.end, now);
        const does = demandDoes(e, now);
        const li = el("li", {});
        li.append(el("span", { class: "group-name" }, e.name),
          " (" + lines.join(", ") + "): " + when + (does ? "; " + does : ""));
        return li;
      });
      const text = (nodes) => nodes.map((n) => n.textContent).join("\n");
      if (text(items) !== text(Array.from(list.children))) list.replaceChildren(...items);
      panel.hidden = items.length === 0;
    } catch (e) {
      /* keep what is shown */
    }
  }

  // ------------------------------------------------------------------ polling
  async function refresh() {
    const problem = $("problem");
    try {
      const r = await fetch("/api/v1/board", { credentials: "same-origin" });
      if (r.status === 401) {
        problem.textContent = "Your sign-in has ended. Sign in again to see the lines.";
        problem.hidden = false;
        return;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      const body = await r.json();
      const now = Date.now();
      const changes = [];
      const order = [];
      const calm = [];
      const collapse = body.lines.length > COLLAPSE_AT;
      for (const l of body.lines) {
        lines.set(l.line, l);
        const h = history.get(l.line) || [];
        h.push({ t: now, v: l.stats ? l.stats.avg_wait : null });
        history.set(l.line, h);
        const before = lastTier.get(l.line);
        if (before !== undefined && before !== l.tier) {
          changes.push(l.name + " " + (l.tier > before ? "rose" : "fell") + " to " + tierText(l) + ".");
        }
        lastTier.set(l.line, l.tier);
        (collapse && l.tier === 0 ? calm : order).push(render(l, now));
      }
      place($("lines"), order);
      place($("calm-lines"), calm);
      const folded = $("calm");
      folded.hidden = !collapse;
      $("calm-count").textContent = calm.length + " calm line" + (calm.length === 1 ? "" : "s");
      if (changes.length) announce(changes.join(" "));
      const at = body.at ? new Date(body.at) : new Date();  // the daemon's clock, in UK time
      $("updated").textContent = "Updated at " + at.toLocaleTimeString("en-GB", { timeZone: UK }) +
        ". " + body.lines.length + " line" + (body.lines.length === 1 ? "" : "s") + ".";
      problem.hidden = true;
    } catch (e) {
      problem.textContent = "Cannot reach Rising Tide. The board will try again in 5 seconds.";
      problem.hidden = false;
    }
  }

  // Put the rows in the server's order (raised first); only touch the table when the order
  // changed, and give focus back to a button that moved with its row.
  function place(tbody, wanted) {
    const current = Array.from(tbody.children);
    if (current.length === wanted.length && current.every((tr, i) => tr === wanted[i])) return;
    const focused = document.activeElement;
    tbody.replaceChildren(...wanted);
    if (focused && focused !== document.activeElement && focused.isConnected) focused.focus();
  }

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => { await Promise.all([refresh(), refreshDuty(), refreshDemand()]); schedule(); }, POLL_MS);
  }

  // ------------------------------------------------------------------ changes
  async function send(method, line, what, body) {
    const r = await fetch("/api/v1/lines/" + encodeURIComponent(line) + "/" + what, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf_token || "" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let answer = {};
    try { answer = await r.json(); } catch (e) { /* not JSON: keep the status */ }
    if (!r.ok) {
      if (r.status === 401) await loadSession();
      return { ok: false, error: answer.error || "the daemon answered " + r.status };
    }
    if (answer.line) lines.set(line, answer.line);
    return { ok: true, answer };
  }

  function rowMessage(line, text, isError) {
    const row = rows.get(line);
    if (!row) return;
    row.msg.textContent = text;
    row.msg.className = "row-message" + (isError ? " error-message" : "");
  }

  async function acknowledge(line) {
    const l = lines.get(line);
    const result = await send("POST", line, "ack", { note: "" });
    if (result.ok) {
      const by = result.answer.line.acknowledgement ? result.answer.line.acknowledgement.by : session.name;
      rowMessage(line, "You acknowledged " + tierText(result.answer.line) + " on " + l.name + " (recorded as " + by + ").", false);
    } else {
      rowMessage(line, "Error: could not acknowledge " + l.name + ": " + result.error + ".", true);
    }
    await refresh();
    rows.get(line).msg.focus();
  }

  // Silence and declare: one dialog each, filled in for the line.
  let dialogLine = null;

  function setError(form, text, field) {
    const box = form.querySelector(".form-error");
    for (const input of form.querySelectorAll("input, select")) {
      input.removeAttribute("aria-invalid");
      const hint = input.id + "-hint";
      input.setAttribute("aria-describedby", document.getElementById(hint) ? hint : "");
      if (!input.getAttribute("aria-describedby")) input.removeAttribute("aria-describedby");
    }
    box.hidden = !text;
    box.textContent = text ? "Error: " + text : "";
    if (field) {
      field.setAttribute("aria-invalid", "true");
      if (!box.id) box.id = form.id + "-error";
      field.setAttribute("aria-describedby", ((field.getAttribute("aria-describedby") || "") + " " + box.id).trim());
      field.focus();
    }
  }

  async function openDialog(kind, line) {
    const l = lines.get(line);
    // A second press lifts a silence / ends a declaration: no form needed.
    if (kind === "silence" && l.silence) return lift(line, "silence", "Lifted the silence on ");
    if (kind === "declare" && l.declaration) return lift(line, "override", "Ended the declared tier on ");
    dialogLine = line;
    const dialog = $(kind + "-dialog");
    const form = dialog.querySelector("form");
    dialog.querySelector(".line-name").textContent = l.name;
    setError(form, "");
    if (kind === "declare") {
      const select = $("declare-level");
      select.replaceChildren();
      for (let n = 1; n <= l.max_tier; n++) select.appendChild(el("option", { value: String(n) }, "Tier " + n));
    }
    dialog.showModal();
  }

  async function lift(line, what, done) {
    const l = lines.get(line);
    const result = await send("DELETE", line, what);
    rowMessage(line, result.ok ? done + l.name + "." : "Error: " + result.error + ".", !result.ok);
    await refresh();
    rows.get(line).msg.focus();
  }

  async function submitDialog(kind, event) {
    event.preventDefault();
    const form = event.target;
    const line = dialogLine;
    const reason = form.querySelector("[name=reason]");
    const forField = form.querySelector("[name=for]");
    if (!reason.value.trim()) return setError(form, "Enter a reason.", reason);
    if (!forField.value.trim()) return setError(form, "Enter how long, for example 1h.", forField);
    const body = { for: forField.value.trim(), reason: reason.value.trim() };
    if (kind === "declare") body.level = Number($("declare-level").value);
    const result = await send("POST", line, kind === "silence" ? "silence" : "override", body);
    if (!result.ok) {
      const field = /"for"|duration|days|longer/.test(result.error) ? forField
        : /tier|level/.test(result.error) ? $("declare-level") : reason;
      return setError(form, result.error.charAt(0).toUpperCase() + result.error.slice(1) + ".", field);
    }
    $(kind + "-dialog").close();
    const l = result.answer.line;
    rowMessage(line, kind === "silence"
      ? "Silenced " + l.name + " until " + clockTime(l.silence && l.silence.until) + "."
      : "Declared tier " + body.level + " on " + l.name + " until " + clockTime(l.declaration && l.declaration.until) + ".", false);
    await refresh();
    rows.get(line).msg.focus();
  }

  for (const kind of ["silence", "declare"]) {
    const dialog = $(kind + "-dialog");
    dialog.querySelector("form").addEventListener("submit", (e) => submitDialog(kind, e));
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      const row = rows.get(dialogLine);
      if (row) row.buttons[kind].focus();
    });
  }

  // The last hour from the daemon's own samples (GET /api/v1/lines/{line}/trend), so the
  // sparkline is drawn on first load; the daemon's times are mapped onto this browser's clock.
  async function seedTrends() {
    await Promise.all(Array.from(lines.keys()).map(async (id) => {
      try {
        const r = await fetch("/api/v1/lines/" + encodeURIComponent(id) + "/trend",
          { credentials: "same-origin" });
        if (!r.ok) return;
        const body = await r.json();
        const shift = Date.now() - Date.parse(body.now);
        const h = history.get(id) || [];
        const first = h.length ? h[0].t : Infinity;
        const older = body.samples.map((s) => ({ t: Date.parse(s.at) + shift, v: s.avg_wait }))
          .filter((p) => p.t < first);
        history.set(id, older.concat(h));
        const row = rows.get(id);
        if (row) row.cells.trend.replaceChildren(sparkline(id, Date.now()));
      } catch (e) { /* the trend fills from this page's own updates instead */ }
    }));
  }

  (async function start() {
    await loadSession();
    await refresh();
    await seedTrends();
    schedule();
  })();
})();
