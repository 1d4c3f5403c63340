/**
 * What the engine costs on AWS, computed from what `npm run bench` measured: the capacity units DynamoDB
 * Local reported for the handlers' requests (the counting proxy asks every request for
 * ReturnConsumedCapacity), the requests themselves, and the handlers' durations, per unit of work. The
 * scenario (accounts, assets, tick rate, transitions, sweep passes) and the unit prices are stated here;
 * docs/cost.md is written from both on every full run.
 */

/** The units of work whose cost the benchmark measures. */
export type UsageKey =
  | "tickNoLine"
  | "transition"
  | "transitionWithNotice"
  | "sweptAccount"
  | "fanOutPerChange";

export interface Usage {
  /** Per one unit of work (one tick, one transition, one account swept). */
  readonly requests: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  /** Wall time per unit of work on this machine, where measured. */
  readonly ms?: number;
}

const measured = new Map<UsageKey, Usage>();

/** Records what `count` units of work sent to DynamoDB, and how long they took. */
export function recordUsage(
  key: UsageKey,
  totals: { readonly requests: number; readonly readUnits: number; readonly writeUnits: number },
  count: number,
  ms?: number,
): void {
  measured.set(key, {
    requests: totals.requests / count,
    readUnits: totals.readUnits / count,
    writeUnits: totals.writeUnits / count,
    ...(ms !== undefined ? { ms: ms / count } : {}),
  });
}

export function usageRecorded(): Partial<Record<UsageKey, Usage>> {
  return Object.fromEntries(measured);
}

/** List prices, us-east-1, on-demand, as published on the date given; check them before you quote them. */
export const PRICES = {
  region: "us-east-1",
  date: "2024-11-01",
  dynamoWritePerMillionUnits: 0.625,
  dynamoReadPerMillionUnits: 0.125,
  lambdaPerMillionRequests: 0.2,
  /** x86_64; arm64 is 20% less. */
  lambdaPerGbSecond: 0.0000166667,
  sqsPerMillionRequests: 0.4,
  eventBridgePerMillionEvents: 1.0,
  sources: [
    "https://aws.amazon.com/dynamodb/pricing/on-demand/ (on-demand throughput price cut of 2024-11-01)",
    "https://aws.amazon.com/lambda/pricing/",
    "https://aws.amazon.com/sqs/pricing/",
    "https://aws.amazon.com/eventbridge/pricing/",
  ],
} as const;

/** The deployment the issue asks about, and what the model assumes of it. */
export const SCENARIO = {
  accounts: 1_000_000,
  assets: 50,
  ticksPerSecondPerAsset: 1,
  /** Transitions (a call, a cure, a reminder...) per account per day: a calm month has far fewer. */
  transitionsPerAccountPerDay: 0.02,
  /** A whole-book sweep pass every this many minutes (a pass starts only when the last one finished). */
  sweepPassMinutes: 15,
  /** The handlers' MemorySize, GB (the template's: 0.5 to 1). */
  memoryGb: 1,
  /** SQS requests per notice: send, receive, delete. */
  sqsRequestsPerNotice: 3,
} as const;

const SECONDS_PER_MONTH = 30 * 86_400;

export interface CostLine {
  readonly item: string;
  readonly perMonth: number;
  readonly how: string;
}

/** The monthly cost of the scenario from measured usage; a line is left out when its usage was not measured. */
export function monthlyCost(usage: Partial<Record<UsageKey, Usage>>, scenario = SCENARIO): CostLine[] {
  const lines: CostLine[] = [];
  const dynamo = (u: Usage, times: number) =>
    ((u.readUnits * PRICES.dynamoReadPerMillionUnits + u.writeUnits * PRICES.dynamoWritePerMillionUnits) *
      times) /
    1e6;
  const lambda = (u: Usage, invocations: number, times: number) =>
    (invocations * PRICES.lambdaPerMillionRequests) / 1e6 +
    ((u.ms ?? 0) / 1000) * scenario.memoryGb * PRICES.lambdaPerGbSecond * times;
  const ticks = scenario.assets * scenario.ticksPerSecondPerAsset * SECONDS_PER_MONTH;
  const tick = usage.tickNoLine;
  if (tick) {
    lines.push({
      item: "price ticks that cross no line (PriceTicks)",
      perMonth: dynamo(tick, ticks) + lambda(tick, ticks, ticks),
      how: `${fmt(ticks)} ticks × (${tick.readUnits.toFixed(2)} RRU + ${tick.writeUnits.toFixed(2)} WRU); one invocation per tick at most`,
    });
  }
  const transitions = scenario.accounts * scenario.transitionsPerAccountPerDay * 30;
  const transition = usage.transitionWithNotice;
  if (transition) {
    lines.push({
      item: "transitions with their notice (engine, relay, notifier)",
      perMonth:
        dynamo(transition, transitions) +
        lambda({ ...transition, ms: usage.transition?.ms ?? 0 }, transitions * 3, transitions) +
        (transitions * scenario.sqsRequestsPerNotice * PRICES.sqsPerMillionRequests) / 1e6,
      how: `${fmt(transitions)} transitions × (${transition.readUnits.toFixed(1)} RRU + ${transition.writeUnits.toFixed(1)} WRU, ${transition.requests} requests) + ${scenario.sqsRequestsPerNotice} SQS requests each; SMS and e-mail delivery are priced by SNS per country and are not included`,
    });
  }
  const swept = usage.sweptAccount;
  if (swept) {
    const passes = SECONDS_PER_MONTH / 60 / scenario.sweepPassMinutes;
    const accountsSwept = passes * scenario.accounts;
    lines.push({
      item: `sweep: a whole-book pass every ${scenario.sweepPassMinutes} minutes`,
      perMonth: dynamo(swept, accountsSwept) + lambda(swept, 0, accountsSwept),
      how: `${fmt(passes)} passes × ${fmt(scenario.accounts)} accounts × (${swept.readUnits.toFixed(3)} RRU + ${swept.writeUnits.toFixed(3)} WRU, ${(swept.ms ?? 0).toFixed(3)} ms of handler time)`,
    });
  }
  return lines;
}

