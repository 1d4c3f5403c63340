/**
 * The market-crash demo: seeds a generated book, replays the crash through the local runtime (the deployed
 * handlers, driven by DynamoDB Local streams and schedules), shows progress live, and ends with a summary
 * and an HTML report. Everything the engine sees arrives through the upstream data contract.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { TABLE_LOGICAL_IDS } from "../../../lib/tables.ts";
import { loadAccountInputs } from "../../adapters/account-inputs.ts";
import { fromImage, toItem } from "../../adapters/codec.ts";
import { parsePolicies } from "../../adapters/settings.ts";
import { STATUSES as MACHINE_STATUSES } from "../../domain/machine.ts";
import { type Dec, dec, Rounding, toFixedString, ZERO } from "../../domain/money.ts";
import { marginRatio, valueAccount } from "../../domain/valuation.ts";
import { type ReportStatus, type RunReportData, renderReport } from "../report.ts";
import { LocalRuntime } from "../runtime.ts";
import { Borrowers, type Clock, ExecutionSystem } from "./actors.ts";
import { generateBook, seededRandom, writeAccounts } from "./book.ts";
import { OPENING, priceAt, publishes, SOURCES, STALE_EPISODES, volatilityAt } from "./market.ts";

export interface DemoOptions {
  readonly accounts: number;
  /** Simulated seconds per real second during the scenario. */
  readonly speed: number;
  /** Simulated minutes of the scenario. */
  readonly minutes: number;
  readonly seed: number;
  readonly dataDir?: string;
  readonly outputDir?: string;
  readonly log: (line: string) => void;
  /** Live progress lines; the CLI redraws one line on a terminal. */
  readonly progress?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface DemoResult {
  readonly counts: Record<string, number>;
  readonly notices: Record<string, number>;
  readonly liquidationRequests: number;
  readonly loss: string;
  readonly tickToCallMs: { p50: number; p99: number; n: number };
  readonly callToNoticeMs: { p50: number; p99: number; n: number };
  readonly reportPath: string;
  readonly outputDir: string;
  readonly haltedLiquidations: number;
  readonly accountsWithCallBeforeLiquidation: boolean;
  /** Liquidations that ran out of attempts without a final fill: an operator must act. */
  readonly exhaustedLiquidations: number;
  /** Every audit entry of the run, and every event put on the bus, for checks after the run. */
  readonly audit: Record<string, unknown>[];
  readonly events: Array<{ detailType: string; detail: Record<string, unknown> }>;
  readonly finalStates: ReadonlyMap<string, string>;
  readonly halts: RunReportData["halts"];
}

/**
 * Named accounts with known fates, beside the generated book: one that never borrows, one that pays its
 * calls, one that never does, and an ETH account whose breach falls in the stale-ETH episode.
 */
export function namedAccounts(at: string): Array<{ accountId: string; items: Record<string, unknown>[] }> {
  const account = (accountId: string, cash: string, holdings: Record<string, string>) => {
    const common = { accountId, updatedAt: at, seq: 1 };
    return {
      accountId,
      items: [
        {
          ...common,
          sk: "PROFILE",
          currency: "USD",
          policyId: "crypto-demo",
          timeZone: "America/New_York",
          contact: { phoneE164: "+12125550100", email: `${accountId.toLowerCase()}@example.com` },
          borrowerName: accountId,
        },
        { ...common, sk: "HOLDING#USD", asset: "USD", quantity: cash },
        ...Object.entries(holdings).map(([asset, quantity]) => ({
          ...common,
          sk: `HOLDING#${asset}`,
          asset,
          quantity,
        })),
      ],
    };
  };
  return [
    account("ACC-SAFE", "0", { BTC: "1" }),
    // SOL: breach when 0.65 · 100 · P = loan, i.e. at SOL 135 (-10%) and 142.50 (-5%).
    account("ACC-CURES", "-8775.00", { SOL: "100" }),
    account("ACC-DEFAULTS", "-9262.50", { SOL: "100" }),
    // ETH: breach when 0.77 · 10 · P = loan, at ETH 2,520 (-16%): inside the stale-ETH episode.
    account("ACC-ETH-HALT", "-19404.00", { ETH: "10" }),
  ];
}

