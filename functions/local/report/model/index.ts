/**
 * The four chart models by name: the one place that says which chart reads which part of the run's data,
 * used by the server to draw and by the page's script to attach hover texts to what was drawn.
 */

import type { RunReportData } from "../types.ts";
import type { ChartName } from "./common.ts";
import { type PricesModel, pricesModel } from "./prices.ts";
import { type RatiosModel, ratiosModel } from "./ratios.ts";
import { type StatesModel, statesModel } from "./states.ts";
import { type TimelineModel, timelineModel } from "./timeline.ts";

export interface ChartModels {
  readonly prices: PricesModel;
  readonly states: StatesModel;
  readonly ratios: RatiosModel;
  readonly timeline: TimelineModel;
}

export const CHART_NAMES: readonly ChartName[] = ["prices", "states", "ratios", "timeline"];

export const MODEL_BUILDERS: { readonly [Name in ChartName]: (data: RunReportData) => ChartModels[Name] } = {
  prices: pricesModel,
  states: statesModel,
  ratios: ratiosModel,
  timeline: timelineModel,
};

export function isChartName(name: string | null): name is ChartName {
  return name !== null && (CHART_NAMES as readonly string[]).includes(name);
}
