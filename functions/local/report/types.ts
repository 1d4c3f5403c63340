/**
 * The shape of a run report's data: what the demo run hands to `renderReport`, and what the page embeds as
 * JSON for its script. Kept apart from the rendering so that the browser bundle and the server share it
 * without pulling in either side's code.
 */

export type ReportStatus =
  | "HEALTHY"
  | "WARNING"
  | "CALLED"
  | "CURED"
  | "LIQUIDATING"
  | "LIQUIDATED"
  | "BAD_DEBT";

export type TimelineKind = "CALL" | "CURED" | "LIQUIDATION" | "LIQUIDATED" | "BAD_DEBT" | "HALT" | "RESUME";

export interface RunReportData {
  title: string;
  /** ISO-8601. */
  generatedAt: string;
  scenario: {
    name: string;
    description: string;
    speed: number;
    simulatedStart: string;
    simulatedEnd: string;
  };
  book: { accounts: number; currency: string };
  /** Price path per asset, prices as decimal strings. */
  prices: Array<{ asset: string; points: Array<{ t: string; price: string }> }>;
  /** Stale or diverging episodes, shaded on the price chart. */
  halts: Array<{ asset: string; from: string; to: string; reason: string }>;
  /** Accounts by state over time. */
  states: Array<{ t: string; counts: Partial<Record<ReportStatus, number>> }>;
  /** Margin ratios (decimal strings) of every account at the start. */
  ratiosBefore: string[];
  /** Margin ratios (decimal strings) of every account at the end. */
  ratiosAfter: string[];
  timeline: Array<{ t: string; accountId: string; kind: TimelineKind; detail: string }>;
  /** Counts, latencies, loss: shown as a table at the top. */
  summary: Array<{ label: string; value: string }>;
}

/** At most this many timeline dots are drawn (the earliest ones); the chart says so when it cuts. */
export const MAX_TIMELINE_DOTS = 2000;
