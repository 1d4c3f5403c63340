/**
 * A self-contained HTML report of a local demo run, for a risk officer: four charts (price paths with
 * halts, accounts by state, margin-ratio distribution before and after, timeline of calls, cures and
 * liquidations) under a summary table, and the loss waterfall: the insurance fund's ledger and how each loss
 * was met (waterfall.ts).
 *
 * The charts are drawn here, in Node, by Apache ECharts' server-side SVG renderer, and inlined; the page
 * also embeds the run's data as JSON (escaped so that no string in it can leave its script element) and a
 * small script, bundled by esbuild from typed modules, that adds each mark's hover text. A
 * Content-Security-Policy forbids every fetch.
 *
 * Each chart container (`data-chart="prices" | "states" | "ratios" | "timeline"`) gets `data-rendered="true"`
 * and `data-points` (the number of plotted marks: line vertices, state snapshots, ratios binned, event dots)
 * once the script has finished it; a script error lands in `document.body.dataset.error`. Empty data draws
 * "no data".
 */

import { type DrawnChart, drawChart } from "./charts/index.ts";
import { clientScript } from "./client-bundle.ts";
import type { ChartName } from "./model/common.ts";
import { CHART_NAMES } from "./model/index.ts";
import { type ChartBody, renderPage } from "./page.ts";
import type { RunReportData } from "./types.ts";

export { scriptSafeJson } from "./markup.ts";
export {
  MAX_TIMELINE_DOTS,
  type ReportDeleveraging,
  type ReportFundFlow,
  type ReportLoss,
  type ReportLossWaterfall,
  type ReportSocialisedLoss,
  type ReportStatus,
  type RunReportData,
  type TimelineKind,
} from "./types.ts";

function chartBody(data: RunReportData, name: ChartName): ChartBody {
  let drawn: DrawnChart;
  try {
    drawn = drawChart(data, name);
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
  const { model, svg } = drawn;
  const bars = "bars" in model && typeof model.bars === "number" ? model.bars : undefined;
  return { svg, legend: model.legend, notes: model.notes, ...(bars === undefined ? {} : { bars }) };
}

/** One complete HTML document for the run: open it in any browser, offline. */
export function renderReport(data: RunReportData): string {
  const bodies = new Map(CHART_NAMES.map((name) => [name, chartBody(data, name)] as const));
  return renderPage(data, bodies, clientScript());
}
