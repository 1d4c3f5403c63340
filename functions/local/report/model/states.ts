/**
 * The accounts-by-state chart's model: one stacked step per state that ever held an account, each
 * snapshot's count held until the next snapshot (the last until the run's end), and the size of the book.
 */

import type { RunReportData } from "../types.ts";
import {
  type ChartFrame,
  type EmptyChart,
  emptyChart,
  formatCount,
  hasOwn,
  list,
  OTHER_COLOUR,
  plural,
  readNumber,
  readTimeMs,
  runWindow,
  STATE_COLOURS,
  STATES,
} from "./common.ts";

interface Snapshot {
  readonly atMs: number;
  readonly counts: Readonly<Record<string, unknown>>;
}

export interface StateLayer {
  readonly state: string;
  readonly colour: string;
  /** The count at each snapshot, in time order. */
  readonly counts: readonly number[];
}

export interface StatesPlot extends ChartFrame {
  readonly empty: false;
  readonly fromMs: number;
  readonly toMs: number;
  /** When each snapshot was taken, in time order. */
  readonly snapshotsAtMs: readonly number[];
  /** Series order (and so the hover table's): the states bottom up, then the book's line. */
  readonly layers: readonly StateLayer[];
  /** The highest the stack may reach: the largest total or the book, whichever is more. */
  readonly maxAccounts: number;
  /** The book's size, drawn as a reference line when positive. */
  readonly bookAccounts: number;
}

export type StatesModel = EmptyChart | StatesPlot;

function readSnapshots(data: RunReportData): Snapshot[] {
  const snapshots: Snapshot[] = [];
  for (const snapshot of list(data.states)) {
    const atMs = readTimeMs(snapshot?.t);
    if (atMs === null) continue;
    const counts = snapshot.counts && typeof snapshot.counts === "object" ? snapshot.counts : {};
    snapshots.push({ atMs, counts });
  }
  return snapshots.sort((a, b) => a.atMs - b.atMs);
}

function countOf(snapshot: Snapshot, state: string): number {
  const count = hasOwn(snapshot.counts, state) ? readNumber(snapshot.counts[state]) : 0;
  return Number.isFinite(count) && count > 0 ? count : 0;
}

/** The known states in their order, then any other state the snapshots name. */
function statesNamed(snapshots: readonly Snapshot[]): string[] {
  const states = [...STATES];
  for (const snapshot of snapshots) {
    for (const state of Object.keys(snapshot.counts)) if (!states.includes(state)) states.push(state);
  }
  return states;
}

export function statesModel(data: RunReportData): StatesModel {
  const snapshots = readSnapshots(data);
  const firstSnapshot = snapshots[0];
  const lastSnapshot = snapshots[snapshots.length - 1];
  if (firstSnapshot === undefined || lastSnapshot === undefined) {
    return emptyChart("Accounts by state", "No state snapshots were recorded.");
  }
  const present = statesNamed(snapshots).filter((state) =>
    snapshots.some((snapshot) => countOf(snapshot, state) > 0),
  );
  if (present.length === 0) return emptyChart("Accounts by state", "Every snapshot counts zero accounts.");
  const maxTotal = Math.max(
    ...snapshots.map((snapshot) => present.reduce((sum, state) => sum + countOf(snapshot, state), 0)),
  );
  const book = readNumber(data.book?.accounts);
  const bookAccounts = Number.isFinite(book) ? book : 0;
  const window = runWindow(data, firstSnapshot.atMs, lastSnapshot.atMs);
  const toMs = window.toMs > window.fromMs ? window.toMs : window.fromMs + 60_000;
  const layers = present.map((state) => ({
    state,
    colour: STATE_COLOURS[state] ?? OTHER_COLOUR,
    counts: snapshots.map((snapshot) => countOf(snapshot, state)),
  }));
  const endText = (layer: StateLayer): string => formatCount(countOf(lastSnapshot, layer.state));
  const peakText = (layer: StateLayer): string => formatCount(Math.max(...layer.counts));
  return {
    empty: false,
    title: `Accounts by state over time, ${plural(snapshots.length, "snapshot", "snapshots")}`,
    description: `At the end: ${layers.map((layer) => `${layer.state} ${endText(layer)}`).join(", ")}.`,
    legend: layers.map((layer) => ({
      colour: layer.colour,
      text: `${layer.state} ${endText(layer)} (peak ${peakText(layer)})`,
    })),
    notes: [],
    points: snapshots.length,
    hover: layers.map((layer) => `${layer.state}: ${endText(layer)} at the end, peak ${peakText(layer)}`),
    fromMs: window.fromMs,
    toMs,
    snapshotsAtMs: snapshots.map((snapshot) => snapshot.atMs),
    layers,
    maxAccounts: Math.max(maxTotal, bookAccounts) || 1,
    bookAccounts,
  };
}
