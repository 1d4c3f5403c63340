/**
 * The ECharts option pieces every chart shares: the drawing size, fonts and greys of the page, a time axis
 * in UTC, a count axis, and "carrier" series that hold only a mark area or a mark line, so that each kind
 * of mark has a series index of its own and the page's script can tell which mark a hover text belongs to.
 */

import type { XAXisComponentOption, YAXisComponentOption } from "echarts";
import type { BarSeriesOption, LineSeriesOption, ScatterSeriesOption } from "echarts/charts";
import type { GridComponentOption, TitleComponentOption } from "echarts/components";
import type { ComposeOption } from "echarts/core";

export type ChartOption = ComposeOption<
  BarSeriesOption | LineSeriesOption | ScatterSeriesOption | GridComponentOption | TitleComponentOption
>;
export type MarkAreaOption = NonNullable<ScatterSeriesOption["markArea"]>;
export type MarkLineOption = NonNullable<ScatterSeriesOption["markLine"]>;

export const CHART_WIDTH_PX = 960;
export const CHART_HEIGHT_PX = 320;
export const EMPTY_CHART_HEIGHT_PX = 90;

export const FONT_FAMILY = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
export const LABEL_GREY = "#4a5563";
const AXIS_NAME_GREY = "#6b7685";
const AXIS_GREY = "#9aa5b4";
const GRID_GREY = "#edf0f4";

export interface MarginsPx {
  readonly leftPx: number;
  readonly rightPx: number;
  readonly topPx: number;
  readonly bottomPx: number;
}

/** The plot area's height in pixels once the margins are taken off. */
export function plotHeightPx(margins: MarginsPx): number {
  return CHART_HEIGHT_PX - margins.topPx - margins.bottomPx;
}

/** What every chart has: no animation (it is a still picture), UTC times, the page's font and greys. */
export function baseOption(margins: MarginsPx): ChartOption {
  return {
    animation: false,
    useUTC: true,
    textStyle: { fontFamily: FONT_FAMILY, fontSize: 12, color: LABEL_GREY },
    grid: {
      left: margins.leftPx,
      right: margins.rightPx,
      top: margins.topPx,
      bottom: margins.bottomPx,
      outerBoundsMode: "none",
    },
  };
}

const AXIS_NAME_STYLE = { color: AXIS_NAME_GREY, fontFamily: FONT_FAMILY, fontSize: 12 };

/** Puts a horizontal axis's name under its right end, below the tick labels. */
export const BOTTOM_RIGHT_NAME = {
  nameLocation: "end",
  nameGap: 0,
  nameTextStyle: { ...AXIS_NAME_STYLE, align: "right", verticalAlign: "top", padding: [22, 0, 0, 0] },
} as const satisfies XAXisComponentOption;

/** A horizontal time axis over [fromMs, toMs], labelled in UTC. */
export function timeAxis(fromMs: number, toMs: number): XAXisComponentOption {
  return {
    type: "time",
    min: fromMs,
    max: toMs,
    name: "time (UTC)",
    ...BOTTOM_RIGHT_NAME,
    axisLine: { lineStyle: { color: AXIS_GREY } },
    axisTick: { lineStyle: { color: AXIS_GREY } },
    axisLabel: { color: LABEL_GREY, hideOverlap: true, alignMaxLabel: "right" },
    splitLine: { show: false },
  };
}

/** A vertical value axis named along its side, with light grid lines. */
export function valueAxis(name: string, extra: YAXisComponentOption = {}): YAXisComponentOption {
  return {
    type: "value",
    name,
    nameLocation: "middle",
    nameGap: 60,
    nameMoveOverlap: false,
    nameRotate: 90,
    nameTextStyle: AXIS_NAME_STYLE,
    axisLabel: { color: LABEL_GREY },
    splitLine: { lineStyle: { color: GRID_GREY } },
    ...extra,
    // ECharts' axis option is a union over the axis types, which a spread cannot narrow back.
  } as YAXisComponentOption;
}

/** A series with no data of its own that carries one mark area (the halts, the breach zone). */
export function areaCarrier(markArea: MarkAreaOption, xAxisIndex = 0): ScatterSeriesOption {
  return { type: "scatter", data: [], xAxisIndex, clip: false, markArea };
}

/** A series with no data of its own that carries one mark line (a reference or a threshold). */
export function lineCarrier(markLine: MarkLineOption, xAxisIndex = 0): ScatterSeriesOption {
  return {
    type: "scatter",
    data: [],
    xAxisIndex,
    clip: false,
    markLine: { symbol: "none", silent: true, ...markLine },
  };
}

/** A dashed grey reference line at `value` on the y axis, with an optional label at its right end. */
export function referenceLine(value: number, label?: string): ScatterSeriesOption {
  return lineCarrier({
    lineStyle: { color: AXIS_GREY, type: [4, 4], width: 1 },
    label:
      label === undefined
        ? { show: false }
        : { show: true, position: "insideEndTop", formatter: () => label },
    data: [{ yAxis: value }],
  });
}

/** An empty chart: the words "no data" in the middle of a short frame. */
export function emptyOption(): ChartOption {
  return {
    animation: false,
    title: {
      text: "no data",
      left: "center",
      top: "middle",
      textStyle: { fontFamily: FONT_FAMILY, fontSize: 18, fontWeight: "normal", color: "#8a94a3" },
    },
  };
}
