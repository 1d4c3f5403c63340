/**
 * The accounts-by-state chart as ECharts options: the states stacked as step areas (each snapshot's count
 * holds until the next one, the last until the run's end) and a dashed line at the size of the book.
 */

import type { LineSeriesOption } from "echarts/charts";
import { plural } from "../model/common.ts";
import type { StateLayer, StatesPlot } from "../model/states.ts";
import {
  baseOption,
  type ChartOption,
  LABEL_GREY,
  type MarginsPx,
  referenceLine,
  timeAxis,
  valueAxis,
} from "./option.ts";

const MARGINS: MarginsPx = { leftPx: 76, rightPx: 20, topPx: 16, bottomPx: 44 };

function stateArea(plot: StatesPlot, layer: StateLayer): LineSeriesOption {
  const steps = plot.snapshotsAtMs.map((atMs, index) => [atMs, layer.counts[index] ?? 0]);
  const lastCount = layer.counts[layer.counts.length - 1] ?? 0;
  const lastAtMs = plot.snapshotsAtMs[plot.snapshotsAtMs.length - 1] ?? plot.toMs;
  if (plot.toMs > lastAtMs) steps.push([plot.toMs, lastCount]);
  return {
    type: "line",
    name: layer.state,
    stack: "accounts",
    step: "end",
    data: steps,
    showSymbol: false,
    clip: false,
    color: layer.colour,
    lineStyle: { width: 0 },
    areaStyle: { color: layer.colour, opacity: 0.85 },
    emphasis: { disabled: true },
  };
}

/** Series order: the states bottom up, then the book's line; the model's hover table follows it. */
export function statesOption(plot: StatesPlot): ChartOption {
  const book =
    plot.bookAccounts > 0
      ? [referenceLine(plot.bookAccounts, `book: ${plural(plot.bookAccounts, "account", "accounts")}`)]
      : [];
  return {
    ...baseOption(MARGINS),
    xAxis: timeAxis(plot.fromMs, plot.toMs),
    yAxis: valueAxis("accounts", {
      min: 0,
      max: Math.ceil(plot.maxAccounts * 1.04),
      minInterval: 1,
      // The top is 4% above the most accounts, rarely a round number: its label would crowd the last one.
      axisLabel: { color: LABEL_GREY, showMaxLabel: false },
    }),
    series: [...plot.layers.map((layer) => stateArea(plot, layer)), ...book],
  };
}
