/**
 * The HTML shell of the report: styles, the Content-Security-Policy that forbids every fetch, the header and
 * summary table, one card per chart with its "how to read this" note, legend and notes, the loss waterfall's
 * card (waterfall.ts), and the three script elements (the error hook, the run's data as JSON, the bundled page
 * script). Everything is inline, so the file opens offline in any browser.
 */

import { escapeMarkup, scriptSafeJson } from "./markup.ts";
import type { ChartName, LegendItem } from "./model/common.ts";
import type { RunReportData } from "./types.ts";
import { renderLossWaterfall, WATERFALL_STYLE } from "./waterfall.ts";

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
.note { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
svg.plot { display: block; width: 100%; height: auto; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 18px; padding: 0; margin: 8px 0 0; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
@media print { body { background: #fff; } .card { break-inside: avoid; box-shadow: none; } }
`;

/** Sets window.onerror before anything else runs, so any script error shows on the body. */
const ERROR_HOOK =
  "window.onerror = function (message) { document.body.dataset.error = String(message); return false; };";

interface ChartSection {
  readonly chart: ChartName;
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

/** A drawn chart's parts, or why it could not be drawn. */
export type ChartBody =
  | {
      readonly svg: string;
      readonly legend: readonly LegendItem[];
      readonly notes: readonly string[];
      readonly bars?: number;
    }
  | { readonly error: string };

function renderSummary(summary: RunReportData["summary"]): string {
  if (summary.length === 0) return '<p class="note">No summary figures were recorded for this run.</p>';
  const rows = summary
    .map(
      (row) => `<tr><th scope="row">${escapeMarkup(row.label)}</th><td>${escapeMarkup(row.value)}</td></tr>`,
    )
    .join("\n");
  return `<table class="summary"><tbody>\n${rows}\n</tbody></table>`;
}

function renderLegend(items: readonly LegendItem[]): string {
  if (items.length === 0) return "";
  const entries = items.map(
    (item) =>
      `<li><span class="swatch" style="background:${escapeMarkup(item.colour)}"></span>${escapeMarkup(item.text)}</li>`,
  );
  return `<ul class="legend">${entries.join("")}</ul>`;
}

/** The chart's container: `data-rendered` turns "true" when the page's script has finished it. */
function renderChart(chart: ChartName, body: ChartBody): string {
  if ("error" in body) {
    const error = escapeMarkup(body.error);
    return `<div class="chart" data-chart="${chart}" data-rendered="error" data-error="${error}"><p class="note">This chart could not be drawn: ${error}</p></div>`;
  }
  const bars = body.bars === undefined ? "" : ` data-bars="${body.bars}"`;
  const notes = body.notes.map((note) => `<p class="note">${escapeMarkup(note)}</p>`).join("");
  return `<div class="chart" data-chart="${chart}" data-rendered="false"${bars}>${body.svg}${renderLegend(body.legend)}${notes}</div>`;
}

function renderSection(section: ChartSection, body: ChartBody): string {
  return `<section class="card" aria-labelledby="h-${section.chart}">
<h2 id="h-${section.chart}">${escapeMarkup(section.heading)}</h2>
<p class="how"><strong>How to read this.</strong> ${escapeMarkup(section.how)}</p>
${renderChart(section.chart, body)}
</section>`;
}

function renderHeader(data: RunReportData): string {
  const { scenario, book } = data;
  const meta = [
    `<span>Scenario <strong>${escapeMarkup(scenario.name)}</strong></span>`,
    `<span>simulated ${escapeMarkup(scenario.simulatedStart)} to ${escapeMarkup(scenario.simulatedEnd)}</span>`,
    `<span>${escapeMarkup(scenario.speed)}× speed</span>`,
    `<span>${escapeMarkup(book.accounts)} accounts in ${escapeMarkup(book.currency)}</span>`,
    `<span>generated ${escapeMarkup(data.generatedAt)}</span>`,
  ].join(" · ");
  const description =
    scenario.description.trim() === ""
      ? ""
      : `<div class="scenario"><strong>What happened in this scenario</strong><p>${escapeMarkup(scenario.description)}</p></div>`;
  return `<header>
<h1>${escapeMarkup(data.title)}</h1>
<p class="meta">${meta}</p>
${description}
</header>`;
}

/** The whole document, given each chart's body (in SECTIONS order) and the page script. */
export function renderPage(
  data: RunReportData,
  bodies: ReadonlyMap<ChartName, ChartBody>,
  script: string,
): string {
  const sections = SECTIONS.map((section) =>
    renderSection(section, bodies.get(section.chart) ?? { error: "not drawn" }),
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="margin-call-engine local report">
<title>${escapeMarkup(data.title)}</title>
<style>${STYLE}${WATERFALL_STYLE}</style>
</head>
<body>
<script>${ERROR_HOOK}</script>
<main>
${renderHeader(data)}
<section class="card" aria-labelledby="h-summary">
<h2 id="h-summary">Summary</h2>
${renderSummary(data.summary)}
</section>
${sections.join("\n")}
${renderLossWaterfall(data.lossWaterfall)}
<footer>Self-contained report: no network access, charts drawn by Apache ECharts when the report was written, hover details added in this page from the embedded run data.</footer>
</main>
<script type="application/json" id="report-data">${scriptSafeJson(data)}</script>
<script>${script}</script>
</body>
</html>
`;
}
