/**
 * The market-crash demo: seeds a generated book, replays the crash through the local runtime (the deployed
 * handlers, driven by DynamoDB Local streams and schedules), shows progress live, and ends with a summary
 * and an HTML report. Everything the engine sees arrives through the upstream data contract. This module
 * only orders the run; the market and the actors (feed.ts, parties.ts, actors.ts), the observers
 * (observers.ts), what the records show (findings.ts) and the report's data (report-data.ts) live apart.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type PolicyEntry, parsePolicies } from "../../adapters/settings.ts";
import type { Policy } from "../../domain/policy.ts";
import type { FaultSummary, PutEventsEntry, SnsPublish } from "../aws-stub/index.ts";
import { templatePolicyDocuments } from "../policy-bootstrap.ts";
import { type RunReportData, renderReport } from "../report.ts";
import { LocalRuntime } from "../runtime.ts";
import { type DemoAccount, generateBook, namedAccounts, seededRandom, writeAccounts } from "./book.ts";
import { ActorSchedule, MarketFeed, MarketPump } from "./feed.ts";
import { findingsOf, haltWindows, pausedNow, pauseWindows, statusCounts } from "./findings.ts";
import { FUND_SEED, fundBalance, fundLedger, seedFund } from "./fund.ts";
import { OPENING, STALE_EPISODES } from "./market.ts";
import { marginRatios, PeakBacklog, progressLine, readRecords, STATUSES, StateSampler } from "./observers.ts";
import { Parties } from "./parties.ts";
import { type RunObservations, reportData } from "./report-data.ts";
import { fundProgressText, lossWaterfallOf } from "./waterfall.ts";

export { namedAccounts } from "./book.ts";

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
  /**
   * Faults to inject, for the fault scenarios: `start` runs once the book is seeded, just before the crash;
   * `midway` once half of the scenario's simulated minutes have passed.
   */
  readonly faults?: {
    readonly start?: (runtime: LocalRuntime) => void;
    readonly midway?: (runtime: LocalRuntime) => void;
  };
  /**
   * Wall-clock milliseconds to let the pipeline drain after the scenario.
   * @default 60000
   */
  readonly drainMs?: number;
}

export interface DemoResult {
  readonly counts: Record<string, number>;
  readonly notices: Record<string, number>;
  readonly liquidationRequests: number;
  readonly loss: string;
  readonly tickToCallMs: { p50: number; p99: number; n: number };
  readonly callToNoticeMs: { p50: number; p99: number; n: number };
  /** The largest backlog of each stream and queue (records or messages) from the crash to the end. */
  readonly peakBacklog: Record<string, number>;
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
  /** Every outbox item at the end, with its delivery and dispatch records. */
  readonly outbox: Record<string, unknown>[];
  /** The local AWS endpoint's own logs: every SNS publish and every event it accepted, in order (seq). */
  readonly endpoint: { readonly published: readonly SnsPublish[]; readonly puts: readonly PutEventsEntry[] };
  /** What the endpoint injected. */
  readonly injected: FaultSummary;
  readonly halts: RunReportData["halts"];
  /** The insurance fund's seed (the MANUAL_TOPUP before the crash), and its partition of the InsuranceFund table at the end. */
  readonly fund: { readonly seed: string; readonly ledger: Record<string, unknown>[] };
}

/**
 * The demo's deployment: the same stack with the demo's policy (a short cure period, so an hour holds a
 * call's whole life) and a sweep every 5 simulated minutes, so one machine keeps up at 45x.
 */
export const DEMO_CONTEXT = {
  policiesFile: "lib/config/demo-policies.json",
  stage: "local",
  sweepRateMinutes: "5",
  // The notifier paces SMS by the wall clock while the demo runs 45 to 60 times faster: 10 SMS a second
  // of simulated time would be 450 to 600 here.
  smsPerSecond: "600",
};

