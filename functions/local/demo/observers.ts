/**
 * How the demo watches the engine without touching it: table scans of what it recorded, samples of the
 * accounts by call state over time, margin ratios across the book, and the live progress line.
 */
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { TABLE_LOGICAL_IDS } from "../../../lib/tables.ts";
import { loadAccountInputs, loadSources } from "../../adapters/account-inputs.ts";
import { fromImage } from "../../adapters/codec.ts";
import type { PolicyEntry } from "../../adapters/settings.ts";
import { STATUSES as MACHINE_STATUSES } from "../../domain/machine.ts";
import type { SourceMark } from "../../domain/prices.ts";
import { marginRatio, valueAccount } from "../../domain/valuation.ts";
import type { ReportStatus, RunReportData } from "../report.ts";
import type { LocalRuntime } from "../runtime.ts";
import type { MarketFeed } from "./feed.ts";
import { type RecordedRow, statusCounts } from "./findings.ts";
import { OPENING } from "./market.ts";

export const STATUSES: readonly ReportStatus[] = MACHINE_STATUSES;

/** Margin ratios are computed by this many accounts at a time. */
const RATIO_WORKERS = 6;

/** Every item of a table, or only the named attributes of each. */
export async function scanAll(
  runtime: LocalRuntime,
  table: string,
  attributes?: string[],
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, never> | undefined;
  const names = Object.fromEntries((attributes ?? []).map((name, index) => [`#a${index}`, name]));
  do {
    const page = await runtime.dynamo.send(
      new ScanCommand({
        TableName: table,
        ExclusiveStartKey: start,
        ...(attributes
          ? { ProjectionExpression: Object.keys(names).join(", "), ExpressionAttributeNames: names }
          : {}),
      }),
    );
    items.push(...(page.Items ?? []).map(fromImage));
    start = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start);
  return items;
}

/** What the engine recorded: the audit log and the outbox say what happened, and when. */
export async function readRecords(runtime: LocalRuntime): Promise<{
  audit: Record<string, unknown>[];
  outbox: Record<string, unknown>[];
  calls: Record<string, unknown>[];
}> {
  const audit = await scanAll(runtime, "AuditLog");
  const outbox = await scanAll(runtime, "Outbox");
  const calls = await scanAll(runtime, "MarginCalls");
  return { audit, outbox, calls };
}

/** The accounts by call state, sampled over the run for the report's chart. */
export class StateSampler {
  readonly states: RunReportData["states"] = [];

  constructor(
    private readonly runtime: LocalRuntime,
    private readonly accounts: number,
  ) {}

  async sample(): Promise<Partial<Record<ReportStatus, number>>> {
    const calls: readonly RecordedRow[] = await scanAll(this.runtime, "MarginCalls", ["accountId", "status"]);
    const counts: Partial<Record<ReportStatus, number>> = statusCounts(calls, this.accounts);
    this.states.push({ t: this.runtime.now(), counts });
    return counts;
  }
}

/** The margin ratio of every account of the book that has one, as the engine would value it now. */
export async function marginRatios(
  runtime: LocalRuntime,
  policies: ReadonlyMap<string, PolicyEntry>,
  accountIds: readonly string[],
): Promise<string[]> {
  // Local tables are named after their logical ids.
  const tables = TABLE_LOGICAL_IDS;
  const ratios: string[] = [];
  // Every account is valued at the same moment: each asset's prices are read once, not once per account.
  const prices = new Map<string, Promise<SourceMark[]>>();
  const sourcesOf = (asset: string) => {
    let read = prices.get(asset);
    if (!read) {
      read = loadSources(runtime.dynamo, tables, asset);
      prices.set(asset, read);
    }
    return read;
  };
  let next = 0;
  const worker = async () => {
    while (next < accountIds.length) {
      const accountId = accountIds[next++];
      if (accountId === undefined) continue;
      const loaded = await loadAccountInputs(
        runtime.dynamo,
        tables,
        policies,
        accountId,
        runtime.nowMs(),
        undefined,
        sourcesOf,
      );
      if (!loaded.ok) continue;
      const ratio = marginRatio(
        valueAccount(loaded.inputs.account, loaded.inputs.marks, loaded.inputs.policy.policy),
      );
      if (ratio) ratios.push(ratio.toFixed());
    }
  };
  await Promise.all(Array.from({ length: RATIO_WORKERS }, worker));
  return ratios;
}

/**
 * One line of live progress: the minute, the prices, the accounts by state, notices sent, the backlog, the
 * insurance fund and the losses, and the assets whose liquidations are paused.
 */
export function progressLine(
  runtime: LocalRuntime,
  feed: MarketFeed,
  counts: Partial<Record<ReportStatus, number>>,
  /** The assets whose circuit breaker is tripped now. */
  paused: readonly string[] = [],
  /** The insurance fund's balance and the losses so far (waterfall.ts `fundProgressText`). */
  fund?: string,
): string {
  const minute = Math.floor((runtime.nowMs() - feed.scenarioStartMs) / 60_000);
  const prices = Object.keys(OPENING)
    .map((asset) => `${asset} ${feed.lastPrice(asset)}`)
    .join("  ");
  const backlog = Object.entries(runtime.backlog())
    .filter(([, depth]) => depth > 0)
    .map(([name, depth]) => `${mappingName(name)}:${depth}`)
    .join(" ");
  return (
    `min ${String(minute).padStart(2)} | ${prices} | ` +
    STATUSES.map((status) => `${status.toLowerCase().replace("_", " ")} ${counts[status] ?? 0}`).join(", ") +
    ` | notices ${runtime.stub.published.length} | backlog ${backlog || "none"}` +
    (fund ? ` | ${fund}` : "") +
    (paused.length ? ` | liquidations paused: ${paused.join(", ")}` : "")
  );
}

/** A mapping's short name, as the progress line and the summary show it. */
export const mappingName = (logicalId: string) => logicalId.replace(/Function.*$/, "");

/** The largest backlog each stream and queue reached, sampled every 100 ms from the crash to the end. */
export class PeakBacklog {
  readonly peaks: Record<string, number> = {};
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly runtime: LocalRuntime) {}

  start(): void {
    this.timer ??= setInterval(() => {
      for (const [name, depth] of Object.entries(this.runtime.backlog())) {
        const short = mappingName(name);
        this.peaks[short] = Math.max(this.peaks[short] ?? 0, depth);
      }
    }, 100);
  }

  stop(): Record<string, number> {
    clearInterval(this.timer);
    this.timer = undefined;
    return this.peaks;
  }
}
