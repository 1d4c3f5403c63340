/**
 * A self-contained HTML report of a local demo run, for a risk officer: four SVG charts (price paths with
 * halts, accounts by state, margin-ratio distribution before and after, timeline of calls, cures and
 * liquidations) under a summary table.
 *
 * The page needs nothing but itself: inline CSS, an inline script that draws the charts from the run's
 * data embedded as JSON, and a Content-Security-Policy that forbids every fetch. The embedded JSON escapes
 * `<`, `>`, `&`, U+2028 and U+2029, so no string in the data (an account id holding `</script>` or `<!--`)
 * can leave its script element.
 *
 * Each chart container (`data-chart="prices" | "states" | "ratios" | "timeline"`) gets `data-rendered="true"`
 * and `data-points` (the number of plotted marks: line vertices, state snapshots, ratios binned, event dots)
 * once drawn; a script error lands in `document.body.dataset.error`. Empty data draws "no data".
 */

export type ReportStatus =
  | "HEALTHY"
  | "WARNING"
  | "CALLED"
  | "CURED"
  | "LIQUIDATING"
  | "LIQUIDATED"
  | "BAD_DEBT";

export type TimelineKind = "CALL" | "CURED" | "LIQUIDATION" | "LIQUIDATED" | "BAD_DEBT" | "HALT" | "RESUME";

export interface RunReportData {
  title: string;
  /** ISO-8601. */
  generatedAt: string;
  scenario: {
    name: string;
    description: string;
    speed: number;
    simulatedStart: string;
    simulatedEnd: string;
  };
  book: { accounts: number; currency: string };
  /** Price path per asset, prices as decimal strings. */
  prices: Array<{ asset: string; points: Array<{ t: string; price: string }> }>;
  /** Stale or diverging episodes, shaded on the price chart. */
  halts: Array<{ asset: string; from: string; to: string; reason: string }>;
  /** Accounts by state over time. */
  states: Array<{ t: string; counts: Partial<Record<ReportStatus, number>> }>;
  /** Margin ratios (decimal strings) of every account at the start. */
  ratiosBefore: string[];
  /** Margin ratios (decimal strings) of every account at the end. */
  ratiosAfter: string[];
  timeline: Array<{ t: string; accountId: string; kind: TimelineKind; detail: string }>;
  /** Counts, latencies, loss: shown as a table at the top. */
  summary: Array<{ label: string; value: string }>;
}

/** At most this many timeline dots are drawn (the earliest ones); the chart says so when it cuts. */
export const MAX_TIMELINE_DOTS = 2000;

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);
}

/**
 * JSON that is safe as the text of a `<script>` element: `<` and `>` (so neither `</script` nor `<!--` can
 * occur), `&`, and the JavaScript line terminators U+2028/U+2029 become `\uXXXX` escapes, which JSON.parse
 * reads back as the same characters.
 */
