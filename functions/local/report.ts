/**
 * The run report's public face, where the demo and the tests import it from. The report itself lives in
 * ./report/: the chart models, the ECharts options, the page shell and the bundled page script.
 */

export {
  MAX_TIMELINE_DOTS,
  type ReportDeleveraging,
  type ReportFundFlow,
  type ReportLoss,
  type ReportLossWaterfall,
  type ReportSocialisedLoss,
  type ReportStatus,
  type RunReportData,
  renderReport,
  scriptSafeJson,
  type TimelineKind,
} from "./report/index.ts";
