/**
 * The margin-ratio chart's model: every account's ratio at the start and at the end, binned into the same
 * buckets (split at the 1.0 maintenance level), with the count, the median and how many are in breach.
 */

import type { RunReportData } from "../types.ts";
import {
  type ChartFrame,
  type EmptyChart,
  emptyChart,
  formatCount,
  list,
  plural,
  readNumber,
} from "./common.ts";

export const BEFORE_COLOUR = "#78909c";
export const AFTER_COLOUR = "#ef6c00";

interface Bucket {
  readonly label: string;
  /** The bucket holds ratios below this (the last one holds the rest). */
  readonly below: number;
}

export const BUCKETS: readonly Bucket[] = [
  { label: "< 0.8", below: 0.8 },
  { label: "0.8\u20131", below: 1 },
  { label: "1\u20131.1", below: 1.1 },
  { label: "1.1\u20131.5", below: 1.5 },
  { label: "1.5\u20132", below: 2 },
  { label: "2\u20133", below: 3 },
  { label: "\u2265 3", below: Number.POSITIVE_INFINITY },
];

/** The buckets before this index are under the 1.0 maintenance level. */
export const MAINTENANCE_BUCKET = 2;

export const BREACH_HOVER = "below maintenance: ratio under 1.0";

export interface Binned {
  /** Accounts per bucket. */
  readonly counts: readonly number[];
  /** Ratios read as numbers. */
  readonly read: number;
  /** Values that are not numbers. */
  readonly unread: number;
  readonly median: number;
  /** Ratios under 1.0. */
  readonly breaching: number;
}

export interface RatiosPlot extends ChartFrame {
  readonly empty: false;
  /** Series order (and so the hover table's): before, after, the breach zone, the maintenance line. */
  readonly before: Binned;
  readonly after: Binned;
  /** Bars drawn: buckets with accounts in them, before and after. */
  readonly bars: number;
}

export type RatiosModel = EmptyChart | RatiosPlot;

function medianOf(sorted: readonly number[]): number {
  const middle = sorted.length / 2;
  if (sorted.length === 0) return Number.NaN;
  if (sorted.length % 2 === 1) return sorted[Math.floor(middle)] ?? Number.NaN;
  return ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

export function bin(values: readonly unknown[]): Binned {
  const counts = BUCKETS.map(() => 0);
  const read: number[] = [];
  let unread = 0;
  for (const value of values) {
    const ratio = readNumber(value);
    if (Number.isNaN(ratio)) {
      unread++;
      continue;
    }
    const bucket = BUCKETS.findIndex(
      (candidate, index) => ratio < candidate.below || index === BUCKETS.length - 1,
    );
    counts[bucket] = (counts[bucket] ?? 0) + 1;
    read.push(ratio);
  }
  read.sort((a, b) => a - b);
  const breaching = read.filter((ratio) => ratio < 1).length;
  return { counts, read: read.length, unread, median: medianOf(read), breaching };
}

function medianText(median: number): string {
  if (Number.isNaN(median)) return "n/a";
  return Number.isFinite(median) ? median.toFixed(2) : "\u221e";
}

function summary(name: string, binned: Binned): string {
  return `${name}: ${plural(binned.read, "account", "accounts")}, ${formatCount(binned.breaching)} below 1.0, median ${medianText(binned.median)}`;
}

function barHovers(name: string, binned: Binned): Array<string | undefined> {
  return binned.counts.map((count, index) =>
    count > 0
      ? `${name}: ${plural(count, "account", "accounts")} with margin ratio ${BUCKETS[index]?.label}`
      : undefined,
  );
}

export function ratiosModel(data: RunReportData): RatiosModel {
  const before = bin(list(data.ratiosBefore));
  const after = bin(list(data.ratiosAfter));
  const unread = before.unread + after.unread;
  if (before.read === 0 && after.read === 0) {
    const why = unread ? ` (${plural(unread, "value", "values")} could not be read).` : ".";
    return emptyChart("Margin-ratio distribution", `No margin ratios were recorded${why}`);
  }
  const notes = unread
    ? [`${plural(unread, "ratio", "ratios")} could not be read as numbers and are not shown.`]
    : [];
  return {
    empty: false,
    title: "Margin-ratio distribution before and after the run",
    description: `${summary("Before", before)}; ${summary("after", after)}.`,
    legend: [
      { colour: BEFORE_COLOUR, text: summary("before (start)", before) },
      { colour: AFTER_COLOUR, text: summary("after (end)", after) },
    ],
    notes,
    points: before.read + after.read,
    hover: [barHovers("before", before), barHovers("after", after), [BREACH_HOVER]],
    before,
    after,
    bars: [...before.counts, ...after.counts].filter((count) => count > 0).length,
  };
}