/**
 * The demo's deployment: the same stack with the demo's policy (a short cure period, so an hour holds a
 * call's whole life) and a sweep every 5 simulated minutes, so one machine keeps up at 45x.
 */
export const DEMO_CONTEXT = {
  policiesFile: "lib/config/demo-policies.json",
  stage: "local",
  sweepRateMinutes: "5",
};
const TICK_SECONDS = 30;
const STATUSES: readonly ReportStatus[] = MACHINE_STATUSES;

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

async function scanAll(
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

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { log } = options;
  const random = seededRandom(options.seed);
  const runtime = await LocalRuntime.start({
    speed: 1,
    context: DEMO_CONTEXT,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(options.outputDir ? { outputDir: options.outputDir } : {}),
    log,
    onEvent: (entry) => {
      events.push({ detailType: entry.detailType, detail: JSON.parse(entry.detail) });
      if (entry.detailType !== "LiquidationRequested") return;
      liquidationRequests += 1;
      execution.onLiquidationRequested(JSON.parse(entry.detail));
    },
    onNotice: (message) => {
      const notice = message.messageAttributes.notice?.stringValue;
      if (!message.topicArn || !notice) return;
      notices[notice] = (notices[notice] ?? 0) + 1;
      const id = message.messageAttributes.notificationId?.stringValue ?? "";
      const accountId = id.split(":")[0] ?? "";
      if (notice === "CALL")
        void borrowers.onCall(accountId, id).catch((error) => log(`borrower: ${String(error)}`));
    },
  });
  let liquidationRequests = 0;
  const events: DemoResult["events"] = [];
  const notices: Record<string, number> = {};
  const tasks: Array<{ at: number; task: () => Promise<void> }> = [];
  const clock: Clock = {
    nowMs: () => runtime.nowMs(),
    now: () => runtime.now(),
    at: (at, task) => {
      tasks.push({ at, task });
    },
  };
  const borrowers = new Borrowers(runtime.dynamo, clock, random);
  const execution = new ExecutionSystem(runtime.dynamo, clock, random);
  const timers: NodeJS.Timeout[] = [];
  const stopTimers = () => {
    for (const timer of timers) clearInterval(timer);
  };
  // Ctrl-C: stop feeding the market and polling at once; the finally below stops everything else.
  let stopping = false;
  options.signal?.addEventListener(
    "abort",
    () => {
      stopping = true;
      stopTimers();
      runtime.halt();
    },
    { once: true },
  );
  try {
    const entry = parsePolicies(
      [...runtime.deployment.functions.values()][0]?.environment.POLICY_DOCUMENTS ?? "[]",
    );
    const policyEntry = [...entry.values()][0];
    if (!policyEntry) throw new Error("the demo template has no policy");
    const policy = policyEntry.policy;

    // The scenario clock: second 0 is when the crash begins; before that, the feeds publish opening prices.
    let scenarioStartMs = Number.POSITIVE_INFINITY;
    const scenarioSecond = () => Math.max(0, Math.floor((runtime.nowMs() - scenarioStartMs) / 1000));
    const pricePath: Record<string, Array<{ t: string; price: string }>> = { BTC: [], ETH: [], SOL: [] };
    const tickAsOf = new Map<string, string>();
    let seq = 0;
    let lastTick = Number.NEGATIVE_INFINITY;
    const publish = async () => {
      const second = scenarioSecond();
      const asOf = runtime.now();
      for (const asset of Object.keys(OPENING)) {
        for (const source of SOURCES) {
          if (!publishes(asset, source, second)) continue;
          seq += 1;
          const price = priceAt(asset, source, second);
          tickAsOf.set(`tick:${asset}:${source}:${seq}`, asOf);
          await runtime.dynamo.send(
            new PutItemCommand({
              TableName: "Prices",
              Item: toItem({
                asset,
                source,
                price,
                asOf,
                seq,
                ...(source === "index:coinbase" ? { realizedVolatility: volatilityAt(second) } : {}),
              }),
            }),
          );
          if (source === "index:kraken" && Number.isFinite(scenarioStartMs))
            pricePath[asset]?.push({ t: asOf, price });
        }
      }
    };
    await publish();
    lastTick = runtime.nowMs();

    let busy = false;
    timers.push(
      setInterval(() => {
        if (busy) return;
        busy = true;
        void (async () => {
          try {
            if (runtime.nowMs() - lastTick >= TICK_SECONDS * 1000) {
              lastTick = runtime.nowMs();
              await publish();
            }
            const due = tasks.filter((task) => task.at <= runtime.nowMs());
            for (const task of due) tasks.splice(tasks.indexOf(task), 1);
            for (const task of due) {
              await task.task().catch((error) => {
                if (!stopping) log(`actor: ${String(error)}`);
              });
            }
          } catch (error) {
            if (!stopping) log(`market: ${error instanceof Error ? error.message : String(error)}`);
          } finally {
            busy = false;
          }
        })();
      }, 25),
    );

    log(`Seeding ${options.accounts} borrowers (multi-asset collateral, USD loans, perpetuals)...`);
    const book = [
      ...namedAccounts(runtime.now()),
      ...generateBook(options.accounts, options.seed, policy, OPENING, policy.policyId, runtime.now()),
    ];
    runtime.run();
    await writeAccounts(runtime.dynamo, "Accounts", book);
    await runtime.settle(180_000);
    log(`Seeded and indexed ${book.length} accounts. Measuring margin ratios before the crash...`);

    const ratiosOf = async (): Promise<string[]> => {
      const ratios: string[] = [];
      let next = 0;
      const worker = async () => {
        while (next < book.length) {
          const account = book[next++];
          if (!account) continue;
          const loaded = await loadAccountInputs(
            runtime.dynamo,
            tables,
            entry,
            account.accountId,
            runtime.nowMs(),
          );
          if (!loaded.ok) continue;
          const ratio = marginRatio(
            valueAccount(loaded.inputs.account, loaded.inputs.marks, loaded.inputs.policy.policy),
          );
          if (ratio) ratios.push(ratio.toFixed());
        }
      };
      await Promise.all(Array.from({ length: 6 }, worker));
      return ratios;
    };
    // Local tables are named after their logical ids.
    const { idempotency: _idempotency, ...tables } = TABLE_LOGICAL_IDS;
    const ratiosBefore = await ratiosOf();

    // The crash.
    runtime.setSpeed(options.speed);
    scenarioStartMs = runtime.nowMs();
    const simulatedStart = runtime.now();
    log(
      `Replaying ${options.minutes} simulated minutes at ${options.speed}x: a crash of ~34% (BTC) to ~48% (SOL) with a flash drop at minute 23.5, ` +
        `ETH feeds stale from minute ${STALE_EPISODES[0]?.fromMinute} to ${STALE_EPISODES[0]?.toMinute}, recoveries, deposits and fills.`,
    );
    const states: RunReportData["states"] = [];
    const sampleStates = async () => {
      const items = await scanAll(runtime, "MarginCalls", ["accountId", "status"]);
      const counts: Partial<Record<ReportStatus, number>> = {};
      for (const item of items) {
        const status = String(item.status) as ReportStatus;
        counts[status] = (counts[status] ?? 0) + 1;
      }
      counts.HEALTHY = (counts.HEALTHY ?? 0) + book.length - items.length;
      states.push({ t: runtime.now(), counts });
      return counts;
    };
    const endMs = scenarioStartMs + options.minutes * 60_000;
    while (runtime.nowMs() < endMs) {
      if (options.signal?.aborted) throw new Error("stopped");
      const counts = await sampleStates();
      const minute = Math.floor((runtime.nowMs() - scenarioStartMs) / 60_000);
      const prices = Object.keys(OPENING)
        .map((asset) => `${asset} ${pricePath[asset]?.at(-1)?.price ?? OPENING[asset]}`)
        .join("  ");
      const lag = Object.entries(runtime.backlog())
        .filter(([, n]) => n > 0)
        .map(([name, n]) => `${name.replace(/Function.*$/, "")}:${n}`)
        .join(" ");
      options.progress?.(
        `min ${String(minute).padStart(2)} | ${prices} | ` +
          STATUSES.map((status) => `${status.toLowerCase().replace("_", " ")} ${counts[status] ?? 0}`).join(
            ", ",
          ) +
          ` | notices ${runtime.stub.published.length} | backlog ${lag || "none"}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    stopTimers();
    log("\nScenario over; letting the pipeline drain...");
    runtime.setSpeed(1);
    await runtime.settle(60_000);
    await sampleStates();
    const ratiosAfter = await ratiosOf();

    // What was recorded: the audit log and the outbox say what happened, and when.
    const audit = await scanAll(runtime, "AuditLog");
    const outbox = await scanAll(runtime, "Outbox");
    const calls = await scanAll(runtime, "MarginCalls");
    const counts: Record<string, number> = {};
    for (const status of STATUSES) counts[status] = 0;
    for (const item of calls) counts[String(item.status)] = (counts[String(item.status)] ?? 0) + 1;
    counts.HEALTHY = (counts.HEALTHY ?? 0) + book.length - calls.length;

    const tickToCall = audit
      .filter((entry) => entry.to === "CALLED" && String(entry.eventId).startsWith("tick:"))
      .flatMap((entry) => {
        const asOf = tickAsOf.get(String(entry.eventId));
        return asOf ? [(Date.parse(String(entry.at)) - Date.parse(asOf)) / options.speed] : [];
      });
    const callToNotice = outbox
      .filter(
        (item) =>
          item.kind === "NOTIFY" && String(item.payload).includes('"notice":"CALL"') && item.deliveredAt,
      )
      .map(
        (item) => (Date.parse(String(item.deliveredAt)) - Date.parse(String(item.createdAt))) / options.speed,
      );
    let loss = ZERO;
    for (const item of outbox) {
      if (item.kind === "RECORD_LOSS") loss = loss.plus(dec(String(JSON.parse(String(item.payload)).amount)));
    }
    // Invariants the demo checks on its own run.
    const byAccount = new Map<string, Record<string, unknown>[]>();
    for (const entry of audit)
      byAccount.set(String(entry.accountId), [...(byAccount.get(String(entry.accountId)) ?? []), entry]);
    let callBeforeLiquidation = true;
    for (const entries of byAccount.values()) {
      entries.sort((a: Record<string, unknown>, b: Record<string, unknown>) =>
        String(a.seq).localeCompare(String(b.seq)),
      );
      let called = false;
      for (const entry of entries) {
        if (entry.to === "CALLED") called = true;
        if (entry.to === "LIQUIDATING" && !called) callBeforeLiquidation = false;
      }
    }
    const haltWindows = STALE_EPISODES.map((episode) => ({
      asset: episode.asset,
      from: new Date(scenarioStartMs + episode.fromMinute * 60_000).toISOString(),
      to: new Date(scenarioStartMs + episode.toMinute * 60_000 + 60_000).toISOString(),
      reason: `${episode.asset} feeds stale: only ${episode.live.join(", ")} publishing`,
    }));
    // A liquidation request (first or retry) on prices that were not OK would break the halt.
    // Counted from the effects each step recorded (on its first audit entry) and the price status of that
    // step, never from audit prose.
    const haltedLiquidations = audit
      .filter((entry) => entry.effects !== undefined)
      .reduce((count, entry) => {
        const effects = JSON.parse(String(entry.effects)) as Array<{ kind?: string }>;
        const requests = effects.filter((effect) => effect.kind === "REQUEST_LIQUIDATION").length;
        const status = (entry.figures as { priceStatus?: string } | undefined)?.priceStatus;
        return count + (status === "OK" ? 0 : requests);
      }, 0);

    const timeline: RunReportData["timeline"] = audit.flatMap((entry) => {
      const reason = String(entry.reason);
      const kind =
        entry.from !== entry.to
          ? (
              {
                CALLED: "CALL",
                CURED: "CURED",
                LIQUIDATING: "LIQUIDATION",
                LIQUIDATED: "LIQUIDATED",
                BAD_DEBT: "BAD_DEBT",
              } as const
            )[String(entry.to) as "CALLED"]
          : reason.startsWith("escalation halted")
            ? "HALT"
            : reason.startsWith("prices recovered")
              ? "RESUME"
              : undefined;
      return kind ? [{ t: String(entry.at), accountId: String(entry.accountId), kind, detail: reason }] : [];
    });
    timeline.sort((a, b) => a.t.localeCompare(b.t));

    const outputDir = runtime.outputDir;
    const reportPath = join(outputDir, "report.html");
    const tickStats = {
      p50: percentile(tickToCall, 50),
      p99: percentile(tickToCall, 99),
      n: tickToCall.length,
    };
    const noticeStats = {
      p50: percentile(callToNotice, 50),
      p99: percentile(callToNotice, 99),
      n: callToNotice.length,
    };
    const money = (value: Dec) => toFixedString(value, 2, Rounding.HALF_EVEN);
    const data: RunReportData = {
      title: "Margin-call engine: market-crash demo",
      generatedAt: new Date().toISOString(),
      scenario: {
        name: "crash",
        description:
          "BTC falls ~34%, ETH ~39% and SOL ~48% over a compressed hour, with a flash drop at minute 23.5, two partial " +
          "recoveries, a stale ETH feed from minute 14 to 19, borrowers answering some calls with deposits, and an " +
          "execution system filling liquidation requests within their limit prices.",
        speed: options.speed,
        simulatedStart,
        simulatedEnd: new Date(endMs).toISOString(),
      },
      book: { accounts: book.length, currency: "USD" },
      prices: Object.entries(pricePath).map(([asset, points]) => ({ asset, points })),
      halts: haltWindows,
      states,
      ratiosBefore,
      ratiosAfter,
      timeline,
      summary: [
        { label: "Accounts", value: String(book.length) },
        ...STATUSES.map((status) => ({ label: `Ending ${status}`, value: String(counts[status] ?? 0) })),
        { label: "Calls issued", value: String(notices.CALL ?? 0) },
        { label: "Cured", value: String(notices.CURED ?? 0) },
        { label: "Liquidation requests", value: String(liquidationRequests) },
        { label: "Loss taken (USD)", value: money(loss) },
        { label: "Notifications sent (SMS + email)", value: String(runtime.stub.published.length) },
        {
          label: "Tick → call recorded, p50 / p99",
          value: `${tickStats.p50.toFixed(0)} ms / ${tickStats.p99.toFixed(0)} ms`,
        },
        {
          label: "Call → notice sent, p50 / p99",
          value: `${noticeStats.p50.toFixed(0)} ms / ${noticeStats.p99.toFixed(0)} ms`,
        },
        {
          label: "Deposits in flight / settled / failed",
          value: `${borrowers.stats.depositsPending} / ${borrowers.stats.depositsSettled} / ${borrowers.stats.depositsFailed}`,
        },
        {
          label: "Fills / unfilled attempts",
          value: `${execution.stats.fills} / ${execution.stats.unfilled}`,
        },
      ],
    };
    writeFileSync(reportPath, renderReport(data));
    return {
      counts,
      notices,
      liquidationRequests,
      loss: money(loss),
      tickToCallMs: tickStats,
      callToNoticeMs: noticeStats,
      reportPath,
      outputDir,
      haltedLiquidations,
      accountsWithCallBeforeLiquidation: callBeforeLiquidation,
      exhaustedLiquidations: audit.filter((entry) => entry.alarm === "LIQUIDATION_EXHAUSTED").length,
      audit,
      events,
      finalStates: new Map(calls.map((item) => [String(item.accountId), String(item.status)])),
      halts: haltWindows,
    };
  } finally {
    stopTimers();
    await runtime.stop();
  }
}
