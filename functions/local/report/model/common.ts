/**
 * What every chart model shares: reading the run's loosely typed JSON (times, decimal strings), formatting
 * counts and times for people, the colours of states and event kinds, and the shape of a chart model.
 *
 * The models are pure and run twice: on the server, where ECharts draws them, and in the page, where the
 * script reads the same data again to attach each mark's hover text. Nothing here touches Node or the DOM.
 */

import type { RunReportData } from "../types.ts";

export type ChartName = "prices" | "states" | "ratios" | "timeline";

export const STATES = ["HEALTHY", "WARNING", "CALLED", "CURED", "LIQUIDATING", "LIQUIDATED", "BAD_DEBT"];

export const STATE_COLOURS: Readonly<Record<string, string>> = {
  HEALTHY: "#43a047",
  WARNING: "#fbc02d",
  CALLED: "#ef6c00",
  CURED: "#0288d1",
  LIQUIDATING: "#d32f2f",
  LIQUIDATED: "#7b1fa2",
  BAD_DEBT: "#263238",
};

export const KINDS = ["CALL", "CURED", "LIQUIDATION", "LIQUIDATED", "BAD_DEBT", "HALT", "RESUME"];

export const KIND_COLOURS: Readonly<Record<string, string>> = {
  CALL: "#ef6c00",
  CURED: "#0288d1",
  LIQUIDATION: "#d32f2f",
  LIQUIDATED: "#7b1fa2",
  BAD_DEBT: "#263238",
  HALT: "#78909c",
  RESUME: "#26a69a",
};

export const ASSET_COLOURS = [
  "#1565c0",
  "#8e24aa",
  "#00897b",
  "#6d4c41",
  "#d81b60",
  "#546e7a",
  "#9e9d24",
  "#3949ab",
];
export const OTHER_COLOUR = "#9e9e9e";

export interface LegendItem {
  readonly colour: string;
  readonly text: string;
}

/**
 * What hovering a mark says, by ECharts series index and then data index, in the order the chart's options
 * list their series. A single string covers every mark of its series.
 */
export type HoverTable = ReadonlyArray<ReadonlyArray<string | undefined> | string>;

/** What the page shows around a chart, whether it has data or not. */
export interface ChartFrame {
  /** The svg's title (and accessible name). */
  readonly title: string;
  /** The svg's description: the chart's facts in words. */
  readonly description: string;
  readonly legend: readonly LegendItem[];
  readonly notes: readonly string[];
  /** The number of plotted marks: line vertices, state snapshots, ratios binned, event dots. */
  readonly points: number;
  readonly hover: HoverTable;
}

/** A chart with nothing to draw: it says "no data" and why. */
export interface EmptyChart extends ChartFrame {
  readonly empty: true;
}

export function emptyChart(title: string, why: string): EmptyChart {
  return {
    empty: true,
    title: `${title}: no data`,
    description: why,
    legend: [],
    notes: [why],
    points: 0,
    hover: [],
  };
}

export function hoverText(table: HoverTable, seriesIndex: number, dataIndex: number): string | undefined {
  const series = table[seriesIndex];
  return typeof series === "string" ? series : series?.[dataIndex];
}

/** The array itself, or an empty one for anything else (the embedded JSON is read without trusting it). */
export function list<T>(value: readonly T[] | null | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}

export function hasOwn(object: object, key: string): boolean {
  return Object.hasOwn(object, key);
}

export function readTimeMs(value: unknown): number | null {
  const atMs = typeof value === "string" ? Date.parse(value) : Number.NaN;
  return Number.isFinite(atMs) ? atMs : null;
}

/** A number from a number or a decimal string; NaN for anything else (an empty string included). */
export function readNumber(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value !== "string" || value.trim() === "") return Number.NaN;
  return Number(value);
}

/** A count with thousands separators: 12,345. */
export function formatCount(count: number): string {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function plural(count: number, one: string, many: string): string {
  return `${formatCount(count)} ${count === 1 ? one : many}`;
}

export function isoTime(atMs: number): string {
  return new Date(atMs).toISOString();
}

export interface TimeWindow {
  readonly fromMs: number;
  readonly toMs: number;
}

/** Widens [fromMs, toMs] to the scenario's simulated window, so the time charts share one axis. */
export function runWindow(data: RunReportData, fromMs: number, toMs: number): TimeWindow {
  const scenario: Partial<RunReportData["scenario"]> = data.scenario ?? {};
  const startMs = readTimeMs(scenario.simulatedStart);
  const endMs = readTimeMs(scenario.simulatedEnd);
  if (startMs !== null && endMs !== null && endMs >= startMs) {
    return { fromMs: Math.min(fromMs, startMs), toMs: Math.max(toMs, endMs) };
  }
  return { fromMs, toMs };
}
