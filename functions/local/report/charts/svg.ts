/**
 * Turns an ECharts option into the SVG markup the page inlines: ECharts' server-side SVG renderer draws it
 * (no DOM needed), then the root element gets the page's class, an accessible title and description, and
 * ids named after the chart instead of the renderer's process-wide counter, so that the same run always
 * gives the same page and four charts in one page never share an id or a CSS class.
 */

import { BarChart, LineChart, ScatterChart } from "echarts/charts";
import { GridComponent, MarkAreaComponent, MarkLineComponent, TitleComponent } from "echarts/components";
import { init, use } from "echarts/core";
import { SVGRenderer } from "echarts/renderers";
import { escapeMarkup } from "../markup.ts";
import type { ChartName } from "../model/common.ts";
import { CHART_WIDTH_PX, type ChartOption } from "./option.ts";

use([
  BarChart,
  LineChart,
  ScatterChart,
  GridComponent,
  MarkAreaComponent,
  MarkLineComponent,
  TitleComponent,
  SVGRenderer,
]);

const SVG_NAMESPACE = "http://www.w3.org/2000/svg";

/** ECharts' SVG for the option, `heightPx` tall and as wide as every chart. */
export function renderSvg(option: ChartOption, heightPx: number): string {
  const chart = init(null, null, { renderer: "svg", ssr: true, width: CHART_WIDTH_PX, height: heightPx });
  try {
    chart.setOption(option);
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/**
 * Renames the renderer's ids and classes (`zr<painter>-cls-<counter>`, `zr<painter>-c<counter>`, both
 * counted across the process) to `chart-<name>-cls-<n>` and `chart-<name>-c<n>`, numbered in order of first
 * appearance; in tags and in the style element only, never in text a chart prints.
 */
function renameIds(svg: string, name: ChartName): string {
  const renamed = new Map<string, string>();
  const perKind = new Map<string, number>();
  const rename = (id: string, kind: string): string => {
    let next = renamed.get(id);
    if (next === undefined) {
      const index = perKind.get(kind) ?? 0;
      perKind.set(kind, index + 1);
      next = `chart-${name}-${kind}${index}`;
      renamed.set(id, next);
    }
    return next;
  };
  return svg.replace(/<style\b[^>]*>[\s\S]*?<\/style>|<[^>]*>/g, (markup) =>
    markup.replace(/\bzr\d+-([a-z]+-?)\d+\b/g, (id, kind: string) => rename(id, kind)),
  );
}

export interface SvgLabels {
  readonly title: string;
  readonly description: string;
}

/**
 * The svg element with a fluid width (viewBox only), `class="plot"`, and a title and description that name
 * it for screen readers and show its facts in words.
 */
export function labelSvg(svg: string, name: ChartName, labels: SvgLabels): string {
  const openTag = /^<svg\b[^>]*>/.exec(svg);
  const viewBox = openTag === null ? undefined : /\sviewBox="([^"]*)"/.exec(openTag[0])?.[1];
  if (openTag === null || viewBox === undefined) throw new Error(`ECharts drew no svg element for ${name}`);
  const titleId = `svg-title-${name}`;
  const descriptionId = `svg-desc-${name}`;
  const root =
    `<svg xmlns="${SVG_NAMESPACE}" viewBox="${viewBox}" role="img" class="plot" ` +
    `aria-labelledby="${titleId} ${descriptionId}">` +
    `<title id="${titleId}">${escapeMarkup(labels.title)}</title>` +
    `<desc id="${descriptionId}">${escapeMarkup(labels.description)}</desc>`;
  return root + renameIds(svg.slice(openTag[0].length), name);
}
