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
  /** The insurance fund's flows and the losses it met, from the engine's events; absent: not recorded. */
  lossWaterfall?: ReportLossWaterfall;
}

/**
 * The loss waterfall as the engine's events tell it (docs/events.md): amounts are the events' decimal
 * strings at the currency's scale, quantities and prices as the events wrote them.
 */
export interface ReportLossWaterfall {
  currency: string;
  /** Every InsuranceFundFlow, in ledger order (seq). */
  flows: ReportFundFlow[];
  /** Every loss recorded (LossRecorded), with what each tier of the waterfall took of it, in time order. */
  losses: ReportLoss[];
  /** Every DeleveragingRequested. */
  deleveraging: ReportDeleveraging[];
  /** Every LossSocialised. */
  socialised: ReportSocialisedLoss[];
}

export interface ReportFundFlow {
  /** The flow's recordedAt. */
  t: string;
  seq: number;
  cause: string;
  /** Signed: above 0 credits the fund, below 0 covers a loss. */
  amount: string;
  balanceAfter: string;
  accountId: string | null;
  /** The flow's own reference (its flow id) and its cause's (a request, a loss, a ticket). */
  reference: string;
  sourceReference: string;
}

export interface ReportLoss {
  t: string;
  accountId: string;
  /** The loss's reference (`<accountId>:v<version>:loss`), which its waterfall's references extend. */
  reference: string;
  shortfall: string;
  /** False while the waterfall has not run (no BANKRUPTCY_COVER flow yet): the covers below are 0. */
  settled: boolean;
  fundCover: string;
  adlCover: string;
  socialisedCover: string;
  badDebt: string;
}

export interface ReportDeleveraging {
  t: string;
  reference: string;
  bankruptAccountId: string;
  instrument: string;
  bankruptSide: string;
  bankruptcyPrice: string;
  quantityNeeded: string;
  quantityClosed: string;
  cover: string;
  instructions: Array<{
    accountId: string;
    side: string;
    quantity: string;
    price: string;
    closesAll: boolean;
    rank: number;
  }>;
}

export interface ReportSocialisedLoss {
  t: string;
  reference: string;
  bankruptAccountId: string;
  base: string;
  baseTotal: string;
  amount: string;
  charges: Array<{ accountId: string; amount: string }>;
}

/** At most this many timeline dots are drawn (the earliest ones); the chart says so when it cuts. */
export const MAX_TIMELINE_DOTS = 2000;