/**
 * One run of the demo, in order: the stage (runtime, market, parties), the book, the crash, the drain,
 * then what the records show, the report, and the result the CLI prints and the tests check.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { runtime, parties, feed, pump } = await openStage(options);
  try {
    const { policies, policy } = demoPolicies(runtime);
    await pump.open();
    const book = await seedBook(runtime, policy, options);
    const seeded = await seedFund(runtime, policy);
    options.log(
      `Seeded the ${policy.currency} insurance fund: ${seeded} ${policy.currency} (ticket ${FUND_SEED.reference}).`,
    );
    const accountIds = book.map((account) => account.accountId);
    const ratiosBefore = await marginRatios(runtime, policies, accountIds);
    const sampler = new StateSampler(runtime, book.length);
    const backlog = new PeakBacklog(runtime);
    backlog.start();
    const crash = await playCrash(runtime, { feed, parties, policy }, sampler, options).finally(() =>
      backlog.stop(),
    );
    await drain(runtime, pump, sampler, options);
    const ratiosAfter = await marginRatios(runtime, policies, accountIds);
    const { audit, outbox, calls } = await readRecords(runtime);
    const { events, notices } = parties;
    const lossWaterfall = lossWaterfallOf(events, policy.currency, policy.currencyScale);
    const ledger = await fundLedger(runtime, policy.currency);
    options.log(
      `Insurance fund at the end: ${fundProgressText({ currency: policy.currency, balance: await fundBalance(runtime, policy.currency, policy.currencyScale), waterfall: lossWaterfall }, policy.currencyScale)}`,
    );
    const findings = findingsOf({ audit, outbox, events, tickAsOf: feed.tickAsOf, speed: options.speed });
    const counts = statusCounts(calls, book.length, STATUSES);
    const halts = [
      ...haltWindows(STALE_EPISODES, feed.scenarioStartMs),
      ...pauseWindows(events, runtime.now()),
    ];
    const observed: RunObservations = {
      ...crash,
      accounts: book.length,
      pricePath: feed.pricePath,
      halts,
      states: sampler.states,
      ratiosBefore,
      ratiosAfter,
      counts,
      notices,
      notificationsSent: runtime.stub.published.length,
      actorStats: parties.stats(),
      lossWaterfall,
    };
    const reportPath = join(runtime.outputDir, "report.html");
    writeFileSync(reportPath, renderReport(reportData(observed, findings)));
    return {
      counts,
      notices,
      liquidationRequests: findings.liquidationRequests,
      loss: findings.loss,
      tickToCallMs: findings.tickToCallMs,
      callToNoticeMs: findings.callToNoticeMs,
      peakBacklog: backlog.peaks,
      reportPath,
      outputDir: runtime.outputDir,
      haltedLiquidations: findings.haltedLiquidations,
      accountsWithCallBeforeLiquidation: findings.callBeforeEveryLiquidation,
      exhaustedLiquidations: findings.exhaustedLiquidations,
      audit,
      events,
      // Version 0: no transition, only the marks of account changes judged unchanged.
      finalStates: new Map(
        calls
          .filter((item) => Number(item.version) > 0)
          .map((item) => [String(item.accountId), String(item.status)]),
      ),
      outbox,
      endpoint: { published: [...runtime.stub.published], puts: [...runtime.stub.events] },
      injected: runtime.stub.faults.summary(),
      halts,
      fund: { seed: FUND_SEED.amount, ledger },
    };
  } finally {
    pump.stop();
    await runtime.stop();
  }
}

/**
 * The local runtime with the demo's deployment, and the market and the parties wired to it. Ctrl-C stops
 * feeding the market and polling at once; runDemo's `finally` stops everything else.
 */
async function openStage(options: DemoOptions) {
  const random = seededRandom(options.seed);
  const parties = new Parties(options.log);
  const runtime = await LocalRuntime.start({
    speed: 1,
    context: DEMO_CONTEXT,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(options.outputDir ? { outputDir: options.outputDir } : {}),
    log: options.log,
    onEvent: parties.onEvent,
    onNotice: parties.onNotice,
  });
  const schedule = new ActorSchedule(runtime);
  parties.enter(runtime.dynamo, schedule, random);
  const feed = new MarketFeed(runtime);
  const pump = new MarketPump(runtime, feed, schedule, options.log);
  const abort = () => {
    pump.abort();
    runtime.halt();
  };
  options.signal?.addEventListener("abort", abort, { once: true });
  return { runtime, parties, feed, pump };
}

