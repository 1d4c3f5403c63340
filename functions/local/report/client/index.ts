/**
 * The page's script, bundled by esbuild into the report (see ../client-bundle.ts). The charts arrive drawn
 * (ECharts' SVG, made on the server); this script reads the run's data embedded in the page, rebuilds each
 * chart's model with the same code that drew it, and gives every mark ECharts tagged with its series and
 * data index (`ecmeta_series_index`, `ecmeta_data_index`) its hover text as an SVG title.
 *
 * Each chart container then gets `data-points` (the number of plotted marks) and `data-rendered="true"`; a
 * chart that failed gets `data-rendered="error"`, and every failure lands in `document.body.dataset.error`.
 * It only creates nodes and sets textContent, never parses markup.
 */

/// <reference lib="dom" />

import { type ChartFrame, hoverText } from "../model/common.ts";
import { isChartName, MODEL_BUILDERS } from "../model/index.ts";
import type { RunReportData } from "../types.ts";

const SVG_NAMESPACE = "http://www.w3.org/2000/svg";

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function fail(text: string): void {
  const body = document.body;
  body.dataset.error = body.dataset.error ? `${body.dataset.error}; ${text}` : text;
}

function readData(): RunReportData | undefined {
  try {
    const node = document.getElementById("report-data");
    return JSON.parse(node?.textContent || "{}") ?? {};
  } catch (error) {
    fail(`report data: ${message(error)}`);
    return undefined;
  }
}

function attachHoverTexts(container: Element, model: ChartFrame): void {
  container.querySelectorAll("svg [ecmeta_series_index][ecmeta_data_index]").forEach((mark) => {
    const seriesIndex = Number(mark.getAttribute("ecmeta_series_index"));
    const dataIndex = Number(mark.getAttribute("ecmeta_data_index"));
    const text = hoverText(model.hover, seriesIndex, dataIndex);
    if (text === undefined) return;
    const title = document.createElementNS(SVG_NAMESPACE, "title");
    title.textContent = text;
    mark.appendChild(title);
  });
}

function finish(container: Element, data: RunReportData): void {
  const name = container.getAttribute("data-chart");
  if (!isChartName(name)) return;
  if (container.getAttribute("data-rendered") === "error") {
    fail(`${name}: ${container.getAttribute("data-error") ?? "not drawn"}`);
    return;
  }
  try {
    if (container.querySelector("svg") === null) throw new Error("no chart was drawn");
    const model = MODEL_BUILDERS[name](data);
    attachHoverTexts(container, model);
    container.setAttribute("data-points", String(model.points));
    container.setAttribute("data-rendered", "true");
  } catch (error) {
    container.setAttribute("data-rendered", "error");
    fail(`${name}: ${message(error)}`);
  }
}

function run(): void {
  const data = readData();
  if (data === undefined) return;
  document.querySelectorAll("[data-chart]").forEach((container) => {
    finish(container, data);
  });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
else run();
