/**
 * The margin-ratio chart as ECharts options: accounts per bucket before (grey) and after (orange) side by
 * side, the buckets under 1.0 shaded pink, and the red dashed maintenance line between them.
 *
 * The buckets sit on a category axis; the zone and the line sit on a hidden value axis over the same width
 * (0 to the number of buckets), where a bucket's boundary is a whole number.
 */

import type { XAXisComponentOption } from "echarts";
import type { BarSeriesOption } from "echarts/charts";
import {
  AFTER_COLOUR,
  BEFORE_COLOUR,
  type Binned,
  BUCKETS,
  MAINTENANCE_BUCKET,
  type RatiosPlot,
} from "../model/ratios.ts";
import {
  areaCarrier,
  BOTTOM_RIGHT_NAME,
  baseOption,
  CHART_WIDTH_PX,
  type ChartOption,
  lineCarrier,
  type MarginsPx,
  valueAxis,
} from "./option.ts";

const MARGINS: MarginsPx = { leftPx: 76, rightPx: 20, topPx: 26, bottomPx: 50 };
const SLOT_WIDTH_PX = (CHART_WIDTH_PX - MARGINS.leftPx - MARGINS.rightPx) / BUCKETS.length;
const BAR_WIDTH_PX = Math.min(56, SLOT_WIDTH_PX * 0.36);

function bars(name: string, colour: string, binned: Binned): BarSeriesOption {
  return {
    type: "bar",
    name,
    data: binned.counts.map((count) => (count > 0 ? count : null)),
    barWidth: BAR_WIDTH_PX,
    barGap: `${((2 / BAR_WIDTH_PX) * 100).toFixed(1)}%`,
    color: colour,
    clip: false,
    label: { show: true, position: "top", fontSize: 11 },
    emphasis: { disabled: true },
  };
}

function bucketAxes(): XAXisComponentOption[] {
  return [
    {
      type: "category",
      data: BUCKETS.map((bucket) => bucket.label),
      name: "margin ratio",
      ...BOTTOM_RIGHT_NAME,
      axisTick: { show: false },
      axisLine: { lineStyle: { color: "#9aa5b4" } },
    },
    { type: "value", min: 0, max: BUCKETS.length, show: false },
  ];
}

/** Series order: before, after, the breach zone, the maintenance line; the model's hover table follows it. */
export function ratiosOption(plot: RatiosPlot): ChartOption {
  return {
    ...baseOption(MARGINS),
    xAxis: bucketAxes(),
    yAxis: valueAxis("accounts", { min: 0, minInterval: 1, boundaryGap: [0, "10%"] }),
    series: [
      bars("before", BEFORE_COLOUR, plot.before),
      bars("after", AFTER_COLOUR, plot.after),
      areaCarrier(
        {
          silent: false,
          itemStyle: { color: "#ffebee" },
          emphasis: { disabled: true },
          data: [[{ xAxis: 0 }, { xAxis: MAINTENANCE_BUCKET }]],
        },
        1,
      ),
      lineCarrier(
        {
          lineStyle: { color: "#c62828", width: 2, type: [6, 4] },
          label: {
            show: true,
            position: "end",
            color: "#c62828",
            fontWeight: 600,
            formatter: () => "1.0 maintenance",
          },
          data: [{ xAxis: MAINTENANCE_BUCKET }],
        },
        1,
      ),
    ],
  };
}