function fmt(amount: number): string {
  return amount >= 1e6 ? `${(amount / 1e6).toFixed(1)}M` : Math.round(amount).toLocaleString("en-US");
}

const usd = (amount: number) =>
  `${amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} USD`;

/** docs/cost.md: the model, its inputs as measured, the monthly cost, and how it grows. */
export function costMarkdown(
  usage: Partial<Record<UsageKey, Usage>>,
  /** The run's machine, commit and date, as docs/benchmarks.md gives them. */
  run: { readonly machine: string },
): string {
  const lines = monthlyCost(usage);
  const total = lines.reduce((sum, line) => sum + line.perMonth, 0);
  return [
    "# What it costs on AWS",
    "",
    "<!-- Generated by `npm run bench` (bench/cost.ts) from bench/results/latest.json: do not edit by hand. -->",
    "",
    `Computed from one run of \`npm run bench\` (${run.machine}): the capacity units DynamoDB Local reported for the handlers' own requests, counted by the benchmark's proxy, per unit of work; the handlers' time per unit of work as measured on that machine (Lambda's would be shorter: no local DynamoDB sharing the CPU).`,
    "",
    `## The scenario: ${fmt(SCENARIO.accounts)} accounts, ${SCENARIO.assets} assets, ${SCENARIO.ticksPerSecondPerAsset} tick per second per asset`,
    "",
    `- ${SCENARIO.transitionsPerAccountPerDay} transitions per account per day (calls, cures, reminders, liquidations), each with one notice by SMS and e-mail;`,
    `- a whole-book sweep pass every ${SCENARIO.sweepPassMinutes} minutes;`,
    `- handlers at ${SCENARIO.memoryGb} GB; DynamoDB on demand.`,
    "",
    "| what | per month | how |",
    "| --- | --- | --- |",
    ...lines.map((line) => `| ${line.item} | ${usd(line.perMonth)} | ${line.how} |`),
    `| **total** | **${usd(total)}** | |`,
    "",
    "## What was measured, per unit of work",
    "",
    "| unit of work | requests | read units | write units | handler time here |",
    "| --- | --- | --- | --- | --- |",
    ...Object.entries(usage).map(
      ([key, u]) =>
        `| ${key} | ${u.requests.toFixed(2)} | ${u.readUnits.toFixed(3)} | ${u.writeUnits.toFixed(3)} | ${u.ms === undefined ? "–" : `${u.ms.toFixed(3)} ms`} |`,
    ),
    "",
    `## Unit prices (${PRICES.region}, list prices as of ${PRICES.date})`,
    "",
    `- DynamoDB on demand: ${PRICES.dynamoWritePerMillionUnits} USD per million write request units, ${PRICES.dynamoReadPerMillionUnits} USD per million read request units (a transactional write is two units per KB, a consistent read one per 4 KB); stream reads by Lambda triggers are free.`,
    `- Lambda: ${PRICES.lambdaPerMillionRequests} USD per million requests, ${PRICES.lambdaPerGbSecond} USD per GB-second (x86_64).`,
    `- SQS: ${PRICES.sqsPerMillionRequests} USD per million requests; EventBridge: ${PRICES.eventBridgePerMillionEvents} USD per million custom events (only liquidation requests and losses).`,
    ...PRICES.sources.map((source) => `- ${source}`),
    "",
    "## How it grows",
    "",
    "- **Ticks** grow with assets × tick rate and not with accounts: a tick that crosses no line reads an empty range of the trigger index and writes nothing.",
    "- **Transitions** grow with accounts × how often the market moves them: each is one TransactWriteItems plus the trigger-index upkeep, the relay's and the notifier's claims.",
    "- **The sweep** grows with accounts ÷ the pass interval: a pass reads every account item once (a Scan is billed by the bytes it reads) and writes nothing for accounts the screen clears. It is the line to tune: a pass every hour costs a quarter of one every 15 minutes, and widens the window the sweep bounds (docs/trigger-index.md).",
    "- Storage (about 1 KB per account and per open call), CloudWatch logs and alarms, KMS and data transfer are not included.",
    "",
  ].join("\n");
}
