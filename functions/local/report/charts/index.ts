/**
 * Draws one chart of a run as inline SVG with ECharts: the one entry point from the page to the charts. It
 * builds the chart's model from the run's data and picks the chart's options, or the short "no data" frame
 * when the model is empty.
 */

import type { ChartFrame, ChartName } from "../model/common.ts";
import { pricesModel } from "../model/prices.ts";
import { ratiosModel } from "../model/ratios.ts";
import { statesModel } from "../model/states.ts";
import { timelineModel } from "../model/timeline.ts";
import type { RunReportData } from "../types.ts";
import { CHART_HEIGHT_PX, type ChartOption, EMPTY_CHART_HEIGHT_PX, emptyOption } from "./option.ts";
import { pricesOption } from "./prices.ts";
import { ratiosOption } from "./ratios.ts";
import { statesOption } from "./states.ts";
import { labelSvg, renderSvg } from "./svg.ts";
import { timelineOption } from "./timeline.ts";

export interface DrawnChart {
  /** What the page shows around the svg: legend, notes. */
  readonly model: ChartFrame & { readonly empty: boolean };
  /** The svg element. */
  readonly svg: string;
}

function modelAndOption(
  data: RunReportData,
  name: ChartName,
): { model: DrawnChart["model"]; option: ChartOption } {
  switch (name) {
    case "prices": {
      const model = pricesModel(data);
      return { model, option: model.empty ? emptyOption() : pricesOption(model) };
    }
    case "states": {
      const model = statesModel(data);
      return { model, option: model.empty ? emptyOption() : statesOption(model) };
    }
    case "ratios": {
      const model = ratiosModel(data);
      return { model, option: model.empty ? emptyOption() : ratiosOption(model) };
    }
    case "timeline": {
      const model = timelineModel(data);
      return { model, option: model.empty ? emptyOption() : timelineOption(model) };
    }
  }
}

export function drawChart(data: RunReportData, name: ChartName): DrawnChart {
  const { model, option } = modelAndOption(data, name);
  const heightPx = model.empty ? EMPTY_CHART_HEIGHT_PX : CHART_HEIGHT_PX;
  return { model, svg: labelSvg(renderSvg(option, heightPx), name, model) };
}
