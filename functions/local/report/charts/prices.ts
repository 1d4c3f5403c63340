/**
 * The price chart as ECharts options: one line per asset over a UTC time axis, the halt episodes as shaded
 * and labelled mark areas, and a dashed line at 100 when the paths are indexed.
 */

import type { LineSeriesOption } from "echarts/charts";
import type { PricesPlot } from "../model/prices.ts";
import {
  areaCarrier,
  baseOption,
  CHART_WIDTH_PX,
  type ChartOption,
  type MarginsPx,
  referenceLine,
  timeAxis,
  valueAxis,
} from "./option.ts";

const MARGINS: MarginsPx = { leftPx: 76, rightPx: 20, topPx: 16, bottomPx: 44 };
/** A halt shorter than this still shows as a sliver. */
const MIN_HALT_WIDTH_PX = 3;
/** Halt labels step down this far, three deep, so that neighbouring episodes do not print over each other. */
const HALT_LABEL_STEP_PX = 14;

function assetLine(line: PricesPlot["lines"][number]): LineSeriesOption {
  return {
    type: "line",
    name: line.asset,
    data: line.vertices.map(([atMs, value]) => [atMs, value]),
    showSymbol: line.vertices.length === 1,
    symbol: "circle",
    symbolSize: 6,
    clip: false,
    color: line.colour,
    lineStyle: { width: 2, join: "round" },
    emphasis: { disabled: true },
  };
}

/** The run's window, or a minute around its one instant, so that a lone price sits mid-chart. */
function axisWindow(plot: PricesPlot): { fromMs: number; toMs: number } {
  return plot.toMs > plot.fromMs ? plot : { fromMs: plot.fromMs - 30_000, toMs: plot.toMs + 30_000 };
}

function haltAreas(plot: PricesPlot): ReturnType<typeof areaCarrier> {
  const { fromMs, toMs } = axisWindow(plot);
  const msPerPx = (toMs - fromMs) / (CHART_WIDTH_PX - MARGINS.leftPx - MARGINS.rightPx);
  const minWidthMs = MIN_HALT_WIDTH_PX * msPerPx;
  return areaCarrier({
    silent: false,
    itemStyle: { color: "rgba(144,164,174,0.2)", borderColor: "#78909c", borderWidth: 1, borderType: [3, 3] },
    emphasis: { disabled: true },
    data: plot.halts.map((band, index) => {
      const label = `prices halted: ${band.asset}`;
      return [
        {
          xAxis: band.fromMs,
          label: {
            show: true,
            position: "insideTopLeft",
            offset: [0, HALT_LABEL_STEP_PX * (index % 3)],
            color: "#37474f",
            fontStyle: "italic",
            formatter: () => label,
          },
        },
        { xAxis: Math.max(band.toMs, band.fromMs + minWidthMs) },
      ];
    }),
  });
}

/** Series order: the asset lines, the halts, the line at 100; the model's hover table follows it. */
export function pricesOption(plot: PricesPlot): ChartOption {
  return {
    ...baseOption(MARGINS),
    xAxis: timeAxis(axisWindow(plot).fromMs, axisWindow(plot).toMs),
    yAxis: valueAxis(plot.yAxisName, { scale: true, boundaryGap: ["8%", "8%"] }),
    series: [...plot.lines.map(assetLine), haltAreas(plot), ...(plot.indexed ? [referenceLine(100)] : [])],
  };
}
