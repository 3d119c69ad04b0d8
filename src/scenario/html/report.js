"use strict";
// Draws the csi-events visual report from the run's JSON (the `run` element): an index, then
// per scenario a time chart (node lanes with attachment spans, migration windows with their
// deadline, claim lanes with event markers, faults, restarts, problems) and tables. Nothing is
// fetched; everything comes from that JSON (docs/scenarios.md §5).
(function () {
  var run = JSON.parse(document.getElementById("run").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var UNITS = { h: 3600e9, m: 60e9, s: 1e9, ms: 1e6, us: 1e3, "\u00b5s": 1e3, "\u03bcs": 1e3, ns: 1 };

  // Go duration text -> nanoseconds.
  function ns(text) {
    if (!text || text === "0" || text === "0s") return 0;
    var total = 0, re = /([0-9.]+)(h|ms|m|s|us|\u00b5s|\u03bcs|ns)/g, m;
    while ((m = re.exec(text)) !== null) total += parseFloat(m[1]) * UNITS[m[2]];
    return text.charAt(0) === "-" ? -total : total;
  }
  // Nanoseconds -> Go's Duration.String().
  function go(n) {
    n = Math.round(n);
    if (n === 0) return "0s";
    var neg = n < 0; if (neg) n = -n;
    var out;
    if (n < 1e9) {
      var unit = n < 1e3 ? ["ns", 1] : n < 1e6 ? ["\u00b5s", 1e3] : ["ms", 1e6];
      out = trim(n / unit[1]) + unit[0];
    } else {
      var secs = n / 1e9, h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60);
      var s = secs - h * 3600 - m * 60;
      out = trim(s) + "s";
      if (h > 0 || m > 0) out = m + "m" + out;
      if (h > 0) out = h + "h" + out;
    }
    return (neg ? "-" : "") + out;
  }
  function trim(x) { return String(Math.round(x * 1e9) / 1e9); }

  function h(tag, attrs) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) if (attrs[k] !== undefined && attrs[k] !== null) el.setAttribute(k, attrs[k]);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    for (var k in attrs || {}) if (attrs[k] !== undefined && attrs[k] !== null) el.setAttribute(k, attrs[k]);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, child) {
    if (child === undefined || child === null) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(el, c); }); return; }
    el.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function events(sc) {
    var out = [];
    sc.steps.forEach(function (st, i) { (st.events || []).forEach(function (e) { out.push({ e: e, step: i }); }); });
    return out;
  }
  function outcome(sc) {
    if (sc.passed) return "passed";
    return sc.snapshotDiff && sc.failures.length === 1 ? "changed" : "failed";
  }
  var LABEL = { passed: "passed", failed: "failed", changed: "snapshot changed" };

  // Tooltip shown on hover and on keyboard focus.
  var tip = h("div", { id: "tip", role: "tooltip" });
  document.body.appendChild(tip);
  function showTip(el) {
    tip.textContent = el.getAttribute("data-tip");
    tip.style.display = "block";
    var r = el.getBoundingClientRect();
    var left = Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - 540);
    tip.style.left = Math.max(4, left) + "px";
    tip.style.top = (window.scrollY + r.bottom + 6) + "px";
  }
  function hideTip() { tip.style.display = "none"; }
  function tipped(el, text) {
    el.setAttribute("data-tip", text);
    el.setAttribute("tabindex", "0");
    el.setAttribute("aria-label", text);
    el.addEventListener("mouseenter", function () { showTip(el); });
    el.addEventListener("mouseleave", hideTip);
    el.addEventListener("focus", function () { showTip(el); });
    el.addEventListener("blur", hideTip);
    return el;
  }

  function chart(sc) {
    var tl = sc.timeline;
    if (!tl) return h("p", { class: "none" }, "not run: no timeline");
    var evs = events(sc);
    var end = ns(tl.end);
    evs.forEach(function (x) { end = Math.max(end, ns(x.e.at)); });
    tl.migrations.forEach(function (m) { if (m.end) end = Math.max(end, ns(m.end)); });
    tl.restarts.forEach(function (r) { end = Math.max(end, ns(r.up)); });
    if (end <= 0) end = 1e9;
    var W = 1100, L = 170, R = 24, plot = W - L - R;
    function x(t) { return L + Math.min(1, Math.max(0, t / end)) * plot; }
    var claims = tl.claims.slice();
    evs.forEach(function (x) { var c = x.e.namespace + "/" + x.e.name; if (claims.indexOf(c) < 0) claims.push(c); });
    var vols = tl.volumes.map(function (v) { return v.id; });
    tl.attachments.forEach(function (a) { if (vols.indexOf(a.volume) < 0) vols.push(a.volume); });
    var sub = Math.max(1, vols.length), subH = 10;
    var y = 34, rows = [], g = s("g", {}), over = s("g", {}), top = s("g", {});
    // Steps row: a tick per step, problems marked.
    var stepsY = y; y += 22;
    // Faults row: one bar per rule.
    var faultY = y; if (tl.faults.length) y += 14 * tl.faults.length + 6;
    tl.nodes.forEach(function (n, i) {
      var hgt = Math.max(24, 8 + subH * sub);
      rows.push({ kind: "node", name: n.name, y: y, h: hgt, lane: n });
      y += hgt + 4;
    });
    function laneOf(node, t) {
      var best = null;
      rows.forEach(function (r) {
        if (r.kind !== "node" || r.name !== node) return;
        if (ns(r.lane.added) <= t + 1) best = r;
      });
      return best || rows.filter(function (r) { return r.kind === "node" && r.name === node; })[0] || null;
    }
    var claimY = {};
    claims.forEach(function (c) { claimY[c] = y; rows.push({ kind: "claim", name: c, y: y, h: 24 }); y += 28; });
    var H = y + 6;
    var svg = s("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "timeline of " + sc.name });
    // Axis.
    var axis = s("g", { class: "axis" });
    var step = nice(end / 8);
    for (var t = 0; t <= end + 1; t += step) {
      axis.appendChild(s("line", { x1: x(t), x2: x(t), y1: 22, y2: H - 4 }));
      axis.appendChild(s("text", { x: x(t), y: 16, "text-anchor": "middle" }, go(t)));
    }
    svg.appendChild(axis);
    svg.appendChild(s("text", { x: 8, y: stepsY + 15, class: "label" }, "steps"));
    sc.steps.forEach(function (st) { svg.appendChild(s("line", { class: "step-tick", x1: x(ns(st.at)), x2: x(ns(st.at)), y1: stepsY + 4, y2: stepsY + 18 })); });
    // Lanes.
    rows.forEach(function (r) {
      var from = r.kind === "node" ? ns(r.lane.added) : 0;
      var to = r.kind === "node" && r.lane.deleted ? ns(r.lane.deleted) : end;
      var lane = s("g", { "data-kind": "lane", "data-lane": r.kind, "data-name": r.name });
      lane.appendChild(s("rect", { class: "lane-bg " + r.kind, x: x(from), y: r.y, width: Math.max(1, x(to) - x(from)), height: r.h, rx: 3 }));
      lane.appendChild(s("text", { x: 8, y: r.y + 15, class: "label" }, (r.kind === "node" ? "" : "\u25c7 ") + r.name));
      if (r.kind === "node" && r.lane.deleted) {
        var dx = x(ns(r.lane.deleted));
        lane.appendChild(tipped(s("path", { class: "gone", d: "M" + (dx - 5) + " " + (r.y + 4) + "l10 10m0 -10l-10 10" }),
          r.name + " deleted at " + r.lane.deleted + (r.lane.observed ? "" : " (not observed by the node watcher)")));
      }
      g.appendChild(lane);
    });
    // Faults: shaded while in force, labelled bar in the faults row.
    tl.faults.forEach(function (f, i) {
      // A rule used up during a step is solid until that step began, hatched while it ran out.
      var a = x(ns(f.from)), b = x(f.to ? ns(f.to) : end), solid = f.ranOut ? x(ns(f.ranOut)) : b;
      var fg = s("g", { "data-kind": "fault" });
      fg.appendChild(s("rect", { class: "fault-bg", x: a, y: faultY, width: Math.max(0, solid - a), height: H - faultY - 4 }));
      if (b > solid) fg.appendChild(s("rect", { class: "fault-bg fading", x: solid, y: faultY, width: b - solid, height: H - faultY - 4 }));
      var bar = tipped(s("rect", { class: "fault-bar", x: a, y: faultY + 14 * i, width: Math.max(3, solid - a), height: 12, rx: 2 }),
        "fault: " + f.rule + "\nin force from " + f.from + (f.ranOut ? " until it ran out between " + f.ranOut + " and " + f.to :
          " to " + (f.to || "the end") + " (" + f.ended + ")"));
      fg.appendChild(bar);
      if (b > solid) fg.appendChild(s("rect", { class: "fault-bar fading", x: solid, y: faultY + 14 * i, width: b - solid, height: 12, rx: 2 }));
      fg.appendChild(s("text", { x: a + 3, y: faultY + 14 * i + 10 }, f.rule + (f.ranOut ? " (ran out by " + f.to + ")" : "")));
      g.insertBefore(fg, g.firstChild);
    });
    if (tl.faults.length) svg.appendChild(s("text", { x: 8, y: faultY + 10, class: "label" }, "faults"));
    // Restarts: down time shaded, a line when it is back.
    tl.restarts.forEach(function (r) {
      var a = x(ns(r.at)), b = x(ns(r.up));
      var rg = s("g", { "data-kind": "restart" });
      rg.appendChild(s("rect", { class: "down", x: a, y: stepsY, width: Math.max(0, b - a), height: H - stepsY - 4 }));
      rg.appendChild(tipped(s("line", { class: "restart-line", x1: b, x2: b, y1: stepsY, y2: H - 4 }),
        "controller restart: down at " + r.at + " for " + r.down + ", back at " + r.up));
      rg.appendChild(s("text", b + 60 > W - R ? { x: b - 3, y: H - 8, "text-anchor": "end" } : { x: b + 3, y: H - 8 }, "restart"));
      over.appendChild(rg);
    });
    // Attachment spans: a sub-row per volume in each node lane.
    tl.attachments.forEach(function (a) {
      var from = ns(a.from), r = laneOf(a.node, from);
      if (!r) return;
      var vi = Math.max(0, vols.indexOf(a.volume));
      var x1 = x(from), x2 = x(a.to ? ns(a.to) : end);
      var ry = r.y + 4 + vi * subH;
      var ag = s("g", { "data-kind": "attachment" });
      ag.appendChild(tipped(s("rect", { class: "span" + (a.to ? "" : " open"), x: x1, y: ry, width: Math.max(3, x2 - x1), height: subH - 2, rx: 2 }),
        a.volume + " attached to " + a.node + " from " + a.from + (a.to ? " to " + a.to : ", still attached at the end")));
      if (x2 - x1 > 60) ag.appendChild(s("text", { x: x1 + 4, y: ry + 7.5, style: "font-size:8px;fill:#fff" }, a.volume));
      g.appendChild(ag);
    });
    // Migrations: a band from start to end across the two nodes' lanes, the deadline marked.
    var labelled = {};
    tl.migrations.forEach(function (m) {
      var start = ns(m.start), stop = m.end ? ns(m.end) : end;
      var rs = laneOf(m.source, start), rt = laneOf(m.target, start);
      var ys = [rs, rt].filter(Boolean);
      if (!ys.length) return;
      var y1 = Math.min.apply(null, ys.map(function (r) { return r.y; })) - 2;
      var y2 = Math.max.apply(null, ys.map(function (r) { return r.y + r.h; })) + 2;
      var cls = m.ended === "completed" ? "completed" : m.ended.indexOf("failed") === 0 ? "failed" : m.ended === "running" ? "running" : "ended";
      var mg = s("g", { "data-kind": "migration" });
      mg.appendChild(tipped(s("rect", { class: "mig " + cls, x: x(start), y: y1, width: Math.max(3, x(stop) - x(start)), height: y2 - y1, rx: 4 }),
        "migration of " + m.volume + (m.claim ? " (" + m.claim + ")" : "") + ": " + m.source + " \u2192 " + m.target +
        "\nstarted " + m.start + (m.timeout ? ", timeout " + m.timeout + ", deadline " + m.deadline : ", timeout unknown (MigrationStarted not written)") +
        "\n" + (m.end ? m.ended + " at " + m.end : "still running at the end") +
        (m.startedWritten ? "\nMigrationStarted written at " + m.startedWritten : "") +
        (m.endedWritten ? "\nits end written at " + m.endedWritten : "")));
      // The outcome beside the band's end, or inside it where the chart ends; one label per
      // place (a storm of instant migrations would stack them).
      var lx = x(stop) + 4, anchor = "start";
      if (lx + 120 > W - R) { lx = x(stop) - 4; anchor = "end"; }
      var spot = Math.round(lx / 40) + ":" + y1;
      if (!labelled[spot]) {
        labelled[spot] = true;
        mg.appendChild(s("text", { x: lx, y: y1 + 11, "text-anchor": anchor, class: "label" }, m.ended));
      }
      over.appendChild(mg);
      if (!m.deadline) return;
      var d = ns(m.deadline), beyond = d > end;
      var dg = s("g", { "data-kind": "deadline" });
      var dtip = "deadline of " + m.volume + ": " + m.deadline + " (start " + m.start + " + timeout " + m.timeout + ")" +
        (beyond ? ", after the chart's end" : "") + (m.end ? "; " + m.ended + " at " + m.end : "");
      if (beyond) {
        // Past the axis: an arrow at the right edge of the band, the time in its tooltip.
        var ax = W - R, ay = (y1 + y2) / 2;
        dg.appendChild(tipped(s("path", { class: "deadline-arrow", d: "M" + (ax - 9) + " " + (ay - 6) + "l9 6l-9 6z" }), dtip));
      } else {
        var dx = x(d);
        dg.appendChild(tipped(s("line", { class: "deadline", x1: dx, x2: dx, y1: y1 - 4, y2: y2 + 4 }), dtip));
        var dspot = "d" + Math.round(dx / 60);
        if (!labelled[dspot]) {
          labelled[dspot] = true;
          dg.appendChild(s("text", { x: dx - 3, y: y1 - 5, "text-anchor": "end", class: "deadline-label" }, "deadline " + m.deadline));
        }
      }
      over.appendChild(dg);
    });
    // Events: a marker per write on its claim's lane; Warning is a diamond, Normal a circle.
    var seen = {}, piles = {};
    evs.forEach(function (x0) {
      var e = x0.e, c = e.namespace + "/" + e.name, cy = claimY[c] + 12, cx = x(ns(e.at));
      // Writes at one instant stay at that instant: up to three side by side vertically,
      // then on top of each other, with their number beside them.
      var key = c + "@" + Math.round(cx / 3), k = seen[key] = (seen[key] || 0) + 1;
      cy += [0, -6, 6][(k - 1) % 3];
      if (k === 4) {
        var many = s("text", { x: cx + 9, y: claimY[c] + 16, class: "many" });
        many.textContent = "";
        top.appendChild(many);
        piles[key] = many;
      }
      if (piles[key]) piles[key].textContent = "\u00d7" + k;
      var text = e.type + " " + e.reason + " at " + e.at + " (count " + e.count + ")\n" + c + "\n" + e.message;
      var mk = e.type === "Warning"
        ? s("path", { class: "ev warning", d: "M" + cx + " " + (cy - 7) + "l7 7l-7 7l-7 -7z" })
        : s("circle", { class: "ev normal", cx: cx, cy: cy, r: 5.5 });
      mk.setAttribute("data-kind", "event");
      mk.setAttribute("data-reason", e.reason);
      top.appendChild(tipped(mk, text));
    });
    // Problems at their step.
    (tl.problems || []).forEach(function (p) {
      var px = x(ns(p.at)), py = stepsY + 11;
      var mk = s("path", { class: "problem" + (p.expected ? " expected" : ""), d: "M" + px + " " + (py - 8) + "l8 14h-16z", "data-kind": "problem" });
      var st = sc.steps[p.step] ? sc.steps[p.step].step : "";
      top.appendChild(tipped(mk, (p.kind === "refused" ? "refused" + (p.code ? " " + p.code : "") + (p.expected ? " (expected)" : "") : "failed") +
        " at " + p.at + ": " + st + "\n" + p.text));
    });
    svg.appendChild(g); svg.appendChild(over); svg.appendChild(top);
    return svg;
  }
  function nice(raw) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    var unit = 1e9;
    if (raw < 1e9) { var p = Math.pow(10, Math.ceil(Math.log10(Math.max(raw, 1)))); return p / 2 >= raw ? p / 2 : p; }
    for (var i = 0; i < steps.length; i++) if (steps[i] * unit >= raw) return steps[i] * unit;
    return Math.ceil(raw / 3600e9) * 3600e9;
  }

  function legend() {
    function item(color, text) { return h("span", {}, h("i", { style: "background:" + color }), text); }
    return h("div", { class: "legend" },
      item("var(--accent)", "attached / Normal event (circle)"), item("var(--warn)", "Warning event (diamond)"),
      item("var(--mig)", "migration window"), item("var(--bad)", "deadline (dashed), failed"),
      item("var(--fault-bar)", "fault in force"), item("var(--down)", "controller down / restart"),
      item("var(--bad)", "problem \u25b2 (amber: expected refusal)"));
  }

  function scenarioSection(sc, i) {
    var oc = outcome(sc), evs = events(sc), tl = sc.timeline;
    var sec = h("section", { class: "scenario", id: "s" + i, "data-outcome": oc, "data-name": sc.name, "aria-labelledby": "h" + i });
    sec.appendChild(h("header", {}, h("h2", { id: "h" + i }, sc.name), h("span", { class: "badge " + oc, "data-outcome": oc }, LABEL[oc]),
      h("span", { class: "file" }, sc.file), h("span", { class: "file" }, sc.steps.length + " steps, " + evs.length + " events, " + (tl ? tl.end : "0s") + " virtual")));
    if (sc.failures.length) sec.appendChild(h("ul", { class: "failures" }, sc.failures.map(function (f) { return h("li", { class: "mono" }, f); })));
    sec.appendChild(chart(sc));
    sec.appendChild(legend());
    sec.appendChild(h("h3", {}, "Events"));
    if (evs.length) {
      sec.appendChild(h("table", { class: "events" }, h("thead", {}, h("tr", {}, ["at", "type", "reason", "claim", "message", "count"].map(function (c) { return h("th", {}, c); }))),
        h("tbody", {}, evs.map(function (x) {
          var e = x.e;
          return h("tr", { class: e.type === "Warning" ? "warning" : "" }, h("td", { class: "mono nowrap" }, e.at), h("td", {}, e.type), h("td", {}, e.reason),
            h("td", { class: "mono nowrap" }, e.namespace + "/" + e.name), h("td", { class: "mono" }, e.message), h("td", { class: "num" }, e.count));
        }))));
    } else sec.appendChild(h("p", { class: "none" }, "no events written"));
    var skipped = [];
    sc.steps.forEach(function (st) { (st.skipped || []).forEach(function (k) { skipped.push({ st: st, k: k }); }); });
    if (skipped.length) {
      sec.appendChild(h("h3", {}, "Skipped and dropped events"));
      sec.appendChild(h("table", { class: "skipped" }, h("thead", {}, h("tr", {}, ["step at", "step", "reason", "cause"].map(function (c) { return h("th", {}, c); }))),
        h("tbody", {}, skipped.map(function (x) {
          return h("tr", {}, h("td", { class: "mono" }, x.st.at), h("td", { class: "mono" }, x.st.step), h("td", {}, x.k.reason), h("td", { class: "mono" }, x.k.cause));
        }))));
    }
    if (sc.snapshotDiff) {
      sec.appendChild(h("h3", {}, "Transcript against its snapshot (\u2212 snapshot, + this run)"));
      sec.appendChild(h("div", { class: "diff mono", "data-kind-diff": "snapshot" }, sc.snapshotDiff.map(function (l) {
        var c = l.charAt(0);
        return h("span", { class: c === "-" ? "del" : c === "+" ? "ins" : "" }, l + "\n");
      })));
    }
    var stepsBox = h("details", {}, h("summary", {}, "Steps"), h("table", { class: "steps" }, h("tbody", {}, sc.steps.map(function (st, j) {
      var o = st.outcome === "ok" ? "ok" : st.outcome.failed !== undefined ? "failed: " + st.outcome.failed : st.outcome.code + ": " + st.outcome.message;
      var line = tl && tl.steps[j] ? tl.steps[j].line : "";
      return h("tr", {}, h("td", { class: "num" }, line), h("td", { class: "mono" }, st.at), h("td", { class: "mono" }, st.step), h("td", { class: "mono" }, o));
    }))));
    sec.appendChild(stepsBox);
    return sec;
  }

  // Index: failed first, then in run order; a text and an outcome filter.
  var order = run.scenarios.map(function (sc, i) { return i; });
  var rank = { failed: 0, changed: 1, passed: 2 };
  order.sort(function (a, b) { return rank[outcome(run.scenarios[a])] - rank[outcome(run.scenarios[b])] || a - b; });
  var main = document.getElementById("main");
  main.appendChild(h("p", { class: "summary", id: "summary" }, run.scenarios.length + " scenarios: " + run.passed + " passed, " + run.failed + " failed"));
  var text = h("input", { type: "search", id: "filter-text", placeholder: "filter by name or file", "aria-label": "filter by name or file" });
  var pick = h("select", { id: "filter-outcome", "aria-label": "filter by outcome" }, h("option", { value: "" }, "every outcome"),
    h("option", { value: "failed" }, "failed"), h("option", { value: "changed" }, "snapshot changed"), h("option", { value: "passed" }, "passed"));
  main.appendChild(h("div", { class: "filters" }, text, pick, h("span", { id: "shown", class: "file" })));
  var rows = order.map(function (i) {
    var sc = run.scenarios[i], oc = outcome(sc);
    return h("tr", { "data-outcome": oc, "data-index": i, "data-search": (sc.name + " " + sc.file).toLowerCase() },
      h("td", {}, h("a", { href: "#s" + i }, sc.name)), h("td", { class: "mono" }, sc.file), h("td", {}, h("span", { class: "badge " + oc }, LABEL[oc])),
      h("td", { class: "num" }, sc.steps.length), h("td", { class: "num" }, events(sc).length), h("td", { class: "mono" }, sc.timeline ? sc.timeline.end : "0s"));
  });
  main.appendChild(h("table", { class: "index", id: "index" }, h("thead", {}, h("tr", {}, ["scenario", "file", "outcome", "steps", "events", "virtual length"].map(function (c) { return h("th", {}, c); }))),
    h("tbody", {}, rows)));
  var sections = order.map(function (i) { return scenarioSection(run.scenarios[i], i); });
  sections.forEach(function (sec) { main.appendChild(sec); });
  function applyFilter() {
    var q = text.value.trim().toLowerCase(), o = pick.value, shown = 0;
    rows.forEach(function (r, k) {
      var ok = (!q || r.getAttribute("data-search").indexOf(q) >= 0) && (!o || r.getAttribute("data-outcome") === o);
      r.hidden = !ok; sections[k].hidden = !ok; if (ok) shown++;
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " shown";
  }
  text.addEventListener("input", applyFilter);
  pick.addEventListener("change", applyFilter);
  applyFilter();
  // `#focus=KIND` focuses the first chart element of that kind, as Tab would reach it, so a
  // headless browser can check the keyboard path (its tooltip shows on focus).
  var want = /^#focus=([a-z]+)$/.exec(location.hash);
  if (want) {
    var first = document.querySelector('[data-kind="' + want[1] + '"][tabindex], [data-kind="' + want[1] + '"] [tabindex]');
    if (first) first.focus();
  }
  document.body.setAttribute("data-rendered", "true");
})();
