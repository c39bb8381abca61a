// sgtune's live page: draws the study from data.json and polls it for
// changes. Plain DOM and SVG, no library, nothing fetched but data.json.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var panels = [];
  // Extra sections (docs in package page): sgtune.panel(key, title, fn(el, value, data)).
  var sgtune = (window.sgtune = {
    panel: function (key, title, fn) { panels.push({ key: key, title: title, fn: fn }); },
    data: null,
    updates: 0,
  });

  var params = new URLSearchParams(location.search);
  var pollEvery = Math.max(250, Number(params.get("poll")) || 2000);
  var etag = document.body.dataset.etag || null; // the embedded data's version
  var effectsObjective = null;

  // ---- helpers -------------------------------------------------------------

  function el(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function svgEl(tag, attrs, parent, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function svg(parent, w, h) {
    parent.textContent = "";
    return svgEl("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img" }, parent);
  }
  function fmt(v) {
    if (v === undefined || v === null || !isFinite(v)) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
    return Number(v.toPrecision(4)).toString();
  }
  function objLabel(o) {
    return o.name + (o.unit ? " (" + o.unit + ")" : "") + (o.direction === "maximize" ? " ↑" : " ↓");
  }
  function diffText(diff) {
    var keys = Object.keys(diff || {}).sort();
    if (!keys.length) return "SGLang's defaults";
    return keys.map(function (k) { return k + "=" + diff[k]; }).join(" ");
  }
  // range widens [lo, hi] by 5% each side (a single value by 1%), so every point is inside.
  function range(vals) {
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    if (!isFinite(lo)) return [0, 1];
    if (hi === lo) { var d = Math.max(Math.abs(lo) * 0.01, 1e-9); return [lo - d, hi + d]; }
    var pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  function ticks(lo, hi) {
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / 5)));
    var ms = [1, 2, 5, 10];
    for (var i = 0; i < ms.length; i++) if (span / (step * ms[i]) <= 6) { step *= ms[i]; break; }
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
    return out;
  }
  function axes(s, box, xr, yr, xLabel, yLabel, xfmt) {
    var sx = function (v) { return box.l + (v - xr[0]) / (xr[1] - xr[0]) * (box.r - box.l); };
    var sy = function (v) { return box.b - (v - yr[0]) / (yr[1] - yr[0]) * (box.b - box.t); };
    ticks(xr[0], xr[1]).forEach(function (v) {
      svgEl("line", { class: "grid", x1: sx(v), x2: sx(v), y1: box.t, y2: box.b }, s);
      svgEl("text", { x: sx(v), y: box.b + 15, "text-anchor": "middle" }, s, xfmt ? xfmt(v) : fmt(v));
    });
    ticks(yr[0], yr[1]).forEach(function (v) {
      svgEl("line", { class: "grid", x1: box.l, x2: box.r, y1: sy(v), y2: sy(v) }, s);
      svgEl("text", { x: box.l - 6, y: sy(v) + 4, "text-anchor": "end" }, s, fmt(v));
    });
    var g = svgEl("g", { class: "axis" }, s);
    svgEl("line", { x1: box.l, x2: box.r, y1: box.b, y2: box.b }, g);
    svgEl("line", { x1: box.l, x2: box.l, y1: box.t, y2: box.b }, g);
    svgEl("text", { x: box.r, y: box.b + 32, "text-anchor": "end" }, s, xLabel);
    svgEl("text", { x: 12, y: box.t, transform: "rotate(-90 12 " + box.t + ")", "text-anchor": "end" }, s, yLabel);
    return { sx: sx, sy: sy };
  }

  var tip = document.getElementById("tip");
  function hover(node, html) {
    node.addEventListener("mouseenter", function () { tip.innerHTML = html(); tip.hidden = false; });
    node.addEventListener("mousemove", function (ev) {
      var x = ev.clientX + 14, y = ev.clientY + 14;
      if (x + tip.offsetWidth > innerWidth) x = ev.clientX - tip.offsetWidth - 14;
      if (y + tip.offsetHeight > innerHeight) y = ev.clientY - tip.offsetHeight - 14;
      tip.style.left = x + "px"; tip.style.top = y + "px";
    });
    node.addEventListener("mouseleave", function () { tip.hidden = true; });
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; });
  }
  function trialTip(t, d) {
    var lines = ["<b>trial " + t.n + "</b> · " + esc(t.state) + (t.front ? " · on the front" : "") +
      (t.state === "COMPLETE" && !t.feasible ? " · missed an SLO" : "")];
    d.objectives.forEach(function (o) {
      if (t.obj && o.name in t.obj) lines.push(esc(o.name) + ": " + fmt(t.obj[o.name]) + " " + esc(o.unit || ""));
    });
    lines.push("<span class=muted>differs from the defaults:</span> " + esc(diffText(t.diff)));
    if (t.runner) lines.push("<span class=muted>" + esc(t.runner) + (t.gpus ? " GPUs " + t.gpus.join(",") : "") + "</span>");
    if (t.reason) lines.push("<span class=muted>" + esc(t.reason) + "</span>");
    return lines.join("<br>");
  }

  // ---- panels --------------------------------------------------------------

  function drawSummary(d) {
    var c = d.counts;
    document.getElementById("status").textContent = d.status || "";
    document.getElementById("status").className = "badge " + (d.status || "");
    var parts = [
      c.benchmarked + " of " + d.budget + " benchmarked",
      c.completed + " completed (" + (c.infeasible || 0) + " missed an SLO)",
      c.failed + " failed", c.rejected + " rejected", d.in_flight + " in flight",
      "front " + d.front.length, "hypervolume " + fmt(d.hypervolume),
    ];
    if (c.pruned) parts.splice(3, 0, c.pruned + " pruned");
    if (d.gpu_hours) parts.push(fmt(d.gpu_hours) + " GPU-hours");
    if (d.stop_reason) parts.push((d.status === "waiting" ? "" : "stopped: ") + d.stop_reason);
    document.getElementById("summary").textContent = parts.join(" · ");
    document.body.dataset.benchmarked = c.benchmarked;
    document.body.dataset.front = d.front.length;
    document.body.dataset.outcomes = c.outcomes;
  }

  function drawFront(d) {
    var host = document.getElementById("plot-front");
    if (!d.objectives.length) { host.textContent = "no study yet"; return; }
    if (d.objectives.length < 2) { host.textContent = "fewer than two objectives: no plot"; return; }
    var xo = d.objectives[0], yo = d.objectives[1];
    var pts = d.trials.filter(function (t) {
      return t.obj && xo.name in t.obj && yo.name in t.obj && !t.repeat;
    });
    if (!pts.length) { host.textContent = "no completed trial yet"; return; }
    var W = 900, H = 420, box = { l: 70, r: W - 20, t: 14, b: H - 44 };
    var s = svg(host, W, H);
    // Axis ranges cover every plotted point (front, completed, infeasible, baseline).
    var xr = range(pts.map(function (t) { return t.obj[xo.name]; }));
    var yr = range(pts.map(function (t) { return t.obj[yo.name]; }));
    var a = axes(s, box, xr, yr, objLabel(xo), objLabel(yo));
    var front = pts.filter(function (t) { return t.front; }).sort(function (p, q) { return p.obj[xo.name] - q.obj[xo.name]; });
    if (front.length) {
      var dpath = "";
      front.forEach(function (t, i) {
        var x = a.sx(t.obj[xo.name]), y = a.sy(t.obj[yo.name]);
        dpath += i === 0 ? "M" + x + " " + y : " L" + x + " " + a.sy(front[i - 1].obj[yo.name]) + " L" + x + " " + y;
      });
      svgEl("path", { class: "frontline", d: dpath }, s);
    }
    var order = pts.slice().sort(function (p, q) { return (p.front ? 1 : 0) - (q.front ? 1 : 0); });
    order.forEach(function (t) {
      var cls = t.front ? "front" : t.feasible ? "feasible" : "infeasible";
      var c = svgEl("circle", { class: "pt " + cls, cx: a.sx(t.obj[xo.name]), cy: a.sy(t.obj[yo.name]), r: t.front ? 5 : 4, "data-trial": t.n }, s);
      svgEl("title", {}, c, "trial " + t.n);
      hover(c, function () { return trialTip(t, d); });
      if (d.baseline !== undefined && d.baseline !== null && t.n === d.baseline) {
        var b = svgEl("circle", { class: "pt baseline", cx: a.sx(t.obj[xo.name]), cy: a.sy(t.obj[yo.name]), r: 8 }, s);
        hover(b, function () { return trialTip(t, d) + "<br><i>baseline: SGLang's defaults</i>"; });
      }
    });
  }

  function drawHV(d) {
    var host = document.getElementById("plot-hv");
    if (!d.hv.length) { host.textContent = "no benchmarked trial yet"; return; }
    var W = 520, H = 240, box = { l: 64, r: W - 12, t: 10, b: H - 40 };
    var s = svg(host, W, H);
    var xs = d.hv.map(function (p) { return p[0]; }), ys = d.hv.map(function (p) { return p[1]; });
    var a = axes(s, box, [0, Math.max.apply(null, xs)], range(ys.concat([0])), "benchmarked trials", "hypervolume");
    var path = "";
    d.hv.forEach(function (p, i) {
      // A step: the hypervolume holds until the next improvement.
      var x = a.sx(p[0]), y = a.sy(p[1]);
      path += i === 0 ? "M" + x + " " + y : " L" + x + " " + a.sy(d.hv[i - 1][1]) + " L" + x + " " + y;
    });
    svgEl("path", { class: "hvline", d: path }, s);
  }

  function bars(host, entries, cls, title) {
    if (!entries.length) return;
    el("h3", { class: "small" }, host, title);
    var max = Math.max.apply(null, entries.map(function (e) { return e[1]; }));
    var W = 520, row = 18, H = entries.length * row + 4, left = 210;
    var s = svgEl("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H }, host);
    entries.forEach(function (e, i) {
      var y = i * row + 2, w = Math.max(1, (W - left - 40) * e[1] / max);
      svgEl("text", { x: left - 6, y: y + 12, "text-anchor": "end" }, s, e[0]);
      svgEl("rect", { class: "bar " + cls, x: left, y: y + 2, width: w, height: row - 6 }, s);
      svgEl("text", { x: left + w + 4, y: y + 12 }, s, String(e[1]));
    });
  }
  function sortedEntries(m) {
    return Object.keys(m || {}).map(function (k) { return [k, m[k]]; }).sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); });
  }
  function drawCauses(d) {
    var host = document.getElementById("causes");
    host.textContent = "";
    var f = sortedEntries(d.failures), r = sortedEntries(d.rejections);
    var inf = d.counts.infeasible || 0;
    if (inf) f.push(["missed an SLO", inf]);
    if (!f.length && !r.length) { host.textContent = "no failure and no rejection yet"; return; }
    bars(host, f, "cause", "failed trials by class (and completed ones that missed an SLO)");
    bars(host, r, "rule", "rejected candidates by rule");
  }

  function drawTimeline(d) {
    var host = document.getElementById("timeline");
    var runs = d.trials.filter(function (t) { return t.start && t.runner && t.state !== "REJECTED"; })
      .concat((d.running || []).filter(function (t) { return t.start && t.runner; }));
    if (!runs.length) { host.textContent = "no trial has run yet"; return; }
    var lanes = {}, names = [];
    runs.forEach(function (t) {
      (t.gpus && t.gpus.length ? t.gpus : [-1]).forEach(function (g) {
        var k = t.runner + (g >= 0 ? " · GPU " + g : "");
        if (!(k in lanes)) { lanes[k] = []; names.push(k); }
        lanes[k].push(t);
      });
    });
    names.sort();
    var t0 = Math.min.apply(null, runs.map(function (t) { return t.start; }));
    var now = Date.parse(d.now) || Date.now();
    var t1 = Math.max.apply(null, runs.map(function (t) { return t.end || now; }).concat(d.status === "complete" ? [] : [now]));
    if (t1 <= t0) t1 = t0 + 1000;
    var left = 190, W = 900, row = 16, H = names.length * row + 40;
    var s = svg(host, W, H);
    var sx = function (ms) { return left + (ms - t0) / (t1 - t0) * (W - left - 12); };
    ticks(0, (t1 - t0) / 1000).forEach(function (sec) {
      var x = sx(t0 + sec * 1000);
      svgEl("line", { class: "grid", x1: x, x2: x, y1: 0, y2: names.length * row }, s);
      svgEl("text", { x: x, y: names.length * row + 14, "text-anchor": "middle" }, s, fmt(sec) + " s");
    });
    names.forEach(function (k, i) {
      var y = i * row;
      svgEl("text", { x: left - 6, y: y + 12, "text-anchor": "end" }, s, k);
      lanes[k].forEach(function (t) {
        var cls = t.state === "RUNNING" ? "running" : t.state === "FAILED" ? "failed" : t.front ? "front" : t.feasible ? "feasible" : "infeasible";
        var x = sx(t.start), w = Math.max(1.5, sx(t.end || now) - x);
        var r = svgEl("rect", { class: "bar " + cls, x: x, y: y + 2, width: w, height: row - 4, "data-trial": t.n }, s);
        hover(r, function () {
          if (t.state === "RUNNING") return "<b>trial " + t.n + "</b> · running (" + esc(t.cause || "") + ") on " + esc(t.runner) +
            (t.gpus ? " GPUs " + t.gpus.join(",") : "") + "<br>for " + fmt((now - t.start) / 1000) + " s";
          return trialTip(t, d) + "<br>ran " + fmt(((t.end || now) - t.start) / 1000) + " s";
        });
      });
    });
    svgEl("text", { x: W - 12, y: H - 4, "text-anchor": "end" }, s, "seconds since the first trial started");
  }

  function drawEffects(d) {
    var tabs = document.getElementById("effects-tabs"), host = document.getElementById("effects");
    tabs.textContent = ""; host.textContent = "";
    if (!d.effects.length) { host.textContent = "needs at least two feasible completed trials with different values"; return; }
    if (!effectsObjective || !d.objectives.some(function (o) { return o.name === effectsObjective; })) effectsObjective = d.objectives[0].name;
    d.objectives.forEach(function (o) {
      var b = el("button", { class: o.name === effectsObjective ? "on" : "" }, tabs, objLabel(o));
      b.addEventListener("click", function () { effectsObjective = o.name; drawEffects(sgtune.data); });
    });
    var obj = d.objectives.filter(function (o) { return o.name === effectsObjective; })[0];
    var grid = el("div", { class: "effects" }, host);
    d.effects.filter(function (e) { return e.objective === effectsObjective; }).slice(0, 12).forEach(function (e) {
      var card = el("div", { class: "effect" }, grid);
      el("h3", {}, card, e.param + "  (spread " + Math.round(e.spread * 100) + "%)");
      var max = Math.max.apply(null, e.values.map(function (v) { return Math.abs(v.mean); })) || 1;
      var W = 300, row = 16, left = 92;
      var s = svgEl("svg", { viewBox: "0 0 " + W + " " + (e.values.length * row + 2), width: W, height: e.values.length * row + 2 }, card);
      e.values.forEach(function (v, i) {
        var y = i * row, w = Math.max(1, (W - left - 84) * Math.abs(v.mean) / max);
        svgEl("text", { x: left - 4, y: y + 12, "text-anchor": "end" }, s, v.value);
        svgEl("rect", { class: "bar " + (v.value === e.best ? "best" : "value"), x: left, y: y + 2, width: w, height: row - 5 }, s);
        svgEl("text", { x: left + w + 3, y: y + 12 }, s, fmt(v.mean) + " (" + v.n + ")");
      });
      el("div", { class: "muted small" }, card, "best for " + obj.name + ": " + e.best);
    });
  }

  function copy(text, button) {
    var done = function () { button.textContent = "copied"; setTimeout(function () { button.textContent = "copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else { fallbackCopy(text); done(); }
  }
  function fallbackCopy(text) {
    var ta = el("textarea", { style: "position:fixed;opacity:0" }, document.body);
    ta.value = text; ta.select();
    try { document.execCommand("copy"); } catch (e) { /* the command stays selectable in the table */ }
    ta.remove();
  }

  function drawTable(d) {
    var table = document.getElementById("front-table");
    var head = table.tHead, body = table.tBodies[0];
    head.textContent = ""; body.textContent = "";
    var hr = el("tr", {}, head);
    el("th", {}, hr, "trial");
    d.objectives.forEach(function (o) { el("th", {}, hr, objLabel(o)); });
    el("th", {}, hr, "differs from SGLang's defaults");
    el("th", {}, hr, "launch command");
    d.front.slice().sort(function (p, q) {
      var o = d.objectives[0];
      return o.direction === "maximize" ? q.obj[o.name] - p.obj[o.name] : p.obj[o.name] - q.obj[o.name];
    }).forEach(function (m) {
      var tr = el("tr", { "data-trial": m.n }, body);
      el("td", {}, tr, String(m.n) + (m.runs && m.runs.length > 1 ? " (mean of " + m.runs.length + " runs)" : ""));
      d.objectives.forEach(function (o) {
        var g = m.gain && m.gain[o.name] ? " (" + m.gain[o.name].toFixed(2) + "× baseline)" : "";
        el("td", {}, tr, fmt(m.obj[o.name]) + g);
      });
      var diff = el("td", {}, tr);
      var keys = Object.keys(m.diff || {}).sort();
      if (!keys.length) el("span", { class: "muted" }, diff, "SGLang's defaults");
      keys.forEach(function (k) { el("span", { class: "chip" }, diff, k + "=" + m.diff[k]); });
      var cmd = el("td", {}, tr);
      el("code", { class: "cmd" }, cmd, m.command || "");
      var b = el("button", { class: "copy", type: "button" }, cmd, "copy");
      b.addEventListener("click", function () { copy(m.command || "", b); });
    });
  }

  function drawPanels(d) {
    var host = document.getElementById("panels");
    panels.forEach(function (p) {
      var id = "panel-" + p.key, card = document.getElementById(id);
      var value = d.panels && d.panels[p.key];
      if (value === undefined) { if (card) card.remove(); return; }
      if (!card) {
        card = el("section", { id: id, class: "card wide" }, host);
        el("h2", {}, card, p.title);
        el("div", { class: "body" }, card);
      }
      try { p.fn(card.querySelector(".body"), value, d); } catch (e) { card.querySelector(".body").textContent = "cannot draw: " + e; }
    });
  }

  function draw(d) {
    sgtune.data = d;
    drawSummary(d);
    drawFront(d);
    drawHV(d);
    drawCauses(d);
    drawTimeline(d);
    drawEffects(d);
    drawTable(d);
    drawPanels(d);
  }

  // ---- load curves (a ladder or a capacity search) --------------------------

  // Each front member's p99 (solid) and mean (dotted) TTFT and TPOT against
  // load, the SLO bounds as dashed lines, each member's capacity as a
  // vertical mark; levels that missed the SLO are hollow.
  var curveColors = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
  function drawCurves(body, c, d) {
    body.textContent = "";
    var axisLabel = c.axis === "request_rate" ? "request rate (req/s)" : "concurrency";
    var legend = el("div", { class: "legend" }, body);
    c.members.forEach(function (m, i) {
      var cap = m.capacity ? " · capacity " + fmt(m.capacity.level) +
        (m.capacity.output_throughput_per_gpu !== undefined ? " (" + fmt(m.capacity.output_throughput_per_gpu) + " tok/s per GPU)" : "") : "";
      var item = el("span", { class: "legend-item" }, legend);
      el("span", { class: "swatch", style: "background:" + curveColors[i % curveColors.length] }, item);
      el("span", {}, item, "trial " + m.n + cap);
    });
    var row = el("div", { class: "curves" }, body);
    [["ttft", "TTFT (ms)"], ["tpot", "TPOT (ms)"]].forEach(function (q) {
      var p99 = "p99_" + q[0] + "_ms", mean = "mean_" + q[0] + "_ms";
      var holder = el("div", { class: "curve", "data-metric": q[0] }, row);
      var W = 460, H = 260, box = { l: 56, r: W - 12, t: 14, b: H - 40 };
      var s = svg(holder, W, H);
      var xs = [], ys = [];
      c.members.forEach(function (m) {
        m.curve.forEach(function (p) {
          xs.push(p.level);
          if (p[p99] !== undefined) ys.push(p[p99]);
          if (p[mean] !== undefined) ys.push(p[mean]);
        });
        if (m.capacity && m.capacity.level > 0) xs.push(m.capacity.level);
      });
      var bound = c.slo && c.slo[p99];
      if (bound) ys.push(bound);
      ys.push(0);
      var ax = axes(s, box, range(xs), range(ys), axisLabel, q[1]);
      if (bound) {
        svgEl("line", { class: "slo", x1: box.l, x2: box.r, y1: ax.sy(bound), y2: ax.sy(bound) }, s);
        svgEl("text", { class: "slo-label", x: box.r - 4, y: ax.sy(bound) - 4, "text-anchor": "end" }, s, "SLO p99 ≤ " + fmt(bound) + " ms");
      }
      c.members.forEach(function (m, i) {
        var color = curveColors[i % curveColors.length];
        [[p99, ""], [mean, "4 3"]].forEach(function (k) {
          var pts = m.curve.filter(function (p) { return p[k[0]] !== undefined; });
          if (pts.length > 1) {
            svgEl("polyline", { class: "curve-line", fill: "none", stroke: color, "stroke-dasharray": k[1],
              points: pts.map(function (p) { return ax.sx(p.level) + "," + ax.sy(p[k[0]]); }).join(" ") }, s);
          }
        });
        m.curve.forEach(function (p) {
          if (p[p99] === undefined) return;
          var dot = svgEl("circle", { class: "curve-point", cx: ax.sx(p.level), cy: ax.sy(p[p99]), r: 4, stroke: color,
            fill: p.slo_met === false ? "white" : color }, s);
          hover(dot, function () {
            return "<b>trial " + m.n + "</b> at " + esc(axisLabel) + " " + fmt(p.level) + "<br>p99 " + q[0].toUpperCase() + " " + fmt(p[p99]) +
              " ms, mean " + fmt(p[mean]) + " ms" + (p.output_throughput !== undefined ? "<br>" + fmt(p.output_throughput) + " output tok/s" : "") +
              (p.slo_met === undefined ? "" : "<br>SLO " + (p.slo_met ? "met" : "missed")) + (p.error ? "<br>failed: " + esc(p.error) : "");
          });
        });
        if (m.capacity && m.capacity.level > 0) {
          svgEl("line", { class: "capacity", x1: ax.sx(m.capacity.level), x2: ax.sx(m.capacity.level), y1: box.t, y2: box.b, stroke: color }, s);
        }
      });
    });
  }
  sgtune.panel("curves", "Latency against load (front members)", drawCurves);

  // ---- updates -------------------------------------------------------------

  function poll() {
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch("data.json", { headers: headers, cache: "no-store" }).then(function (r) {
      var conn = document.getElementById("conn");
      if (r.status === 304) { conn.textContent = "up to date · " + new Date().toLocaleTimeString(); return null; }
      if (!r.ok) { conn.textContent = "no data yet (" + r.status + "), retrying"; return null; }
      etag = r.headers.get("ETag");
      conn.textContent = "updated " + new Date().toLocaleTimeString();
      return r.json();
    }).then(function (d) {
      if (!d) return;
      sgtune.updates++;
      document.body.dataset.updates = sgtune.updates;
      draw(d);
    }).catch(function () {
      document.getElementById("conn").textContent = "connection lost, retrying";
    }).then(function () {
      setTimeout(poll, sgtune.data && sgtune.data.status === "complete" ? Math.max(pollEvery, 10000) : pollEvery);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var first = document.getElementById("sgtune-data").textContent;
    if (first && first.trim() !== "null") draw(JSON.parse(first));
    poll();
  });
})();
