/**
 * The data of the demo's HTML report: the scenario, the price paths and halts, the accounts by state over
 * time, the margin ratios before and after, the timeline and the summary table. report.ts draws it; this
 * module only gathers what the run observed and found into the shape the report reads.
 */
import { dec, Rounding, sum, toFixedString } from "../../domain/money.ts";
import type { ReportLossWaterfall, RunReportData } from "../report.ts";
import type { ActorStats } from "./actors.ts";
import type { PricePath } from "./feed.ts";
import type { Findings, LatencyStats } from "./findings.ts";
import { STATUSES } from "./observers.ts";

const DESCRIPTION =
  "BTC falls ~34%, ETH ~39% and SOL ~48% over a compressed hour, with a flash drop at minute 23.5, two partial " +
  "recoveries, a stale ETH feed from minute 14 to 19, borrowers answering some calls with deposits, and an " +
  "execution system filling liquidation requests within their limit prices.";

/** What a run observed, as the report shows it. */
export interface RunObservations {
  readonly speed: number;
  readonly simulatedStart: string;
  readonly simulatedEndMs: number;
  readonly accounts: number;
  readonly pricePath: PricePath;
  readonly halts: RunReportData["halts"];
  readonly states: RunReportData["states"];
  readonly ratiosBefore: string[];
  readonly ratiosAfter: string[];
  /** Accounts by status at the end. */
  readonly counts: Readonly<Record<string, number>>;
  /** Notices sent, by kind. */
  readonly notices: Readonly<Record<string, number>>;
  /** Messages the SNS stub published (SMS and email). */
  readonly notificationsSent: number;
  readonly actorStats: ActorStats;
  /** The insurance fund's flows and the losses, from the events put on the bus (waterfall.ts). */
  readonly lossWaterfall: ReportLossWaterfall;
}

export function reportData(observed: RunObservations, findings: Findings): RunReportData {
  return {
    title: "Margin-call engine: market-crash demo",
    generatedAt: new Date().toISOString(),
    scenario: {
      name: "crash",
      description: DESCRIPTION,
      speed: observed.speed,
      simulatedStart: observed.simulatedStart,
      simulatedEnd: new Date(observed.simulatedEndMs).toISOString(),
    },
    book: { accounts: observed.accounts, currency: "USD" },
    prices: Object.entries(observed.pricePath).map(([asset, points]) => ({ asset, points })),
    halts: observed.halts,
    states: observed.states,
    ratiosBefore: observed.ratiosBefore,
    ratiosAfter: observed.ratiosAfter,
    timeline: findings.timeline,
    summary: summaryOf(observed, findings),
    lossWaterfall: observed.lossWaterfall,
  };
}

const latency = (stats: LatencyStats): string => `${stats.p50.toFixed(0)} ms / ${stats.p99.toFixed(0)} ms`;

/** The table at the top of the report: counts, latencies, loss. */
function summaryOf(observed: RunObservations, findings: Findings): RunReportData["summary"] {
  const { notices, actorStats } = observed;
  return [
    { label: "Accounts", value: String(observed.accounts) },
    ...STATUSES.map((status) => ({ label: `Ending ${status}`, value: String(observed.counts[status] ?? 0) })),
    { label: "Calls issued", value: String(notices.CALL ?? 0) },
    { label: "Cured", value: String(notices.CURED ?? 0) },
    { label: "Liquidation requests", value: String(findings.liquidationRequests) },
    { label: "Loss taken (USD)", value: findings.loss },
    ...fundSummary(observed.lossWaterfall),
    { label: "Notifications sent (SMS + email)", value: String(observed.notificationsSent) },
    { label: "Tick → call recorded, p50 / p99", value: latency(findings.tickToCallMs) },
    { label: "Call → notice sent, p50 / p99", value: latency(findings.callToNoticeMs) },
    {
      label: "Deposits in flight / settled / failed",
      value: `${actorStats.depositsPending} / ${actorStats.depositsSettled} / ${actorStats.depositsFailed}`,
    },
    { label: "Fills / unfilled attempts", value: `${actorStats.fills} / ${actorStats.unfilled}` },
  ];
}

/** The fund's rows of the summary: its balance at the end, and how the losses were met. */
function fundSummary(waterfall: ReportLossWaterfall): RunReportData["summary"] {
  const { currency, flows, losses } = waterfall;
  const scale = flows[0]?.balanceAfter.split(".")[1]?.length ?? 2;
  const total = (amounts: readonly string[]) =>
    toFixedString(sum(amounts.map((amount) => dec(amount))), scale, Rounding.HALF_EVEN);
  const fees = flows.filter((flow) => flow.cause === "LIQUIDATION_FEE");
  return [
    { label: `Insurance fund at the end (${currency})`, value: flows.at(-1)?.balanceAfter ?? total([]) },
    {
      label: `Liquidation fees credited (${currency})`,
      value: `${total(fees.map((flow) => flow.amount))} (${fees.length})`,
    },
    {
      label: `Losses covered by the fund / bad debt (${currency})`,
      value: `${total(losses.map((loss) => loss.fundCover))} / ${total(losses.map((loss) => loss.badDebt))}`,
    },
  ];
}
