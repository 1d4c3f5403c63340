/**
 * Handler 2: the Prices stream. A tick revalues only the accounts whose breach or warning line it
 * crossed, found in the trigger-price index between the previous and the new price range of the asset.
 *
 * The range is over every source's price, not one policy's mark: each account's mark is a median of a
 * subset of those sources, whatever its policy, so it always lies inside the range. The previous range
 * is kept in a cursor item (one writer: an asset's records arrive in order on one shard). Only the last
 * tick of an asset in a batch moves its range. At most MAX_ACCOUNTS_PER_INVOCATION accounts per
 * invocation; the rest of a range goes to the fan-out queue. See docs/trigger-index.md.
 */
import { EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { evaluateBreakers, type SourcesAt, sourcesAlongBatch } from "../adapters/breakers.ts";
import { enqueue, type FanOutMessage, processRangeRound } from "../adapters/fan-out.ts";
import {
  coveredRange,
  dynamoPriceRangeCursor,
  dynamoPriceSources,
  lastTickPerAsset,
  type PriceRangeCursor,
  type PriceSources,
  parseTick,
  rangeOf,
  ticksPerAsset,
} from "../adapters/price-range.ts";
import { linesOf } from "../adapters/trigger-index.ts";
import { LOG_SIGNALS } from "../domain/alarms.ts";
import { toPlainString } from "../domain/money.ts";
import { ReportingBatchProcessor } from "./batch.ts";
import { logOutcomes } from "./outcomes.ts";
import { pageDeadline, type Runtime, runtimeWithPolicies } from "./runtime.ts";
import { parseOrQuarantine } from "./stream-records.ts";

export const PRICES_TABLE = "Prices";

interface Budget {
  remaining: number;
  readonly seen: Set<string>;
  /** When to stop starting revaluations (runtime.ts `pageDeadline`): the rest goes to the queue. */
  readonly deadlineMs: number;
}

interface Ports {
  readonly cursor: PriceRangeCursor;
  readonly sources: PriceSources;
  /** Each asset's ticks in this batch, with the values they replaced (price-range.ts `ticksPerAsset`). */
  readonly batchTicks: ReturnType<typeof ticksPerAsset>;
}

export { parseTick } from "../adapters/price-range.ts";

async function handleRecord(
  engine: Runtime,
  ports: Ports,
  record: DynamoDBRecord,
  budget: Budget,
  moves: ReadonlySet<DynamoDBRecord>,
) {
  if (record.eventName === "REMOVE") return;
  const tick = await parseOrQuarantine(engine, PRICES_TABLE, record, (item) => parseTick(item, engine));
  if (!tick || !moves.has(record)) return;
  const now = engine.now();
  const next = rangeOf(await ports.sources.sourcesOf(tick.asset));
  if (!next) return;
  const previous = await ports.cursor.read(tick.asset);
  const covered = coveredRange(previous, next);
  const continuations: FanOutMessage[] = [];
  // Every line of both directions, a page of each read at once in each round: each line is read most
  // distressed first, and no shard's accounts wait for another shard's whole range.
  const queue: Extract<FanOutMessage, { type: "RANGE" }>[] = (["DOWN", "UP"] as const).flatMap((direction) =>
    linesOf(tick.asset, direction).map((line) => ({
      type: "RANGE" as const,
      asset: tick.asset,
      line,
      low: toPlainString(covered.low),
      high: toPlainString(covered.high),
      eventId: `tick:${tick.asset}:${tick.source}:${tick.seq}`,
    })),
  );
  let round = queue;
  while (round.length > 0 && budget.remaining > 0 && Date.now() < budget.deadlineMs) {
    const result = await processRangeRound(
      engine,
      round,
      budget.remaining,
      engine.now,
      budget.seen,
      budget.deadlineMs,
    );
    logOutcomes(engine, result.outcomes);
    budget.remaining -= result.outcomes.length;
    continuations.push(...(result.leftover ?? []));
    round = result.continuations;
  }
  continuations.push(...round);
  await enqueue(engine, continuations);
  if (continuations.length) {
    engine.logger.info("tick range continues on the fan-out queue", {
      asset: tick.asset,
      continuations: continuations.length,
    });
  }
  // A tick inside the range the previous one saw moves no bound: nothing to write.
  const unchanged = previous?.low.equals(next.low) === true && previous.high.equals(next.high);
  if (!unchanged) {
    await ports.cursor.write(tick.asset, next, now);
  }
}

/** Evaluates the asset's circuit breakers (adapters/breakers.ts) and says so when one trips or releases. */
async function tripOrRelease(engine: Runtime, asset: string, ticks: readonly SourcesAt[]) {
  for (const { policyId, decision } of await evaluateBreakers(engine, asset, ticks, engine.now())) {
    const signal =
      decision.kind === "PAUSE" ? LOG_SIGNALS.LIQUIDATIONS_PAUSED : LOG_SIGNALS.LIQUIDATIONS_RESUMED;
    engine.logger.warn(signal.message, { asset, policyId, at: decision.at });
  }
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const engine = await runtimeWithPolicies();
  const ports: Ports = {
    cursor: dynamoPriceRangeCursor(engine),
    sources: dynamoPriceSources(engine),
    batchTicks: ticksPerAsset(engine, event.Records),
  };
  // The breakers first, on every tick of every asset in the batch, before any revaluation: a tick that trips
  // one pauses the liquidations the batch's revaluations would request, whatever asset they sell.
  for (const [asset, ticks] of ports.batchTicks) {
    await tripOrRelease(engine, asset, sourcesAlongBatch(await ports.sources.sourcesOf(asset), ticks));
  }
  const budget: Budget = {
    remaining: engine.maxAccountsPerInvocation,
    seen: new Set(),
    deadlineMs: pageDeadline(engine, context),
  };
  const moves = lastTickPerAsset(engine, event.Records);
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(engine, ports, record, budget, moves),
    new ReportingBatchProcessor(EventType.DynamoDBStreams, engine.logger),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