/**
 * The scenario is over: let the pipeline drain at the wall clock, then stop the market and take a last
 * sample. The market goes on while the pipeline drains, as a market does: its prices stay fresh (a drain
 * longer than the prices' maximum age would otherwise halt every account on stale prices) and the actors'
 * fills and deposits fall due.
 */
async function drain(
  runtime: LocalRuntime,
  pump: MarketPump,
  sampler: StateSampler,
  options: DemoOptions,
): Promise<void> {
  options.log("\nScenario over; letting the pipeline drain...");
  runtime.setSpeed(1);
  await runtime.settle(options.drainMs ?? 60_000);
  pump.stop();
  await sampler.sample();
}

/** The demo template's policies, as its PolicySet deployed them into the Policies table, and the first (crypto-demo). */
function demoPolicies(runtime: LocalRuntime): { policies: ReadonlyMap<string, PolicyEntry>; policy: Policy } {
  const policies = parsePolicies(templatePolicyDocuments(runtime.template));
  const [first] = policies.values();
  if (!first) throw new Error("the demo template has no policy");
  return { policies, policy: first.policy };
}

/** Writes the named accounts and the generated book as upstream would, and waits until the engine saw them. */
async function seedBook(runtime: LocalRuntime, policy: Policy, options: DemoOptions): Promise<DemoAccount[]> {
  options.log(`Seeding ${options.accounts} borrowers (multi-asset collateral, USD loans, perpetuals)...`);
  const book = [
    ...namedAccounts(runtime.now()),
    ...generateBook(options.accounts, options.seed, policy, OPENING, policy.policyId, runtime.now()),
  ];
  runtime.run();
  await writeAccounts(runtime.dynamo, "Accounts", book);
  await runtime.settle(180_000);
  options.log(`Seeded and indexed ${book.length} accounts. Measuring margin ratios before the crash...`);
  return book;
}

/** The crash, at the demo's speed: samples the accounts by state and shows progress every real second. */
async function playCrash(
  runtime: LocalRuntime,
  { feed, parties, policy }: { feed: MarketFeed; parties: Parties; policy: Policy },
  sampler: StateSampler,
  options: DemoOptions,
): Promise<{ speed: number; simulatedStart: string; simulatedEndMs: number }> {
  runtime.setSpeed(options.speed);
  const startMs = feed.startScenario();
  const simulatedStart = runtime.now();
  options.log(
    `Replaying ${options.minutes} simulated minutes at ${options.speed}x: a crash of ~34% (BTC) to ~48% (SOL) with a flash drop at minute 23.5, ` +
      `ETH feeds stale from minute ${STALE_EPISODES[0]?.fromMinute} to ${STALE_EPISODES[0]?.toMinute}, recoveries, deposits and fills.`,
  );
  const endMs = startMs + options.minutes * 60_000;
  let midway = options.faults?.midway;
  options.faults?.start?.(runtime);
  while (runtime.nowMs() < endMs) {
    if (midway && runtime.nowMs() >= startMs + options.minutes * 30_000) {
      midway(runtime);
      midway = undefined;
    }
    if (options.signal?.aborted) throw new Error("stopped");
    const counts = await sampler.sample();
    const fund = fundProgressText(
      {
        currency: policy.currency,
        balance: await fundBalance(runtime, policy.currency, policy.currencyScale),
        waterfall: lossWaterfallOf(parties.events, policy.currency, policy.currencyScale),
      },
      policy.currencyScale,
    );
    options.progress?.(progressLine(runtime, feed, counts, pausedNow(parties.events), fund));
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return { speed: options.speed, simulatedStart, simulatedEndMs: endMs };
}
