/**
 * The timeline as ECharts options: one row per kind of event (its name and count on the left), each event
 * a dot at its time, dots at one instant spread a little up and down their row.
 */

import type { TimelinePlot } from "../model/timeline.ts";
import {
  baseOption,
  type ChartOption,
  LABEL_GREY,
  type MarginsPx,
  plotHeightPx,
  timeAxis,
} from "./option.ts";

const MARGINS: MarginsPx = { leftPx: 132, rightPx: 20, topPx: 10, bottomPx: 44 };
const DOT_SIZE_PX = 7;
const SHADED = "#f7f8fa";
const CLEAR = "rgba(0,0,0,0)";
/** Each jitter step moves a dot this share of its row's height. */
const JITTER_SHARE = 0.09;

/**
 * Series order: the dots, one series; the model's hover table follows it. The category axis counts rows
 * from the bottom, the model from the top.
 */
export function timelineOption(plot: TimelinePlot): ChartOption {
  const lanes = plot.laneLabels.length;
  const laneHeightPx = plotHeightPx(MARGINS) / lanes;
  return {
    ...baseOption(MARGINS),
    xAxis: timeAxis(plot.fromMs, plot.toMs),
    yAxis: {
      type: "category",
      data: [...plot.laneLabels].reverse(),
      axisTick: { show: false },
      axisLine: { show: false },
      axisLabel: { color: LABEL_GREY },
      // Rows are shaded alternately from the top one down, whichever way the count falls.
      splitArea: { show: true, areaStyle: { color: lanes % 2 === 1 ? [SHADED, CLEAR] : [CLEAR, SHADED] } },
    },
    series: [
      {
        type: "scatter",
        symbolSize: DOT_SIZE_PX,
        clip: false,
        large: false,
        progressive: 0,
        itemStyle: { opacity: 0.75 },
        data: plot.dots.map((dot) => ({
          value: [dot.atMs, lanes - 1 - dot.lane],
          itemStyle: { color: dot.colour },
          symbolOffset: [0, Math.round(dot.jitterStep * laneHeightPx * JITTER_SHARE * 10) / 10],
        })),
      },
    ],
  };
}
