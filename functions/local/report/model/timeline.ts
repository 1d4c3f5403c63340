/**
 * The timeline's model: every event with a readable time, in time order, on the row of its kind; at most
 * MAX_TIMELINE_DOTS of them (the earliest), and the chart says so when it cuts.
 */

import { MAX_TIMELINE_DOTS, type RunReportData } from "../types.ts";
import {
  type ChartFrame,
  type EmptyChart,
  emptyChart,
  formatCount,
  isoTime,
  KIND_COLOURS,
  KINDS,
  list,
  OTHER_COLOUR,
  plural,
  readTimeMs,
  runWindow,
} from "./common.ts";

export interface TimelineDot {
  readonly atMs: number;
  /** The row of its kind, counted from the top. */
  readonly lane: number;
  readonly colour: string;
  /** -3 to 3: spreads dots at one instant a little up and down their row. */
  readonly jitterStep: number;
}

export interface TimelinePlot extends ChartFrame {
  readonly empty: false;
  readonly fromMs: number;
  readonly toMs: number;
  /** One label per row, top down: the kind and how many of its events are shown. */
  readonly laneLabels: readonly string[];
  /** Series order (and so the hover table's): the dots, one series. */
  readonly dots: readonly TimelineDot[];
}

export type TimelineModel = EmptyChart | TimelinePlot;

interface Event {
  readonly atMs: number;
  readonly kind: string;
  readonly hover: string;
}

function readEvents(data: RunReportData): { events: Event[]; unread: number } {
  const read: Array<Event & { order: number }> = [];
  let unread = 0;
  list(data.timeline).forEach((event, order) => {
    const atMs = readTimeMs(event?.t);
    if (atMs === null) {
      unread++;
      return;
    }
    const kind = String(event.kind);
    const detail = event.detail == null ? "" : String(event.detail);
    const hover = `${isoTime(atMs)} ${kind} ${String(event.accountId)}${detail ? `: ${detail}` : ""}`;
    read.push({ atMs, kind, hover, order });
  });
  read.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
  return { events: read, unread };
}

export function timelineModel(data: RunReportData): TimelineModel {
  const { events, unread } = readEvents(data);
  const shown = events.slice(0, MAX_TIMELINE_DOTS);
  const firstEvent = shown[0];
  const lastEvent = shown[shown.length - 1];
  if (firstEvent === undefined || lastEvent === undefined) {
    const why = unread ? ` (${plural(unread, "event", "events")} without a readable time).` : ".";
    return emptyChart("Timeline of calls, cures and liquidations", `No events were recorded${why}`);
  }
  const lanes = [...KINDS];
  const perLane = new Map<string, number>();
  for (const event of shown) {
    if (!lanes.includes(event.kind)) lanes.push(event.kind);
    perLane.set(event.kind, (perLane.get(event.kind) ?? 0) + 1);
  }
  const window = runWindow(data, firstEvent.atMs, lastEvent.atMs);
  const widened =
    window.toMs > window.fromMs ? window : { fromMs: window.fromMs - 30e3, toMs: window.toMs + 30e3 };
  const cut = shown.length < events.length;
  const notes = cut
    ? [`showing the first ${formatCount(shown.length)} of ${formatCount(events.length)} events`]
    : [];
  if (unread) notes.push(`${plural(unread, "event", "events")} without a readable time are not shown.`);
  return {
    empty: false,
    title: `Timeline of ${plural(events.length, "event", "events")}${cut ? `, the first ${formatCount(shown.length)} shown` : ""}`,
    description: `${lanes
      .filter((kind) => perLane.has(kind))
      .map((kind) => `${kind} ${formatCount(perLane.get(kind) ?? 0)}`)
      .join(", ")}.`,
    legend: [],
    notes,
    points: shown.length,
    hover: [shown.map((event) => event.hover)],
    ...widened,
    laneLabels: lanes.map((kind) => `${kind} (${formatCount(perLane.get(kind) ?? 0)})`),
    dots: shown.map((event, index) => ({
      atMs: event.atMs,
      lane: lanes.indexOf(event.kind),
      colour: KIND_COLOURS[event.kind] ?? OTHER_COLOUR,
      jitterStep: (index % 7) - 3,
    })),
  };
}
