/**
 * The price chart's model: each asset's path (indexed to 100 at the start when there are several, so moves
 * compare directly), thinned to a drawable number of points, and the halt episodes to shade over it.
 */

import type { RunReportData } from "../types.ts";
import {
  ASSET_COLOURS,
  type ChartFrame,
  type EmptyChart,
  emptyChart,
  formatCount,
  isoTime,
  type LegendItem,
  list,
  plural,
  readNumber,
  readTimeMs,
  runWindow,
} from "./common.ts";

/** Longer paths are thinned to this many points per asset, each stretch keeping its low and high. */
export const MAX_LINE_POINTS = 2000;

const HALT_LEGEND_COLOUR = "rgba(144,164,174,0.45)";

/** One price as read: its time, its value, and the decimal string it came from (shown as written). */
interface PricePoint {
  readonly atMs: number;
  readonly price: number;
  readonly written: string;
}

interface AssetPath {
  readonly asset: string;
  readonly colour: string;
  readonly points: readonly PricePoint[];
}

export interface AssetLine {
  readonly asset: string;
  readonly colour: string;
  /** [time in ms, price or index] per plotted vertex, in time order. */
  readonly vertices: ReadonlyArray<readonly [number, number]>;
}

export interface HaltBand {
  readonly asset: string;
  /** The shaded stretch, clipped to the chart's window. */
  readonly fromMs: number;
  readonly toMs: number;
}

export interface PricesPlot extends ChartFrame {
  readonly empty: false;
  readonly indexed: boolean;
  readonly yAxisName: string;
  readonly fromMs: number;
  readonly toMs: number;
  /** Series order (and so the hover table's): the lines, then the halts, then the line at 100. */
  readonly lines: readonly AssetLine[];
  readonly halts: readonly HaltBand[];
}

export type PricesModel = EmptyChart | PricesPlot;

/** Keeps the first and last points and the minimum and maximum of each bucket, in time order. */
export function decimate<T extends { readonly price: number }>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return [...points];
  const buckets = Math.max(1, Math.floor((max - 2) / 2));
  const inner = points.length - 2;
  const kept: T[] = [points[0] as T];
  for (let bucket = 0; bucket < buckets; bucket++) {
    const from = 1 + Math.floor((bucket * inner) / buckets);
    const to = 1 + Math.floor(((bucket + 1) * inner) / buckets);
    if (to <= from) continue;
    let low = from;
    let high = from;
    for (let index = from; index < to; index++) {
      if ((points[index] as T).price < (points[low] as T).price) low = index;
      if ((points[index] as T).price > (points[high] as T).price) high = index;
    }
    const pair = low === high ? [low] : low < high ? [low, high] : [high, low];
    for (const index of pair) kept.push(points[index] as T);
  }
  kept.push(points[points.length - 1] as T);
  return kept;
}

function readPaths(data: RunReportData): AssetPath[] {
  const paths: AssetPath[] = [];
  list(data.prices).forEach((series, index) => {
    const points: PricePoint[] = [];
    for (const point of list(series?.points)) {
      const atMs = readTimeMs(point?.t);
      const price = readNumber(point?.price);
      if (atMs !== null && Number.isFinite(price)) points.push({ atMs, price, written: String(point.price) });
    }
    points.sort((a, b) => a.atMs - b.atMs);
    const colour = ASSET_COLOURS[index % ASSET_COLOURS.length] ?? ASSET_COLOURS[0] ?? "";
    if (points.length > 0) paths.push({ asset: String(series.asset), colour, points });
  });
  return paths;
}

interface Halt {
  readonly asset: string;
  readonly fromMs: number;
  readonly toMs: number | null;
  readonly reason: string;
}

function readHalts(data: RunReportData): Halt[] {
  const halts: Halt[] = [];
  for (const halt of list(data.halts)) {
    const fromMs = readTimeMs(halt?.from);
    if (fromMs === null) continue;
    const reason = halt.reason == null ? "" : String(halt.reason);
    halts.push({ asset: String(halt.asset), fromMs, toMs: readTimeMs(halt.to), reason });
  }
  return halts;
}

function first(path: AssetPath): PricePoint {
  return path.points[0] as PricePoint;
}

function last(path: AssetPath): PricePoint {
  return path.points[path.points.length - 1] as PricePoint;
}

function legendItem(path: AssetPath): LegendItem {
  const start = first(path);
  const end = last(path);
  const change = start.price > 0 ? (100 * (end.price - start.price)) / start.price : Number.NaN;
  const changeText = Number.isFinite(change) ? ` (${change > 0 ? "+" : ""}${change.toFixed(1)}%)` : "";
  return { colour: path.colour, text: `${path.asset} ${start.written} \u2192 ${end.written}${changeText}` };
}

