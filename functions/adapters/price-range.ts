/**
 * The price-ticks handler's ports: the range cursor (the lowest and highest price over all sources that
 * the previous tick of an asset saw, kept in the trigger-index table) and the sources of an asset. A tick
 * revalues the accounts whose lines lie between the previous range and the new one (docs/trigger-index.md).
 * Records of one asset arrive in order on one shard, so the cursor has one writer.
 */
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import { type ParseResult, type PriceItem, parsePriceItem } from "../domain/contract.ts";
import { type Dec, dec, max, min, toPlainString } from "../domain/money.ts";
import type { SourceMark } from "../domain/prices.ts";
import { loadSources, sourceMarkOf } from "./account-inputs.ts";
import { fromImage, toItem } from "./codec.ts";
import type { EngineDeps } from "./engine.ts";
import type { PolicyEntry } from "./settings.ts";

export interface PriceRange {
  readonly low: Dec;
  readonly high: Dec;
}

export interface PriceRangeCursor {
  /** The range the previous tick of `asset` saw, or undefined before the first. */
  read(asset: string): Promise<PriceRange | undefined>;
  write(asset: string, range: PriceRange, at: string): Promise<void>;
}

export interface PriceSources {
  /** Every source's latest mark of `asset`, as stored. */
  sourcesOf(asset: string): Promise<readonly SourceMark[]>;
}

const cursorKey = (asset: string) => ({ line: { S: `CURSOR#${asset}` }, triggerKey: { S: "RANGE" } });

export function dynamoPriceRangeCursor(deps: Pick<EngineDeps, "dynamo" | "tables">): PriceRangeCursor {
  return {
    async read(asset) {
      const result = await deps.dynamo.send(
        new GetItemCommand({
          TableName: deps.tables.triggerIndex,
          Key: cursorKey(asset),
          ConsistentRead: true,
        }),
      );
      if (!result.Item) return undefined;
      const item = fromImage(result.Item);
      return { low: dec(String(item.low)), high: dec(String(item.high)) };
    },
    async write(asset, range, at) {
      await deps.dynamo.send(
        new PutItemCommand({
          TableName: deps.tables.triggerIndex,
          Item: toItem({
            ...fromImage(cursorKey(asset)),
            low: toPlainString(range.low),
            high: toPlainString(range.high),
            updatedAt: at,
          }),
        }),
      );
    },
  };
}

export function dynamoPriceSources(deps: Pick<EngineDeps, "dynamo" | "tables">): PriceSources {
  return { sourcesOf: (asset) => loadSources(deps.dynamo, deps.tables, asset) };
}

/** The range of prices over `sources`, or undefined for none. */
export function rangeOf(sources: readonly SourceMark[]): PriceRange | undefined {
  const prices = sources.map((source) => source.price);
  if (prices.length === 0) return undefined;
  return { low: prices.reduce(min), high: prices.reduce(max) };
}

/** The range a tick must cover: the previous one and the new one together. */
export function coveredRange(previous: PriceRange | undefined, next: PriceRange): PriceRange {
  return previous ? { low: min(previous.low, next.low), high: max(previous.high, next.high) } : next;
}

/**
 * The contract, and a clock check: a tick stamped further in the future than every deployed policy
 * tolerates is refused with its reason (each policy also ignores such a mark when it values an account).
 */
export function parseTick(
  item: unknown,
  engine: { readonly policies: ReadonlyMap<string, PolicyEntry>; readonly now: () => string },
): ParseResult<PriceItem> {
  const parsed = parsePriceItem(item);
  if (!parsed.ok) return parsed;
  const toleranceSeconds = Math.max(
    0,
    ...[...engine.policies.values()].map((entry) => entry.policy.priceMaxFutureSkewSeconds),
  );
  const aheadMs = Date.parse(parsed.value.asOf) - Date.parse(engine.now());
  if (aheadMs <= toleranceSeconds * 1000) return parsed;
  const message = `must not be in the future: stamped ${Math.ceil(aheadMs / 1000)} s ahead of the engine's clock (tolerance ${toleranceSeconds} s)`;
  return { ok: false, issues: [{ path: "$.asOf", message }] };
}

/**
 * Each asset's valid ticks in the batch, in stream order, each with the source's value before it (its old
 * image, when that one was valid): what the circuit breaker samples (breakers.ts `sourcesAlongBatch`).
 */
export function ticksPerAsset(
  engine: { readonly policies: ReadonlyMap<string, PolicyEntry>; readonly now: () => string },
  records: readonly DynamoDBRecord[],
): Map<string, { newImage: SourceMark; oldImage: SourceMark | undefined }[]> {
  const ticks = new Map<string, { newImage: SourceMark; oldImage: SourceMark | undefined }[]>();
  for (const record of records) {
    const image = record.eventName === "REMOVE" ? undefined : record.dynamodb?.NewImage;
    if (!image) continue;
    const item = fromImage(image);
    const parsed = parseTick(item, engine);
    const newImage = sourceMarkOf(item);
    if (!parsed.ok || !newImage) continue;
    const old = record.dynamodb?.OldImage;
    const list = ticks.get(parsed.value.asset) ?? [];
    list.push({ newImage, oldImage: old ? sourceMarkOf(fromImage(old)) : undefined });
    ticks.set(parsed.value.asset, list);
  }
  return ticks;
}

/**
 * The last record of each asset in the batch that is a valid tick: only it moves the asset's range. A
 * tick reads the asset's sources as they are now, not as its record shows them, so the earlier records of
 * the asset in the batch would only cover the same range again. If the last one fails, the stream retries
 * from it, and it covers the earlier ones.
 */
export function lastTickPerAsset(
  engine: { readonly policies: ReadonlyMap<string, PolicyEntry>; readonly now: () => string },
  records: readonly DynamoDBRecord[],
): Set<DynamoDBRecord> {
  const last = new Map<string, DynamoDBRecord>();
  for (const record of records) {
    const image = record.eventName === "REMOVE" ? undefined : record.dynamodb?.NewImage;
    if (!image) continue;
    const parsed = parseTick(fromImage(image), engine);
    if (parsed.ok) last.set(parsed.value.asset, record);
  }
  return new Set(last.values());
}
