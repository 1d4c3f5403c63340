/**
 * P5: what the handlers send to DynamoDB, counted at the proxy (source "engine": the handlers' own client).
 *
 * - Writes per revaluation that changes nothing (goal 0): a tick at the price LAT already has, a tick that
 *   moves LAT but crosses no account's line, an account item written again unchanged (a new seq), and a
 *   sweep of the whole table (Sweep, then the FanOutWorker mapping until it is idle). Counted: the items
 *   written (PutItem, UpdateItem, DeleteItem, the requests of a BatchWriteItem, the writes of a
 *   TransactWriteItems) per revaluation.
 * - Requests per transition: one tick that calls one account (as P3), the handlers' requests from the
 *   price write until the account reads CALLED, against the minimum: the state, the account's items and its
 *   asset's prices read, and one TransactWriteItems. And the whole pipeline's per transition: the same,
 *   plus the outbox relay and the notifier delivering its notice.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { writeAccounts } from "../../functions/local/demo/book.ts";
import { recordUsage, type UsageKey } from "../cost.ts";
import { type Figure, limitGoal, reported } from "../figures.ts";
import { callStatus, drive, type Pipeline, putPrice, settle } from "./harness.ts";
import { LATENCY_ASSET, loanAccount } from "./policy.ts";
import type { Captured } from "./proxy.ts";

const PIPELINE = ["AccountChanges", "PriceTicks", "FanOutWorker", "OutboxRelay"] as const;
const MINIMUM_REQUESTS = 4;

async function drainAll(pipeline: Pipeline): Promise<void> {
  await settle(pipeline, PIPELINE);
  await drive(pipeline.queue("Notifier"));
}

/** The handlers' written items while `body` runs; what they sent is kept in `usage` under `key`. */
async function writesDuring(
  pipeline: Pipeline,
  body: () => Promise<unknown>,
  key?: UsageKey,
): Promise<number> {
  pipeline.proxy.reset();
  await body();
  const totals = pipeline.proxy.totals("engine");
  if (key) recordUsage(key, totals, 1);
  return totals.written;
}

async function sweep(pipeline: Pipeline): Promise<void> {
  await pipeline.runtime.fireSchedule("Sweep");
  await drive(pipeline.queue("FanOutWorker"));
}

/** Writes by case, and the revaluations each case made. */
async function unchanged(pipeline: Pipeline, accounts: readonly ReturnType<typeof loanAccount>[]) {
  const ticks = pipeline.stream("PriceTicks");
  const sameTick = await writesDuring(pipeline, async () => {
    await putPrice(pipeline.bench, LATENCY_ASSET, "1100.00");
    await drive(ticks);
  });
  const movedTick = await writesDuring(
    pipeline,
    async () => {
      await putPrice(pipeline.bench, LATENCY_ASSET, "1090.00");
      await drive(ticks);
    },
    "tickNoLine",
  );
  const rewritten = await writesDuring(pipeline, async () => {
    for (const account of accounts) {
      const holding = account.items.find((item) => item.sk === `HOLDING#${LATENCY_ASSET}`);
      const item = marshall({ ...holding, seq: 2 });
      await pipeline.bench.send(new PutItemCommand({ TableName: "Accounts", Item: item }));
    }
    await drive(pipeline.stream("AccountChanges"));
  });
  // A first pass settles what earlier benchmarks left to change (P3's accounts, cured on their cure line,
  // become HEALTHY on their next revaluation: real transitions). The second pass is the one that changes
  // nothing; its pass record's own bookkeeping (start, one progress write per page) is counted apart.
  await sweep(pipeline);
  let bookkeeping = 0;
  pipeline.proxy.capture = (request: Captured) => {
    if (request.source === "engine" && request.body.includes("SWEEP#PASS")) bookkeeping += 1;
  };
  const sweptAll = await writesDuring(pipeline, () => sweep(pipeline)).finally(() => {
    pipeline.proxy.capture = undefined;
  });
  return { sameTick, movedTick, rewritten, swept: sweptAll - bookkeeping, bookkeeping };
}

export async function writesAndRequests(pipeline: Pipeline, tableAccounts: number): Promise<Figure[]> {
  const accounts = [0, 1, 2, 3].map((index) =>
    loanAccount(`P5-${index}`, LATENCY_ASSET, index === 0 ? 1000 : 600 + index),
  );
  await writeAccounts(pipeline.bench, "Accounts", accounts);
  await putPrice(pipeline.bench, LATENCY_ASSET, "1100.00");
  await drainAll(pipeline);
  const cases = await unchanged(pipeline, accounts);
  const revaluations = 2 + accounts.length + tableAccounts + accounts.length;
  const written = cases.sameTick + cases.movedTick + cases.rewritten + cases.swept;

  // One transition: P5-0 (breach line 1,000; the others lie near 600) is called by a tick to 995.
  pipeline.proxy.reset();
  const startedMs = performance.now();
  await putPrice(pipeline.bench, LATENCY_ASSET, "995.00");
  for (let round = 0; round < 100 && (await callStatus(pipeline.bench, "P5-0")) !== "CALLED"; round += 1) {
    await pipeline.stream("PriceTicks").pollOnce();
  }
  const transition = pipeline.proxy.totals("engine");
  const transitionMs = performance.now() - startedMs;
  const streams = pipeline.proxy.totals("streams");
  await drainAll(pipeline);
  const whole = pipeline.proxy.totals("engine");
  recordUsage("transition", transition, 1, transitionMs);
  recordUsage("transitionWithNotice", whole, 1);
  const operations = Object.entries(transition.byOperation)
    .map(([operation, count]) => `${operation} ${count}`)
    .join(", ");
  return [
    limitGoal(
      {
        id: "P5 writes/no-op",
        benchmark: "items written per revaluation that changes nothing",
        unit: "items",
        measured: written / revaluations,
        reference: 0,
        referenceLabel: "nothing to write",
        notes:
          `written items: tick at the same price ${cases.sameTick}, tick crossing no line ${cases.movedTick}, ` +
          `${accounts.length} unchanged account items ${cases.rewritten}, sweep of ${tableAccounts + accounts.length} accounts ${cases.swept} ` +
          `(after a first pass that settled what earlier benchmarks left to change; the pass record's own ${cases.bookkeeping} writes not counted)`,
      },
      0,
    ),
    reported({
      id: "P5 requests/transition",
      benchmark: "handler requests for one transition (tick → CALLED)",
      unit: "requests",
      measured: transition.requests,
      reference: MINIMUM_REQUESTS,
      referenceLabel: "state, account and price reads + 1 TransactWriteItems",
      notes: `${operations}; ${transition.written} items written; stream reads ${streams.requests}`,
    }),
    reported({
      id: "P5 pipeline/transition",
      benchmark: "requests for one transition and its notice (relay, notifier)",
      unit: "requests",
      measured: whole.requests,
      reference: MINIMUM_REQUESTS,
      referenceLabel: "the same minimum",
      notes: `tick, outbox relay and notifier: ${JSON.stringify(whole.byOperation)}; ${whole.written} items written`,
    }),
  ];
}