export function scriptSafeJson(value: unknown): string {
  return (JSON.stringify(value) ?? "null")
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

const CSP = [
  "default-src 'none'",
  "script-src 'unsafe-inline'",
  "style-src 'unsafe-inline'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

const STYLE = `
:root { --ink: #1c2430; --muted: #5b6675; --line: #e3e7ee; --bg: #f5f6f8; --card: #fff; --accent: #1565c0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 4px; }
.meta { color: var(--muted); margin: 0 0 14px; }
.scenario { background: var(--card); border-left: 4px solid var(--accent); border-radius: 6px; padding: 10px 16px; margin: 0 0 18px; }
.scenario p { margin: 4px 0 0; white-space: pre-line; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin: 18px 0; box-shadow: 0 1px 2px rgba(0, 0, 0, 0.04); }
.how { color: var(--muted); font-size: 14px; margin: 0 0 10px; }
table.summary { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.summary th, table.summary td { padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.summary th { text-align: left; font-weight: 500; color: var(--muted); width: 45%; }
table.summary td { text-align: right; font-weight: 600; }
table.summary tr:last-child th, table.summary tr:last-child td { border-bottom: 0; }
.chart { min-height: 60px; }
.placeholder, .note { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
svg.plot { display: block; width: 100%; height: auto; }
svg.plot text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #4a5563; }
svg.plot .axis-label { fill: #6b7685; }
svg.plot .grid { stroke: #edf0f4; }
svg.plot .baseline, svg.plot .tick { stroke: #9aa5b4; }
svg.plot .halt { fill: #90a4ae; fill-opacity: 0.2; stroke: #78909c; stroke-dasharray: 3 3; }
svg.plot .halt-label { fill: #37474f; font-style: italic; }
svg.plot .reference { stroke: #9aa5b4; stroke-dasharray: 4 4; }
svg.plot .maintenance { stroke: #c62828; stroke-width: 2; stroke-dasharray: 6 4; }
svg.plot .maintenance-label { fill: #c62828; font-weight: 600; }
svg.plot .breach-zone { fill: #ffebee; }
svg.plot .lane { fill: #f7f8fa; }
svg.plot .no-data { font-size: 18px; fill: #8a94a3; }
svg.plot .bar-label { font-size: 11px; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 18px; padding: 0; margin: 8px 0 0; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
@media print { body { background: #fff; } .card { break-inside: avoid; box-shadow: none; } }
`;

/** Sets window.onerror before anything else runs, so any script error shows on the body. */
const ERROR_HOOK =
  "window.onerror = function (message) { document.body.dataset.error = String(message); return false; };";

/**
 * The chart renderer. Plain ES5-style JavaScript in String.raw (no backticks, no `${` inside), run in the
 * page; it only creates nodes and sets textContent, never parses markup.
 */
const CLIENT_SCRIPT = String.raw`
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 960;
  var H = 320;
  var STATES = ["HEALTHY", "WARNING", "CALLED", "CURED", "LIQUIDATING", "LIQUIDATED", "BAD_DEBT"];
  var STATE_COLOURS = {
    HEALTHY: "#43a047", WARNING: "#fbc02d", CALLED: "#ef6c00", CURED: "#0288d1",
    LIQUIDATING: "#d32f2f", LIQUIDATED: "#7b1fa2", BAD_DEBT: "#263238"
  };
  var KINDS = ["CALL", "CURED", "LIQUIDATION", "LIQUIDATED", "BAD_DEBT", "HALT", "RESUME"];
  var KIND_COLOURS = {
    CALL: STATE_COLOURS.CALLED, CURED: STATE_COLOURS.CURED, LIQUIDATION: STATE_COLOURS.LIQUIDATING,
    LIQUIDATED: STATE_COLOURS.LIQUIDATED, BAD_DEBT: STATE_COLOURS.BAD_DEBT, HALT: "#78909c", RESUME: "#26a69a"
  };
  var ASSET_COLOURS = ["#1565c0", "#8e24aa", "#00897b", "#6d4c41", "#d81b60", "#546e7a", "#9e9d24", "#3949ab"];
  var OTHER_COLOUR = "#9e9e9e";
  var BEFORE_COLOUR = "#78909c";
  var AFTER_COLOUR = "#ef6c00";
  var MAX_DOTS = ${MAX_TIMELINE_DOTS};
  var MAX_LINE_POINTS = 2000;
  var BUCKETS = [
    { label: "< 0.8", lo: -Infinity, hi: 0.8 },
    { label: "0.8\u20131", lo: 0.8, hi: 1 },
    { label: "1\u20131.1", lo: 1, hi: 1.1 },
    { label: "1.1\u20131.5", lo: 1.1, hi: 1.5 },
    { label: "1.5\u20132", lo: 1.5, hi: 2 },
    { label: "2\u20133", lo: 2, hi: 3 },
    { label: "\u2265 3", lo: 3, hi: Infinity }
  ];
  var MAINTENANCE_BUCKET = 2;
  var data = {};

  function list(value) { return Array.isArray(value) ? value : []; }
  function has(object, key) { return Object.prototype.hasOwnProperty.call(object, key); }
  function message(err) { return err && err.message ? String(err.message) : String(err); }
  function time(value) {
    var ms = typeof value === "string" ? Date.parse(value) : NaN;
    return isFinite(ms) ? ms : null;
  }
  function num(value) {
    if (typeof value === "number") return value;
    if (typeof value !== "string" || value.trim() === "") return NaN;
    return Number(value);
  }
  function round(v) { return Math.round(v * 10) / 10; }
  function int(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function iso(ms) { return new Date(ms).toISOString(); }
  function plural(n, one, many) { return int(n) + " " + (n === 1 ? one : many); }

  function svgEl(parent, name, attrs) {
    var node = document.createElementNS(NS, name);
    if (attrs) for (var key in attrs) if (has(attrs, key)) node.setAttribute(key, String(attrs[key]));
    if (parent) parent.appendChild(node);
    return node;
  }
  function label(parent, x, y, s, attrs) {
    var a = attrs || {};
    a.x = round(x);
    a.y = round(y);
    var node = svgEl(parent, "text", a);
    node.textContent = s;
    return node;
  }
  function tip(node, s) {
    var t = svgEl(node, "title");
    t.textContent = s;
    return node;
  }
  function scale(d0, d1, r0, r1) {
    if (!(d1 > d0)) return function () { return (r0 + r1) / 2; };
    var k = (r1 - r0) / (d1 - d0);
    return function (v) { return r0 + (v - d0) * k; };
  }
  function niceStep(span, count) {
    var raw = span / Math.max(1, count);
    var power = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var m = raw / power;
    return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * power;
  }
  function ticks(min, max, count) {
    if (!(max > min) || !isFinite(max - min)) return { values: [min], step: 1 };
    var step = niceStep(max - min, count);
    var values = [];
    for (var v = Math.ceil(min / step) * step; v <= max + step * 1e-9 && values.length < 50; v += step) {
      values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return { values: values, step: step };
  }
  function decimals(step) { return step >= 1 ? 0 : Math.min(8, Math.ceil(-Math.log(step) / Math.LN10)); }
  var TIME_STEPS = [1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5];
  function timeTicks(t0, t1, count) {
    if (!(t1 > t0)) return { values: [t0], step: 0 };
    var raw = (t1 - t0) / count;
    var step = 0;
    for (var i = 0; i < TIME_STEPS.length; i++) if (TIME_STEPS[i] >= raw) { step = TIME_STEPS[i]; break; }
    if (!step) step = Math.ceil(raw / 864e5) * 864e5;
    var values = [];
    for (var t = Math.ceil(t0 / step) * step; t <= t1 && values.length < 50; t += step) values.push(t);
    if (!values.length) values.push(t0);
    return { values: values, step: step };
  }
  function timeLabel(ms, step, span) {
    var s = iso(ms);
    if (span > 864e5) return s.slice(5, 10) + " " + s.slice(11, 16);
    if (step && step < 6e4) return s.slice(11, 19);
    return s.slice(11, 16);
  }

  /** Widens [t0, t1] to the scenario's simulated window, so the time charts share one axis. */
  function runWindow(t0, t1) {
    var scenario = data.scenario || {};
    var a = time(scenario.simulatedStart);
    var b = time(scenario.simulatedEnd);
    if (a !== null && b !== null && b >= a) return [Math.min(t0, a), Math.max(t1, b)];
    return [t0, t1];
  }

  function frame(container, name, titleText, descText, height) {
    container.textContent = "";
    var svg = svgEl(null, "svg", {
      viewBox: "0 0 " + W + " " + (height || H), role: "img", class: "plot",
      "aria-labelledby": "svg-title-" + name + " svg-desc-" + name
    });
    svgEl(svg, "title", { id: "svg-title-" + name }).textContent = titleText;
    svgEl(svg, "desc", { id: "svg-desc-" + name }).textContent = descText;
    container.appendChild(svg);
    return svg;
  }
  function noData(container, name, titleText, why) {
    var svg = frame(container, name, titleText + ": no data", why, 90);
    label(svg, W / 2, 52, "no data", { "text-anchor": "middle", class: "no-data" });
    if (why) note(container, why);
    return 0;
  }
  function legend(container, items) {
    var ul = document.createElement("ul");
    ul.className = "legend";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = item.colour;
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(item.text));
      ul.appendChild(li);
    });
    container.appendChild(ul);
  }
  function note(container, s) {
    var p = document.createElement("p");
    p.className = "note";
    p.textContent = s;
    container.appendChild(p);
  }
  function yAxis(svg, m, ys, t, format, text) {
    var g = svgEl(svg, "g", { class: "axis y" });
    t.values.forEach(function (v) {
      var y = round(ys(v));
      svgEl(g, "line", { x1: m.l, x2: W - m.r, y1: y, y2: y, class: "grid" });
      label(g, m.l - 6, y + 4, format(v), { "text-anchor": "end" });
    });
    if (text) {
      var cy = round(m.t + (H - m.t - m.b) / 2);
      label(g, 14, cy, text, { "text-anchor": "middle", class: "axis-label", transform: "rotate(-90 14 " + cy + ")" });
    }
  }
  function xTimeAxis(svg, m, xs, t0, t1) {
    var g = svgEl(svg, "g", { class: "axis x" });
    var t = timeTicks(t0, t1, 7);
    t.values.forEach(function (v) {
      var x = round(xs(v));
      svgEl(g, "line", { x1: x, x2: x, y1: H - m.b, y2: H - m.b + 5, class: "tick" });
      var anchor = x > W - m.r - 30 ? "end" : "middle";
      label(g, x, H - m.b + 18, timeLabel(v, t.step, t1 - t0), { "text-anchor": anchor });
    });
    svgEl(g, "line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "baseline" });
    label(g, W - m.r, H - 4, "time (UTC)", { "text-anchor": "end", class: "axis-label" });
  }

  /** Keeps the first and last points and the minimum and maximum of each bucket, in time order. */
  function decimate(pts, max) {
    if (pts.length <= max) return pts;
    var buckets = Math.max(1, Math.floor((max - 2) / 2));
    var inner = pts.length - 2;
    var out = [pts[0]];
    for (var b = 0; b < buckets; b++) {
      var from = 1 + Math.floor((b * inner) / buckets);
      var to = 1 + Math.floor(((b + 1) * inner) / buckets);
      if (to <= from) continue;
      var lo = from;
      var hi = from;
      for (var i = from; i < to; i++) {
        if (pts[i][1] < pts[lo][1]) lo = i;
        if (pts[i][1] > pts[hi][1]) hi = i;
      }
      if (lo === hi) out.push(pts[lo]);
      else if (lo < hi) out.push(pts[lo], pts[hi]);
      else out.push(pts[hi], pts[lo]);
    }
    out.push(pts[pts.length - 1]);
    return out;
  }

  function drawPrices(c) {
    var book = data.book || {};
    var series = [];
    list(data.prices).forEach(function (s, index) {
      var pts = [];
      list(s && s.points).forEach(function (p) {
        var t = time(p && p.t);
        var v = num(p && p.price);
        if (t !== null && isFinite(v)) pts.push([t, v, String(p.price)]);
      });
      pts.sort(function (a, b) { return a[0] - b[0]; });
      if (pts.length) series.push({ asset: String(s.asset), pts: pts, colour: ASSET_COLOURS[index % ASSET_COLOURS.length] });
    });
    var halts = [];
    list(data.halts).forEach(function (h) {
      var from = time(h && h.from);
      if (from === null) return;
      halts.push({ asset: String(h.asset), from: from, to: time(h.to), reason: h.reason == null ? "" : String(h.reason) });
    });
    if (!series.length) {
      return noData(c, "prices", "Price path", "No prices were recorded" +
        (halts.length ? " (" + plural(halts.length, "halt episode", "halt episodes") + " recorded)." : "."));
    }
    var indexed = series.length > 1;
    var skipped = [];
    if (indexed) {
      series = series.filter(function (s) {
        for (var i = 0; i < s.pts.length; i++) if (s.pts[i][1] > 0) { s.base = s.pts[i][1]; return true; }
        skipped.push(s.asset);
        return false;
      });
      if (!series.length) return noData(c, "prices", "Price path", "No asset has a positive price to index from.");
    }
    var t0 = Infinity;
    var t1 = -Infinity;
    var y0 = Infinity;
    var y1 = -Infinity;
    var thinned = false;
    series.forEach(function (s) {
      s.plot = decimate(s.pts, MAX_LINE_POINTS);
      if (s.plot.length < s.pts.length) thinned = true;
      s.value = function (v) { return indexed ? (100 * v) / s.base : v; };
      t0 = Math.min(t0, s.pts[0][0]);
      t1 = Math.max(t1, s.pts[s.pts.length - 1][0]);
      s.plot.forEach(function (p) {
        var y = s.value(p[1]);
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      });
    });
    var span = runWindow(t0, t1);
    t0 = span[0];
    t1 = span[1];
    if (indexed) { y0 = Math.min(y0, 100); y1 = Math.max(y1, 100); }
    var pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.05 || 1;
    var m = { l: 64, r: 20, t: 16, b: 44 };
    var xs = scale(t0, t1, m.l, W - m.r);
    var ys = scale(y0 - pad, y1 + pad, H - m.b, m.t);
    var haltCount = halts.length;
    var svg = frame(c, "prices", "Price path of " + plural(series.length, "asset", "assets") +
      (indexed ? ", indexed to 100 at the start" : "") + ", " + iso(t0) + " to " + iso(t1),
      series.map(function (s) {
        var first = s.pts[0];
        var last = s.pts[s.pts.length - 1];
        return s.asset + " from " + first[2] + " to " + last[2];
      }).join("; ") + ". " + plural(haltCount, "halt episode", "halt episodes") + " shaded.");
    var yt = ticks(y0 - pad, y1 + pad, 5);
    var dp = decimals(yt.step);
    yAxis(svg, m, ys, yt, function (v) { return v.toFixed(dp); },
      indexed ? "index (start = 100)" : "price" + (book.currency ? " (" + book.currency + ")" : ""));
    xTimeAxis(svg, m, xs, t0, t1);
    if (indexed) {
      var y100 = round(ys(100));
      svgEl(svg, "line", { x1: m.l, x2: W - m.r, y1: y100, y2: y100, class: "reference" });
    }
    var shaded = 0;
    halts.forEach(function (h) {
      var a = Math.max(h.from, t0);
      var b = Math.min(h.to === null ? t1 : h.to, t1);
      if (b < a) return;
      var x = round(xs(a));
      var w = Math.max(3, round(xs(b) - xs(a)));
      var g = svgEl(svg, "g", { class: "halt-episode" });
      svgEl(g, "rect", { x: x, y: m.t, width: w, height: H - m.t - m.b, class: "halt" });
      label(g, x + 4, m.t + 14 + 14 * (shaded % 3), "prices halted: " + h.asset, { class: "halt-label" });
      tip(g, "prices halted: " + h.asset + ", " + iso(h.from) + " to " + (h.to === null ? "the end" : iso(h.to)) +
        (h.reason ? " (" + h.reason + ")" : ""));
      shaded++;
    });
    var points = 0;
    series.forEach(function (s) {
      var coords = s.plot.map(function (p) { return round(xs(p[0])) + "," + round(ys(s.value(p[1]))); });
      var first = s.pts[0];
      var last = s.pts[s.pts.length - 1];
      var g = svgEl(svg, "g", { class: "series" });
      tip(g, s.asset + ": " + first[2] + " to " + last[2]);
      if (coords.length === 1) {
        var xy = coords[0].split(",");
        svgEl(g, "circle", { cx: xy[0], cy: xy[1], r: 3, fill: s.colour });
      } else {
        svgEl(g, "polyline", {
          points: coords.join(" "), fill: "none", stroke: s.colour, "stroke-width": 2, "stroke-linejoin": "round"
        });
      }
      points += coords.length;
    });
    var items = series.map(function (s) {
      var first = s.pts[0];
      var last = s.pts[s.pts.length - 1];
      var change = first[1] > 0 ? (100 * (last[1] - first[1])) / first[1] : NaN;
      return {
        colour: s.colour,
        text: s.asset + " " + first[2] + " \u2192 " + last[2] +
          (isFinite(change) ? " (" + (change > 0 ? "+" : "") + change.toFixed(1) + "%)" : "")
      };
    });
    if (shaded) items.push({ colour: "rgba(144,164,174,0.45)", text: "prices halted (" + plural(shaded, "episode", "episodes") + ")" });
    legend(c, items);
    if (skipped.length) note(c, "Not shown (no positive price to index from): " + skipped.join(", ") + ".");
    if (thinned) note(c, "Long paths are thinned to at most " + int(MAX_LINE_POINTS) + " points per asset; each stretch keeps its low and high.");
    return points;
  }

  function drawStates(c) {
    var book = data.book || {};
    var rows = [];
    list(data.states).forEach(function (s) {
      var t = time(s && s.t);
      if (t === null) return;
      var counts = s.counts && typeof s.counts === "object" ? s.counts : {};
      rows.push({ t: t, counts: counts });
    });
    rows.sort(function (a, b) { return a.t - b.t; });
    if (!rows.length) return noData(c, "states", "Accounts by state", "No state snapshots were recorded.");
    var keys = STATES.slice();
    rows.forEach(function (row) {
      Object.keys(row.counts).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    });
    function count(row, k) {
      var v = has(row.counts, k) ? num(row.counts[k]) : 0;
      return isFinite(v) && v > 0 ? v : 0;
    }
    var present = keys.filter(function (k) { return rows.some(function (row) { return count(row, k) > 0; }); });
    if (!present.length) return noData(c, "states", "Accounts by state", "Every snapshot counts zero accounts.");
    var maxTotal = 0;
    rows.forEach(function (row) {
      var total = 0;
      present.forEach(function (k) { total += count(row, k); });
      if (total > maxTotal) maxTotal = total;
    });
    var bookAccounts = num(book.accounts);
    var yMax = Math.max(maxTotal, isFinite(bookAccounts) ? bookAccounts : 0) || 1;
    var span = runWindow(rows[0].t, rows[rows.length - 1].t);
    var t0 = span[0];
    var tEnd = span[1];
    if (!(tEnd > t0)) tEnd = t0 + 60e3;
    var m = { l: 64, r: 20, t: 16, b: 44 };
    var xs = scale(t0, tEnd, m.l, W - m.r);
    var ys = scale(0, yMax * 1.04, H - m.b, m.t);
    var last = rows[rows.length - 1];
    var svg = frame(c, "states", "Accounts by state over time, " + plural(rows.length, "snapshot", "snapshots"),
      "At the end: " + present.map(function (k) { return k + " " + int(count(last, k)); }).join(", ") + ".");
    var yt = ticks(0, yMax * 1.04, 5);
    yAxis(svg, m, ys, { values: yt.values.filter(function (v) { return v === Math.round(v); }), step: yt.step },
      function (v) { return int(v); }, "accounts");
    xTimeAxis(svg, m, xs, t0, tEnd);
    var lower = rows.map(function () { return 0; });
    var items = [];
    present.forEach(function (k) {
      var colour = has(STATE_COLOURS, k) ? STATE_COLOURS[k] : OTHER_COLOUR;
      var top = [];
      var bottom = [];
      var peak = 0;
      rows.forEach(function (row, i) {
        var n = count(row, k);
        if (n > peak) peak = n;
        var xa = round(xs(row.t));
        var xb = round(xs(i + 1 < rows.length ? rows[i + 1].t : tEnd));
        var up = round(ys(lower[i] + n));
        var lo = round(ys(lower[i]));
        top.push(xa + "," + up, xb + "," + up);
        bottom.unshift(xb + "," + lo, xa + "," + lo);
        lower[i] += n;
      });
      var area = svgEl(svg, "polygon", { points: top.concat(bottom).join(" "), fill: colour, "fill-opacity": 0.85 });
      tip(area, k + ": " + int(count(last, k)) + " at the end, peak " + int(peak));
      items.push({ colour: colour, text: k + " " + int(count(last, k)) + " (peak " + int(peak) + ")" });
    });
    if (isFinite(bookAccounts) && bookAccounts > 0) {
      var yb = round(ys(bookAccounts));
      svgEl(svg, "line", { x1: m.l, x2: W - m.r, y1: yb, y2: yb, class: "reference" });
      label(svg, W - m.r - 4, yb - 5, "book: " + plural(bookAccounts, "account", "accounts"), { "text-anchor": "end", class: "axis-label" });
    }
    legend(c, items);
    return rows.length;
  }

  function drawRatios(c) {
    function bin(values) {
      var counts = BUCKETS.map(function () { return 0; });
      var read = [];
      var unread = 0;
      list(values).forEach(function (s) {
        var v = num(s);
        if (v !== v) { unread++; return; }
        for (var b = 0; b < BUCKETS.length; b++) if (v < BUCKETS[b].hi || b === BUCKETS.length - 1) { counts[b]++; break; }
        read.push(v);
      });
      read.sort(function (a, b) { return a - b; });
      var median = read.length ? (read.length % 2 ? read[(read.length - 1) / 2] : (read[read.length / 2 - 1] + read[read.length / 2]) / 2) : NaN;
      var below = 0;
      read.forEach(function (v) { if (v < 1) below++; });
      return { counts: counts, n: read.length, unread: unread, median: median, below: below };
    }
    var before = bin(data.ratiosBefore);
    var after = bin(data.ratiosAfter);
    var unread = before.unread + after.unread;
    if (!before.n && !after.n) {
      return noData(c, "ratios", "Margin-ratio distribution", "No margin ratios were recorded" +
        (unread ? " (" + plural(unread, "value", "values") + " could not be read)." : "."));
    }
    var maxCount = 0;
    before.counts.concat(after.counts).forEach(function (n) { if (n > maxCount) maxCount = n; });
    var m = { l: 64, r: 20, t: 26, b: 50 };
    var slot = (W - m.l - m.r) / BUCKETS.length;
    var bw = Math.min(56, slot * 0.36);
    var ys = scale(0, maxCount * 1.1, H - m.b, m.t);
    function median(x) { return x !== x ? "n/a" : isFinite(x) ? x.toFixed(2) : "\u221e"; }
    function summary(name, x) {
      return name + ": " + plural(x.n, "account", "accounts") + ", " + int(x.below) + " below 1.0, median " + median(x.median);
    }
    var svg = frame(c, "ratios", "Margin-ratio distribution before and after the run",
      summary("Before", before) + "; " + summary("after", after) + ".");
    for (var z = 0; z < MAINTENANCE_BUCKET; z++) {
      tip(svgEl(svg, "rect", { x: round(m.l + z * slot), y: m.t, width: round(slot), height: H - m.t - m.b, class: "breach-zone" }),
        "below maintenance: ratio under 1.0");
    }
    var yt = ticks(0, maxCount * 1.1, 5);
    yAxis(svg, m, ys, { values: yt.values.filter(function (v) { return v === Math.round(v); }), step: yt.step },
      function (v) { return int(v); }, "accounts");
    svgEl(svg, "line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "baseline" });
    var bars = 0;
    BUCKETS.forEach(function (bucket, b) {
      var cx = m.l + (b + 0.5) * slot;
      label(svg, cx, H - m.b + 18, bucket.label, { "text-anchor": "middle" });
      [[before, -1, BEFORE_COLOUR, "before"], [after, 0, AFTER_COLOUR, "after"]].forEach(function (spec) {
        var n = spec[0].counts[b];
        if (!n) return;
        var x = round(cx + spec[1] * bw + (spec[1] ? -1 : 1));
        var y = round(ys(n));
        var bar = svgEl(svg, "rect", { x: x, y: y, width: round(bw), height: round(H - m.b - y), fill: spec[2] });
        tip(bar, spec[3] + ": " + plural(n, "account", "accounts") + " with margin ratio " + bucket.label);
        label(svg, x + bw / 2, y - 4, int(n), { "text-anchor": "middle", class: "bar-label" });
        bars++;
      });
    });
    label(svg, W - m.r, H - 6, "margin ratio", { "text-anchor": "end", class: "axis-label" });
    var xm = round(m.l + MAINTENANCE_BUCKET * slot);
    svgEl(svg, "line", { x1: xm, x2: xm, y1: m.t - 10, y2: H - m.b, class: "maintenance" });
    label(svg, xm + 6, m.t - 2, "1.0 maintenance", { class: "maintenance-label" });
    c.setAttribute("data-bars", String(bars));
    legend(c, [
      { colour: BEFORE_COLOUR, text: summary("before (start)", before) },
      { colour: AFTER_COLOUR, text: summary("after (end)", after) }
    ]);
    if (unread) note(c, plural(unread, "ratio", "ratios") + " could not be read as numbers and are not shown.");
    return before.n + after.n;
  }

  function drawTimeline(c) {
    var events = [];
    var unread = 0;
    list(data.timeline).forEach(function (e, i) {
      var t = time(e && e.t);
      if (t === null) { unread++; return; }
      events.push({ t: t, i: i, e: e });
    });
    events.sort(function (a, b) { return a.t - b.t || a.i - b.i; });
    if (!events.length) {
      return noData(c, "timeline", "Timeline of calls, cures and liquidations", "No events were recorded" +
        (unread ? " (" + plural(unread, "event", "events") + " without a readable time)." : "."));
    }
    var shown = events.slice(0, MAX_DOTS);
    var lanes = KINDS.slice();
    var perLane = {};
    shown.forEach(function (ev) {
      var k = String(ev.e.kind);
      if (lanes.indexOf(k) < 0) lanes.push(k);
      perLane[k] = (perLane[k] || 0) + 1;
    });
    var span = runWindow(shown[0].t, shown[shown.length - 1].t);
    var t0 = span[0];
    var t1 = span[1];
    if (!(t1 > t0)) { t0 -= 30e3; t1 += 30e3; }
    var m = { l: 120, r: 20, t: 10, b: 44 };
    var laneH = (H - m.t - m.b) / lanes.length;
    var xs = scale(t0, t1, m.l + 6, W - m.r - 6);
    var svg = frame(c, "timeline", "Timeline of " + plural(events.length, "event", "events") +
      (shown.length < events.length ? ", the first " + int(shown.length) + " shown" : ""),
      lanes.filter(function (k) { return perLane[k]; }).map(function (k) { return k + " " + int(perLane[k]); }).join(", ") + ".");
    lanes.forEach(function (k, i) {
      var y = m.t + i * laneH;
      if (i % 2 === 0) svgEl(svg, "rect", { x: m.l, y: round(y), width: W - m.l - m.r, height: round(laneH), class: "lane" });
      label(svg, m.l - 8, y + laneH / 2 + 4, k + " (" + int(perLane[k] || 0) + ")", { "text-anchor": "end" });
    });
    xTimeAxis(svg, m, xs, t0, t1);
    var dots = svgEl(svg, "g", { class: "dots", "fill-opacity": 0.75 });
    shown.forEach(function (ev, j) {
      var k = String(ev.e.kind);
      var lane = lanes.indexOf(k);
      var jitter = ((j % 7) - 3) * laneH * 0.09;
      var dot = svgEl(dots, "circle", {
        cx: round(xs(ev.t)), cy: round(m.t + (lane + 0.5) * laneH + jitter), r: 3.5,
        fill: has(KIND_COLOURS, k) ? KIND_COLOURS[k] : OTHER_COLOUR
      });
      var detail = ev.e.detail == null ? "" : String(ev.e.detail);
      tip(dot, iso(ev.t) + " " + k + " " + String(ev.e.accountId) + (detail ? ": " + detail : ""));
    });
    if (shown.length < events.length) {
      note(c, "showing the first " + int(shown.length) + " of " + int(events.length) + " events");
    }
    if (unread) note(c, plural(unread, "event", "events") + " without a readable time are not shown.");
    return shown.length;
  }

  var CHARTS = { prices: drawPrices, states: drawStates, ratios: drawRatios, timeline: drawTimeline };

  function fail(text) {
    var body = document.body;
    body.dataset.error = body.dataset.error ? body.dataset.error + "; " + text : text;
  }

  function run() {
    try {
      var node = document.getElementById("report-data");
      data = JSON.parse((node && node.textContent) || "{}") || {};
    } catch (err) {
      fail("report data: " + message(err));
      return;
    }
    var containers = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < containers.length; i++) {
      var c = containers[i];
      var name = c.getAttribute("data-chart");
      if (!has(CHARTS, name)) continue;
      try {
        var points = CHARTS[name](c);
        c.setAttribute("data-points", String(points));
        c.setAttribute("data-rendered", "true");
      } catch (err) {
        c.setAttribute("data-rendered", "error");
        c.textContent = "This chart could not be drawn: " + message(err);
        fail(name + ": " + message(err));
      }
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
`;

interface ChartSection {
  readonly chart: "prices" | "states" | "ratios" | "timeline";
  readonly heading: string;
  readonly how: string;
}

const SECTIONS: readonly ChartSection[] = [
  {
    chart: "prices",
    heading: "Prices",
    how:
      "Each line is one asset's price over the simulated run. With several assets every line starts at 100, " +
      "so moves compare directly: 80 means the asset has lost 20% since the start. Shaded bands are periods " +
      "when prices were halted because sources were stale or diverging; hover a band for the asset and reason.",
  },
  {
    chart: "states",
    heading: "Accounts by state",
    how:
      "How many accounts were in each state at each moment, stacked so the total height is the book. " +
      "Orange (called), red and purple (liquidating, liquidated) growing means stress is turning into " +
      "losses; blue is accounts that met their call. The legend gives each state's count at the end and its peak.",
  },
  {
    chart: "ratios",
    heading: "Margin ratios, before and after",
    how:
      "Bars count accounts by margin ratio at the start (grey) and at the end (orange). The red dashed line " +
      "is the 1.0 maintenance level: accounts left of it, in the pink zone, are in breach and get a margin " +
      "call. Orange bars moving left of the line show how much margin the scenario consumed.",
  },
  {
    chart: "timeline",
    heading: "Calls, cures and liquidations",
    how:
      "Each dot is one event, on the row of its kind, placed at its time. Dense clusters are bursts of calls " +
      "or liquidations; gaps in the cure row after a burst of calls mean borrowers did not top up in time. " +
      "Hover a dot for the account and the details.",
  },
];

function renderSummary(summary: RunReportData["summary"]): string {
  if (summary.length === 0) return '<p class="note">No summary figures were recorded for this run.</p>';
  const rows = summary
    .map((row) => `<tr><th scope="row">${escapeHtml(row.label)}</th><td>${escapeHtml(row.value)}</td></tr>`)
    .join("\n");
  return `<table class="summary"><tbody>\n${rows}\n</tbody></table>`;
}

function renderSection(section: ChartSection): string {
  return `<section class="card" aria-labelledby="h-${section.chart}">
<h2 id="h-${section.chart}">${escapeHtml(section.heading)}</h2>
<p class="how"><strong>How to read this.</strong> ${escapeHtml(section.how)}</p>
<div class="chart" data-chart="${section.chart}" data-rendered="false"><p class="placeholder">This chart is drawn by the script in this page from the data embedded in it.</p></div>
</section>`;
}

/** One complete HTML document for the run: open it in any browser, offline. */
export function renderReport(data: RunReportData): string {
  const { scenario, book } = data;
  const meta = [
    `<span>Scenario <strong>${escapeHtml(scenario.name)}</strong></span>`,
    `<span>simulated ${escapeHtml(scenario.simulatedStart)} to ${escapeHtml(scenario.simulatedEnd)}</span>`,
    `<span>${escapeHtml(scenario.speed)}× speed</span>`,
    `<span>${escapeHtml(book.accounts)} accounts in ${escapeHtml(book.currency)}</span>`,
    `<span>generated ${escapeHtml(data.generatedAt)}</span>`,
  ].join(" · ");
  const description =
    scenario.description.trim() === ""
      ? ""
      : `<div class="scenario"><strong>What happened in this scenario</strong><p>${escapeHtml(scenario.description)}</p></div>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="margin-call-engine local report">
<title>${escapeHtml(data.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<script>${ERROR_HOOK}</script>
<main>
<header>
<h1>${escapeHtml(data.title)}</h1>
<p class="meta">${meta}</p>
${description}
</header>
<section class="card" aria-labelledby="h-summary">
<h2 id="h-summary">Summary</h2>
${renderSummary(data.summary)}
</section>
${SECTIONS.map(renderSection).join("\n")}
<footer>Self-contained report: no network access, charts drawn in this page from the embedded run data.</footer>
</main>
<script type="application/json" id="report-data">${scriptSafeJson(data)}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
