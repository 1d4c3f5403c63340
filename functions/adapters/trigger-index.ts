/**
 * The trigger-price index: for each account and asset, the prices at which a move of that asset alone
 * would put the account in breach or in the warning zone (functions/domain/triggers.ts). A price tick
 * reads the entries between the old and the new price, so it touches only the accounts whose line it
 * crossed. See docs/trigger-index.md for why no breach is missed and how stale entries are bounded.
 */
import {
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandOutput,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import type { Dec } from "../domain/money.ts";
import type { TriggerPrices } from "../domain/triggers.ts";
import { fromImage, toItem } from "./codec.ts";
import type { Tables } from "./settings.ts";
import { shardOf } from "./step-items.ts";

export type Direction = "DOWN" | "UP";
export type TriggerKind = "BREACH" | "WARN" | "FLOOR" | "CURE";

const INTEGER_DIGITS = 20;
const FRACTION_DIGITS = 12;
/** Entries expire unless rewritten; every account's entries are rewritten at least this often. */
export const ENTRY_TTL_SECONDS = 7 * 86_400;
export const REFRESH_AFTER_SECONDS = 86_400;

/** An order-preserving text form of a positive price: lexicographic order is numeric order. */
export function encodePrice(price: Dec): string {
  const [integer = "0", fraction = ""] = price.toFixed(FRACTION_DIGITS).split(".");
  if (!indexable(price)) {
    throw new RangeError(`price ${price.toFixed()} is outside the trigger index's range`);
  }
  return `${integer.padStart(INTEGER_DIGITS, "0")}.${fraction}`;
}

/** Whether the index's key can hold `price`: not negative, and below 10^20. */
export function indexable(price: Dec): boolean {
  return !price.isNegative() && price.toFixed(0).length <= INTEGER_DIGITS;
}

/**
 * How many partition keys each asset's direction is spread over: an account's entries are on the line
 * `<asset>#<direction>#<shard>`, its shard a hash of its account id. A crash rewrites the entries of every
 * account it revalues, on the few assets that moved: on one key per direction those writes would meet one
 * partition's thousand write units a second; over LINE_SHARDS keys they meet LINE_SHARDS of them. The cost is
 * on the read side: a tick queries LINE_SHARDS lines per direction instead of one (docs/trigger-index.md,
 * section 6, has the arithmetic). Changing it moves every entry: each account's next re-sync (at the latest
 * its daily refresh, and the sweep's pass meanwhile) writes its entries on the new lines and deletes the old.
 */
export const LINE_SHARDS = 4;

/** The line of one account's entries on an asset and direction. */
export function lineOf(asset: string, direction: Direction, accountId: string): string {
  return `${asset}#${direction}#${shardOf(accountId, LINE_SHARDS)}`;
}

/** Every line of an asset and direction: what a tick reads. */
export function linesOf(asset: string, direction: Direction): string[] {
  return Array.from({ length: LINE_SHARDS }, (_, shard) => `${asset}#${direction}#${shard}`);
}

/** The direction of a line. */
export function directionOf(line: string): Direction {
  return line.split("#")[1] === "DOWN" ? "DOWN" : "UP";
}

export interface TriggerEntry {
  readonly line: string;
  readonly triggerKey: string;
  readonly asset: string;
  readonly direction: Direction;
  readonly kind: TriggerKind;
  readonly price: string;
}

/**
 * The index entries of an account's trigger prices. The hard floor and the cure line (the `levels` the
 * domain adds, decide.ts `triggerLevels`) are lines too: crossing them changes a call's state.
 */
export function triggerEntries(
  accountId: string,
  triggers: readonly TriggerPrices[],
  /** Told of each line left out because its price is beyond the key's range. */
  leftOut: (line: string, kind: TriggerKind, price: string) => void = () => {},
): TriggerEntry[] {
  const entries: TriggerEntry[] = [];
  for (const trigger of triggers) {
    const [floor, cure] = trigger.levels;
    const candidates: [Direction, TriggerKind, Dec | null][] = [
      ["DOWN", "BREACH", trigger.breachDown],
      ["DOWN", "WARN", trigger.warningDown],
      ["UP", "BREACH", trigger.breachUp],
      ["UP", "WARN", trigger.warningUp],
      ["DOWN", "FLOOR", floor?.down ?? null],
      ["UP", "FLOOR", floor?.up ?? null],
      ["DOWN", "CURE", cure?.down ?? null],
      ["UP", "CURE", cure?.up ?? null],
    ];
    for (const [direction, kind, price] of candidates) {
      if (!price) continue;
      // A line at 10^20 or beyond (a dust short's, say) is one no market reaches: it is left out with its
      // reason, never thrown, and the sweep still decides the account on every pass.
      if (!indexable(price)) {
        leftOut(lineOf(trigger.asset, direction, accountId), kind, price.toFixed());
        continue;
      }
      entries.push({
        line: lineOf(trigger.asset, direction, accountId),
        triggerKey: `${encodePrice(price)}#${kind}#${accountId}`,
        asset: trigger.asset,
        direction,
        kind,
        price: price.toFixed(),
      });
    }
  }
  return entries;
}

const keysLine = (accountId: string) => `ACCOUNT#${accountId}`;
const KEYS_SORT = "KEYS";
const ENTRY_SEPARATOR = "|";

async function batchWrite(client: DynamoDBClient, table: string, requests: WriteRequest[]): Promise<void> {
  for (let start = 0; start < requests.length; start += 25) {
    let pending: WriteRequest[] = requests.slice(start, start + 25);
    for (let attempt = 0; pending.length > 0; attempt += 1) {
      if (attempt > 8) throw new Error(`trigger index: ${pending.length} writes left unprocessed`);
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
      const result = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
      pending = result.UnprocessedItems?.[table] ?? [];
    }
  }
}

/**
 * Replaces the account's entries with the ones its current valuation gives. Writes nothing when they
 * are unchanged and were refreshed within REFRESH_AFTER_SECONDS.
 */
export async function syncTriggerIndex(
  deps: { readonly dynamo: DynamoDBClient; readonly tables: Tables },
  accountId: string,
  triggers: readonly TriggerPrices[],
  now: string,
): Promise<{ written: number; deleted: number; leftOut: string[] }> {
  const { dynamo, tables } = deps;
  const nowSeconds = Math.floor(Date.parse(now) / 1000);
  const leftOut: string[] = [];
  const entries = triggerEntries(accountId, triggers, (line, kind, price) =>
    leftOut.push(`${line} ${kind} at ${price} is beyond the index's range`),
  );
  const current = await dynamo.send(
    new GetItemCommand({
      TableName: tables.triggerIndex,
      Key: { line: { S: keysLine(accountId) }, triggerKey: { S: KEYS_SORT } },
      ConsistentRead: true,
    }),
  );
  const previous = current.Item ? fromImage(current.Item) : undefined;
  const previousKeys = new Set(
    String(previous?.keys ?? "")
      .split("\n")
      .filter(Boolean),
  );
  const nextKeys = new Set(entries.map((entry) => `${entry.line}${ENTRY_SEPARATOR}${entry.triggerKey}`));
  const refreshedAt =
    typeof previous?.refreshedAtEpochSeconds === "number" ? previous.refreshedAtEpochSeconds : 0;
  const fresh = nowSeconds - refreshedAt < REFRESH_AFTER_SECONDS;
  const same = previousKeys.size === nextKeys.size && [...nextKeys].every((key) => previousKeys.has(key));
  if (same && fresh) return { written: 0, deleted: 0, leftOut };

  const writes: WriteRequest[] = entries
    .filter((entry) => !fresh || !previousKeys.has(`${entry.line}${ENTRY_SEPARATOR}${entry.triggerKey}`))
    .map((entry) => ({
      PutRequest: {
        Item: toItem({
          ...entry,
          accountId,
          expiresAtEpochSeconds: nowSeconds + ENTRY_TTL_SECONDS,
        }),
      },
    }));
  const deletes: WriteRequest[] = [...previousKeys]
    .filter((key) => !nextKeys.has(key))
    .map((key) => {
      const [line = "", triggerKey = ""] = key.split(ENTRY_SEPARATOR);
      return { DeleteRequest: { Key: { line: { S: line }, triggerKey: { S: triggerKey } } } };
    });
  // New entries first: a crash between the two steps leaves an extra entry (a harmless extra
  // revaluation), never a missing one.
  await batchWrite(dynamo, tables.triggerIndex, writes);
  try {
    await dynamo.send(
      new PutItemCommand({
        TableName: tables.triggerIndex,
        Item: toItem({
          line: keysLine(accountId),
          triggerKey: KEYS_SORT,
          keys: [...nextKeys].sort().join("\n"),
          refreshedAtEpochSeconds: fresh ? refreshedAt : nowSeconds,
          basisAt: now,
        }),
        // Only the lines of a revaluation at least as recent as the one that wrote them replace them: a
        // slow one that syncs last must not delete a newer one's lines (its own extra entries expire).
        ConditionExpression: "attribute_not_exists(basisAt) OR basisAt <= :basis",
        ExpressionAttributeValues: { ":basis": { S: now } },
      }),
    );
  } catch (error) {
    if (error instanceof Error && error.name === "ConditionalCheckFailedException") {
      return { written: writes.length, deleted: 0, leftOut };
    }
    throw error;
  }
  await batchWrite(dynamo, tables.triggerIndex, deletes);
  return { written: writes.length, deleted: deletes.length, leftOut };
}

export interface CrossedPage {
  readonly accountIds: string[];
  readonly lastKey: Record<string, unknown> | undefined;
}

/**
 * The accounts with an entry on `line` between two prices, inclusive, one page at a time, the most
 * distressed first. Each page reads only the entries in the range: the cost is the accounts whose line
 * was crossed.
 */
export async function crossedAccounts(
  deps: { readonly dynamo: DynamoDBClient; readonly tables: Tables },
  line: string,
  low: Dec,
  high: Dec,
  limit: number,
  startKey?: Record<string, unknown>,
): Promise<CrossedPage & { readonly scanned: number }> {
  const page: QueryCommandOutput = await deps.dynamo.send(
    new QueryCommand({
      TableName: deps.tables.triggerIndex,
      KeyConditionExpression: "line = :line AND triggerKey BETWEEN :low AND :high",
      ExpressionAttributeValues: {
        ":line": { S: line },
        ":low": { S: encodePrice(low) },
        // "~" sorts after "#": every key of the high price itself is inside the range.
        ":high": { S: `${encodePrice(high)}~` },
      },
      Limit: limit,
      // The most distressed first: on a fall (DOWN) the highest lines were crossed first and lie deepest
      // below the price now; on a rise (UP), the lowest.
      ScanIndexForward: directionOf(line) !== "DOWN",
      ...(startKey ? { ExclusiveStartKey: toItem(startKey) } : {}),
    }),
  );
  const accountIds = (page.Items ?? []).map((item) => String(fromImage(item).accountId));
  return {
    accountIds,
    lastKey: page.LastEvaluatedKey ? fromImage(page.LastEvaluatedKey) : undefined,
    scanned: page.Items?.length ?? 0,
  };
}