function haltHover(halt: Halt): string {
  const until = halt.toMs === null ? "the end" : isoTime(halt.toMs);
  const reason = halt.reason ? ` (${halt.reason})` : "";
  return `prices halted: ${halt.asset}, ${isoTime(halt.fromMs)} to ${until}${reason}`;
}

/** The halts that overlap the window, clipped to it, each with its hover text. */
function shade(halts: readonly Halt[], fromMs: number, toMs: number): Array<HaltBand & { hover: string }> {
  const bands: Array<HaltBand & { hover: string }> = [];
  for (const halt of halts) {
    const bandFromMs = Math.max(halt.fromMs, fromMs);
    const bandToMs = Math.min(halt.toMs ?? toMs, toMs);
    if (bandToMs >= bandFromMs) {
      bands.push({ asset: halt.asset, fromMs: bandFromMs, toMs: bandToMs, hover: haltHover(halt) });
    }
  }
  return bands;
}

/** Drops the assets with no positive price to index from; the rest get their first positive price as base. */
function indexBases(paths: readonly AssetPath[]): { kept: Map<AssetPath, number>; skipped: string[] } {
  const kept = new Map<AssetPath, number>();
  const skipped: string[] = [];
  for (const path of paths) {
    const base = path.points.find((point) => point.price > 0)?.price;
    if (base === undefined) skipped.push(path.asset);
    else kept.set(path, base);
  }
  return { kept, skipped };
}

export function pricesModel(data: RunReportData): PricesModel {
  const paths = readPaths(data);
  const halts = readHalts(data);
  if (paths.length === 0) {
    const recorded = halts.length
      ? ` (${plural(halts.length, "halt episode", "halt episodes")} recorded).`
      : ".";
    return emptyChart("Price path", `No prices were recorded${recorded}`);
  }
  const indexed = paths.length > 1;
  const { kept, skipped } = indexed
    ? indexBases(paths)
    : { kept: new Map(paths.map((path) => [path, 0])), skipped: [] };
  if (kept.size === 0) return emptyChart("Price path", "No asset has a positive price to index from.");
  const shown = [...kept.keys()];
  const window = runWindow(
    data,
    Math.min(...shown.map((path) => first(path).atMs)),
    Math.max(...shown.map((path) => last(path).atMs)),
  );
  const lines = shown.map((path): AssetLine => {
    const base = kept.get(path) ?? 0;
    const value = (price: number): number => (indexed ? (100 * price) / base : price);
    const vertices = decimate(path.points, MAX_LINE_POINTS).map(
      (point) => [point.atMs, value(point.price)] as const,
    );
    return { asset: path.asset, colour: path.colour, vertices };
  });
  return pricesPlot(data, { paths: shown, lines, halts, indexed, skipped, ...window });
}

interface PlotParts {
  readonly paths: readonly AssetPath[];
  readonly lines: readonly AssetLine[];
  readonly halts: readonly Halt[];
  readonly indexed: boolean;
  readonly skipped: readonly string[];
  readonly fromMs: number;
  readonly toMs: number;
}

function pricesPlot(data: RunReportData, parts: PlotParts): PricesPlot {
  const { paths, lines, indexed, fromMs, toMs } = parts;
  const bands = shade(parts.halts, fromMs, toMs);
  const points = lines.reduce((sum, line) => sum + line.vertices.length, 0);
  const thinned = lines.some((line, index) => line.vertices.length < (paths[index]?.points.length ?? 0));
  const legend = paths.map(legendItem);
  if (bands.length > 0) {
    legend.push({
      colour: HALT_LEGEND_COLOUR,
      text: `prices halted (${plural(bands.length, "episode", "episodes")})`,
    });
  }
  const notes: string[] = [];
  if (parts.skipped.length)
    notes.push(`Not shown (no positive price to index from): ${parts.skipped.join(", ")}.`);
  if (thinned) {
    notes.push(
      `Long paths are thinned to at most ${formatCount(MAX_LINE_POINTS)} points per asset; each stretch keeps its low and high.`,
    );
  }
  const currency = data.book?.currency;
  const summaries = paths.map((path) => `${path.asset} from ${first(path).written} to ${last(path).written}`);
  return {
    empty: false,
    title: `Price path of ${plural(paths.length, "asset", "assets")}${indexed ? ", indexed to 100 at the start" : ""}, ${isoTime(fromMs)} to ${isoTime(toMs)}`,
    description: `${summaries.join("; ")}. ${plural(parts.halts.length, "halt episode", "halt episodes")} shaded.`,
    legend,
    notes,
    points,
    hover: [
      ...paths.map((path) => `${path.asset}: ${first(path).written} to ${last(path).written}`),
      bands.map((band) => band.hover),
    ],
    indexed,
    yAxisName: indexed ? "index (start = 100)" : `price${currency ? ` (${currency})` : ""}`,
    fromMs,
    toMs,
    lines,
    halts: bands,
  };
}
