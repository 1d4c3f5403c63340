/**
 * Handler 2: the Prices stream. A tick revalues only the accounts whose breach or warning line it
 * crossed, found in the trigger-price index between the previous and the new price range of the asset.
 *
 * The range is over every source's price, not one policy's mark: each account's mark is a median of a
 * subset of those sources, whatever its policy, so it always lies inside the range. The previous range
 * is kept in a cursor item, so consecutive ticks cover the whole path of the price without gaps. Records
 * of one asset arrive in order on one shard, so the cursor has one writer. See docs/trigger-index.md.
 *
 * Work is bounded: at most MAX_ACCOUNTS_PER_INVOCATION accounts per invocation; the rest of a range goes
 * to the fan-out queue as a continuation.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { loadSources } from "../adapters/account-inputs.ts";
import { fromImage, toItem } from "../adapters/codec.ts";
import { enqueue, type FanOutMessage, processRangePage } from "../adapters/fan-out.ts";
import { lineOf } from "../adapters/trigger-index.ts";
import { type ParseResult, type PriceItem, parsePriceItem } from "../domain/contract.ts";
import { type Dec, dec, max, min, toPlainString } from "../domain/money.ts";
import { logOutcomes } from "./outcomes.ts";
import { type Runtime, runtime } from "./runtime.ts";
import { parseOrQuarantine } from "./stream-records.ts";

export const PRICES_TABLE = "Prices";

const cursorKey = (asset: string) => ({ line: { S: `CURSOR#${asset}` }, triggerKey: { S: "RANGE" } });

interface Budget {
  remaining: number;
  readonly seen: Set<string>;
}

async function readCursor(rt: Runtime, asset: string): Promise<{ low: Dec; high: Dec } | undefined> {
  const result = await rt.dynamo.send(
    new GetItemCommand({ TableName: rt.tables.triggerIndex, Key: cursorKey(asset), ConsistentRead: true }),
  );
  if (!result.Item) return undefined;
  const item = fromImage(result.Item);
  return { low: dec(String(item.low)), high: dec(String(item.high)) };
}

/**
 * The contract, and a clock check: a tick stamped further in the future than every deployed policy
 * tolerates is refused with its reason (each policy also ignores such a mark when it values an account).
 */
export function parseTick(item: unknown, rt: Pick<Runtime, "policies" | "now">): ParseResult<PriceItem> {
  const parsed = parsePriceItem(item);
  if (!parsed.ok) return parsed;
  const tolerance = Math.max(0, ...[...rt.policies.values()].map((p) => p.policy.priceMaxFutureSkewSeconds));
  const aheadMs = Date.parse(parsed.value.asOf) - Date.parse(rt.now());
  if (aheadMs <= tolerance * 1000) return parsed;
  const message = `must not be in the future: stamped ${Math.ceil(aheadMs / 1000)} s ahead of the engine's clock (tolerance ${tolerance} s)`;
  return { ok: false, issues: [{ path: "$.asOf", message }] };
}

async function handleRecord(rt: Runtime, record: DynamoDBRecord, budget: Budget): Promise<void> {
  if (record.eventName === "REMOVE") return;
  const tick = await parseOrQuarantine(rt, PRICES_TABLE, record, (item) => parseTick(item, rt));
  if (!tick) return;
  const now = rt.now();
  const sources = await loadSources(rt.dynamo, rt.tables, tick.asset);
  if (sources.length === 0) return;
  const prices = sources.map((source) => source.price);
  const newLow = prices.reduce(min);
  const newHigh = prices.reduce(max);
  const cursor = await readCursor(rt, tick.asset);
  const low = cursor ? min(cursor.low, newLow) : newLow;
  const high = cursor ? max(cursor.high, newHigh) : newHigh;

  const continuations: FanOutMessage[] = [];
  for (const direction of ["DOWN", "UP"] as const) {
    let message: FanOutMessage | undefined = {
      type: "RANGE",
      asset: tick.asset,
      line: lineOf(tick.asset, direction),
      low: toPlainString(low),
      high: toPlainString(high),
      eventId: `tick:${tick.asset}:${tick.source}:${tick.seq}`,
    };
    while (message?.type === "RANGE" && budget.remaining > 0) {
      const page = await processRangePage(rt, message, budget.remaining, rt.now, budget.seen);
      logOutcomes(rt, page.outcomes);
      budget.remaining -= page.outcomes.length;
      message = page.continuation;
    }
    if (message) continuations.push(message);
  }
  await enqueue(rt, continuations);
  if (continuations.length) {
    rt.logger.info("tick range continues on the fan-out queue", {
      asset: tick.asset,
      continuations: continuations.length,
    });
  }
  await rt.dynamo.send(
    new PutItemCommand({
      TableName: rt.tables.triggerIndex,
      Item: toItem({
        ...fromImage(cursorKey(tick.asset)),
        low: toPlainString(newLow),
        high: toPlainString(newHigh),
        updatedAt: now,
      }),
    }),
  );
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const rt = runtime();
  const budget: Budget = { remaining: rt.maxAccountsPerInvocation, seen: new Set() };
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(rt, record, budget),
    new BatchProcessor(EventType.DynamoDBStreams),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
