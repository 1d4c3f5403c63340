/**
 * The volatility circuit breaker in DynamoDB (domain: cascade.ts `evaluateBreaker`; docs/liquidation.md,
 * section 8). One item per asset and policy with a `circuitBreaker` section, in the trigger-index table:
 * line `BREAKER#<asset>`, triggerKey `<policyId>`, holding the breaker's state and the policy's marks over
 * its window, kept as the high and low of each of at most BUCKETS buckets.
 *
 * Writer: the price-ticks handler, after each tick that moves an asset's range (an asset's records arrive
 * in order on one shard), each write conditional on the version it read. A trip or a release is written in
 * the same transaction as its audit entry and its outbox item (the relay puts LiquidationPaused or
 * LiquidationResumed on the bus), so none of the three exists without the others.
 *
 * Readers: a revaluation whose step would request a liquidation reads the breakers of the plan's assets
 * (`readPauses`), decides again with the tripped ones, and commits a request only with a ConditionCheck
 * that each breaker it read as active still is (`activeBreakerChecks`): no request goes out while its
 * asset's breaker is tripped, whatever the interleaving.
 */
import {
  type DynamoDBClient,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  type BreakerDecision,
  type BreakerState,
  breakerActive,
  evaluateBreaker,
  type PriceSample,
} from "../domain/cascade.ts";
import { breakerEvent } from "../domain/liquidation-events.ts";
import { type Dec, dec, toPlainString } from "../domain/money.ts";
import type { Policy } from "../domain/policy.ts";
import { resolveMark, type SourceMark } from "../domain/prices.ts";
import { batchGet } from "./batch-get.ts";
import { fromImage, toItem } from "./codec.ts";
import { liquidationEventItem } from "./liquidation-event-items.ts";
import type { PolicyEntry, Tables } from "./settings.ts";
import { clientRequestToken, DAY_SHARDS, shardOf } from "./step-items.ts";

/** What the breakers read and write with (a part of engine.ts EngineDeps, which imports this module). */
interface BreakerDeps {
  readonly dynamo: DynamoDBClient;
  readonly tables: Tables;
}

/** Buckets a window is kept in: the window's edge is known to within windowSeconds / BUCKETS. */
export const BUCKETS = 60;

export const breakerKey = (asset: string, policyId: string) => ({
  line: { S: `BREAKER#${asset}` },
  triggerKey: { S: policyId },
});

/** The high and low of the marks sampled in one bucket, and the time of its latest sample. */
interface Bucket {
  readonly start: number;
  readonly at: string;
  readonly high: string;
  readonly low: string;
}

interface StoredBreaker {
  readonly state: BreakerState;
  readonly buckets: readonly Bucket[];
  /** 0: no item yet. */
  readonly version: number;
}

function parseStored(asset: string, item: Record<string, unknown> | undefined): StoredBreaker {
  if (!item) return { state: breakerActive(asset), buckets: [], version: 0 };
  return {
    state: {
      asset,
      status: item.status === "PAUSED" ? "PAUSED" : "ACTIVE",
      pausedAt: typeof item.pausedAt === "string" ? item.pausedAt : null,
      calmSince: typeof item.calmSince === "string" ? item.calmSince : null,
    },
    buckets: JSON.parse(String(item.buckets ?? "[]")) as Bucket[],
    version: Number(item.version ?? 0),
  };
}

/**
 * The buckets after one more sample: the sample joins the bucket of its second (width windowSeconds /
 * BUCKETS, at least 1 s), and buckets whose latest sample left the window are dropped.
 */
export function withSample(buckets: readonly Bucket[], sample: PriceSample, windowSeconds: number): Bucket[] {
  const width = Math.max(1, Math.ceil(windowSeconds / BUCKETS)) * 1000;
  const atMs = Date.parse(sample.at);
  const start = Math.floor(atMs / width) * width;
  const price = sample.price;
  const kept = buckets.filter((bucket) => Date.parse(bucket.at) >= atMs - windowSeconds * 1000);
  const same = kept.find((bucket) => bucket.start === start);
  const others = kept.filter((bucket) => bucket !== same);
  const merged: Bucket = same
    ? {
        start,
        at: [sample.at, same.at].sort().at(-1) ?? sample.at,
        high: toPlainString(price.greaterThan(same.high) ? price : dec(same.high)),
        low: toPlainString(price.lessThan(same.low) ? price : dec(same.low)),
      }
    : { start, at: sample.at, high: toPlainString(price), low: toPlainString(price) };
  return [...others, merged].sort((a, b) => a.start - b.start);
}

/**
 * The samples evaluateBreaker reads: each bucket's high and low, at the time of its latest sample. A bucket
 * counts while its latest sample is in the window, so the window reaches back up to one bucket further
 * than windowSeconds: the breaker may trip on a move a bucket wider, never miss one inside the window.
 */
export function samplesOf(buckets: readonly Bucket[]): PriceSample[] {
  return buckets.flatMap((bucket) => [
    { at: bucket.at, price: dec(bucket.high) },
    { at: bucket.at, price: dec(bucket.low) },
  ]);
}

async function readBreakers(
  deps: BreakerDeps,
  policyId: string,
  assets: readonly string[],
): Promise<Map<string, StoredBreaker>> {
  const keys = assets.map((asset) => breakerKey(asset, policyId));
  const items = await batchGet(deps.dynamo, deps.tables.triggerIndex, keys);
  const found = new Map<string, StoredBreaker>();
  for (const item of items) {
    const asset = String(item.line).slice("BREAKER#".length);
    found.set(asset, parseStored(asset, item));
  }
  for (const asset of assets) if (!found.has(asset)) found.set(asset, parseStored(asset, undefined));
  return found;
}

/** What a revaluation read of the breakers of a plan's assets. */
export interface BreakerReading {
  /** The tripped ones: asset → when the pause began. */
  readonly pauses: ReadonlyMap<string, string>;
  /** The ones read as active (or absent): a request's commit checks they still are. */
  readonly active: readonly string[];
}

export async function readPauses(
  deps: BreakerDeps,
  policyId: string,
  assets: readonly string[],
): Promise<BreakerReading> {
  const breakers = await readBreakers(deps, policyId, assets);
  const pauses = new Map<string, string>();
  const active: string[] = [];
  for (const [asset, { state }] of breakers) {
    if (state.status === "PAUSED" && state.pausedAt) pauses.set(asset, state.pausedAt);
    else active.push(asset);
  }
  return { pauses, active };
}

/** ConditionChecks that each breaker read as active still is (no trip since the read). */
export function activeBreakerChecks(
  table: string,
  policyId: string,
  active: readonly string[],
): TransactWriteItem[] {
  return active.map((asset) => ({
    ConditionCheck: {
      TableName: table,
      Key: breakerKey(asset, policyId),
      ConditionExpression: "attribute_not_exists(line) OR #status = :active",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":active": { S: "ACTIVE" } },
    },
  }));
}

/**
 * The audit entry of a trip or a release: the breaker's own partition of the audit log. `at` is the
 * decision's market time (the mark's), `recordedAt` when the engine processed the tick and committed it.
 */
function auditItem(
  table: string,
  policy: Policy,
  decision: BreakerDecision,
  version: number,
  recordedAt: string,
) {
  const accountId = `BREAKER#${decision.asset}#${policy.policyId}`;
  const auditId = `${accountId}:v${version}`;
  const [from, to] = decision.kind === "PAUSE" ? ["ACTIVE", "PAUSED"] : ["PAUSED", "ACTIVE"];
  const reason =
    decision.kind === "PAUSE"
      ? `liquidations paused: ${decision.asset} moved ${toPlainString(decision.move.move)} within ${decision.windowSeconds} s (limit ${toPlainString(decision.maxMove)})`
      : `liquidations resumed: ${decision.asset} calm since ${decision.calmSince} (cool-down ${decision.coolDownSeconds} s)`;
  return {
    Put: {
      TableName: table,
      Item: toItem({
        accountId,
        seq: `v${String(version).padStart(12, "0")}#000`,
        auditId,
        version,
        from,
        to,
        reason,
        at: decision.at,
        recordedAt,
        eventId: `breaker:${decision.asset}:${policy.policyId}:${decision.at}`,
        // The policy the decision used, and the move it decided on (null on a release without samples).
        figures: {
          policy: `${policy.policyId}@${policy.version}`,
          move: decision.move ? toPlainString(decision.move.move) : null,
          windowHigh: decision.move ? toPlainString(decision.move.high) : null,
          windowLow: decision.move ? toPlainString(decision.move.low) : null,
        },
        alarm: decision.kind === "PAUSE" ? "LIQUIDATIONS_PAUSED" : "LIQUIDATIONS_RESUMED",
        breaker: JSON.stringify(breakerEvent(decision, policy.policyId).detail),
        dayShard: `${recordedAt.slice(0, 10)}#${shardOf(auditId, DAY_SHARDS)}`,
        recordedAtAccount: `${recordedAt}#${accountId}`,
      }),
      ConditionExpression: "attribute_not_exists(seq)",
    },
  };
}

/** A trip or a release of one policy's breaker of an asset, committed. */
export interface BreakerOutcome {
  readonly policyId: string;
  readonly asset: string;
  readonly decision: BreakerDecision;
}

/** Every source of an asset as it stood after one tick: what a policy's mark was then. */
export interface SourcesAt {
  /** The tick's own time (its `asOf`). */
  readonly at: string;
  readonly sources: readonly SourceMark[];
}

/**
 * The asset's sources after each of a batch's ticks, in order, rebuilt from the records: each source
 * starts from its record's old image (its value before the batch) and takes each new image in turn; a
 * source with no record in the batch keeps its value as the table holds it now. So every tick is sampled,
 * however many a backlog puts in one batch. `records` are the asset's new and old images, in stream order.
 */
export function sourcesAlongBatch(
  current: readonly SourceMark[],
  records: readonly { readonly newImage: SourceMark; readonly oldImage: SourceMark | undefined }[],
): SourcesAt[] {
  const bySource = new Map(current.map((mark) => [mark.source, mark]));
  const rewound = new Set<string>();
  for (const { newImage, oldImage } of records) {
    if (rewound.has(newImage.source)) continue;
    rewound.add(newImage.source);
    if (oldImage) bySource.set(newImage.source, oldImage);
    else bySource.delete(newImage.source);
  }
  return records.map(({ newImage }) => {
    bySource.set(newImage.source, newImage);
    return { at: newImage.asOf, sources: [...bySource.values()] };
  });
}

/**
 * Evaluates the breakers of `asset` on a batch's ticks, in order, for each policy that has one and values
 * the asset (a holding or an instrument's underlying). Each tick whose policy mark is OK is a sample; the
 * evaluation's time is the mark's (market time: a backlog on the price stream must not make every mark look
 * stale to the breaker, shrink its window or stretch its cool-down). The state is written once per batch,
 * and at each trip or release with its audit entry and event, in one transaction.
 */
export async function evaluateBreakers(
  deps: BreakerDeps & {
    readonly policies: ReadonlyMap<string, PolicyEntry>;
    readonly outboxRetentionSeconds?: number | undefined;
  },
  asset: string,
  ticks: readonly SourcesAt[],
  now: string,
): Promise<BreakerOutcome[]> {
  const outcomes: BreakerOutcome[] = [];
  for (const { policy } of deps.policies.values()) {
    if (!policy.circuitBreaker || !valuesAsset(policy, asset)) continue;
    // A lost race (another writer, or a transaction on the breaker in flight: a request's ConditionCheck)
    // re-reads the breaker and evaluates the batch again: merging a sample twice changes nothing, and the
    // crash tick of a lost attempt must not go unsampled.
    for (let attempt = 1; ; attempt += 1) {
      const evaluated = await evaluateBatch(deps, policy, asset, ticks, now);
      if (evaluated) {
        outcomes.push(...evaluated);
        break;
      }
      if (attempt === BREAKER_ATTEMPTS) {
        throw new Error(
          `breaker ${asset} of ${policy.policyId}: ${BREAKER_ATTEMPTS} writes lost to other writers`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
  return outcomes;
}

const BREAKER_ATTEMPTS = 5;

/** One attempt at a batch for one policy's breaker: its decisions, or undefined when a write lost a race. */
async function evaluateBatch(
  deps: BreakerDeps & { readonly outboxRetentionSeconds?: number | undefined },
  policy: Policy,
  asset: string,
  ticks: readonly SourcesAt[],
  now: string,
): Promise<BreakerOutcome[] | undefined> {
  const breaker = policy.circuitBreaker;
  if (!breaker) return [];
  const outcomes: BreakerOutcome[] = [];
  let stored =
    (await readBreakers(deps, policy.policyId, [asset])).get(asset) ?? parseStored(asset, undefined);
  let sampled = false;
  for (const tick of ticks) {
    const at = tick.at < now ? tick.at : now;
    const price = breakerSample(asset, tick.sources, policy, at);
    if (!price) continue;
    const buckets = withSample(stored.buckets, { at, price }, breaker.windowSeconds);
    const { state, decision } = evaluateBreaker(stored.state, samplesOf(buckets), at, breaker);
    stored = { ...stored, state, buckets };
    sampled = true;
    if (!decision) continue;
    if (!(await writeBreaker(deps, policy, asset, stored, now, decision))) return undefined;
    outcomes.push({ policyId: policy.policyId, asset, decision });
    stored = { ...stored, version: stored.version + 1 };
    sampled = false;
  }
  if (sampled && !(await writeBreaker(deps, policy, asset, stored, now))) return undefined;
  return outcomes;
}

/**
 * Writes the breaker if it is still at the version read, with a decision's audit entry and outbox item in
 * the same transaction. False when another writer got there first.
 */
async function writeBreaker(
  deps: BreakerDeps & { readonly outboxRetentionSeconds?: number | undefined },
  policy: Policy,
  asset: string,
  /** The breaker to write, at the version read (0: absent); it is written at the next. */
  next: StoredBreaker,
  now: string,
  decision?: BreakerDecision,
): Promise<boolean> {
  const items: TransactWriteItem[] = [
    {
      Put: {
        TableName: deps.tables.triggerIndex,
        Item: toItem({
          ...fromImage(breakerKey(asset, policy.policyId)),
          status: next.state.status,
          ...(next.state.pausedAt ? { pausedAt: next.state.pausedAt } : {}),
          ...(next.state.calmSince ? { calmSince: next.state.calmSince } : {}),
          buckets: JSON.stringify(next.buckets),
          version: next.version + 1,
          updatedAt: now,
        }),
        ConditionExpression: next.version === 0 ? "attribute_not_exists(line)" : "version = :read",
        ...(next.version === 0
          ? {}
          : { ExpressionAttributeValues: { ":read": { N: String(next.version) } } }),
      },
    },
  ];
  if (decision) {
    items.push(auditItem(deps.tables.auditLog, policy, decision, next.version + 1, now));
    items.push(
      liquidationEventItem(
        deps.tables.outbox,
        breakerEvent(decision, policy.policyId),
        `BREAKER#${decision.asset}`,
        now,
        deps.outboxRetentionSeconds,
      ),
    );
  }
  try {
    // The same token for the same write: an SDK retry after a lost reply succeeds instead of conflicting.
    const token = clientRequestToken(`${asset}|${policy.policyId}`, next.version + 1, items);
    await deps.dynamo.send(
      new TransactWriteItemsCommand({ TransactItems: items, ClientRequestToken: token }),
    );
    return true;
  } catch (error) {
    // A version that moved, or a transaction on the item in flight (DynamoDB Local names it on its own).
    const lost = ["TransactionCanceledException", "TransactionConflictException"];
    if (error instanceof Error && lost.includes(error.name)) return false;
    throw error;
  }
}

/**
 * The price a breaker samples after one tick, at its time `at`: the policy's mark when it is OK. Short of
 * the policy's minimum of fresh sources, the median of the fresh ones there are: a price stream read in
 * batches often holds one source's tick before the others', and a breaker that sampled only full marks
 * would miss a crash whenever the stream lags (it did, in the demo under load). Sources that disagree
 * beyond the policy's divergence give no sample: one bad print must not pause liquidations. Sources
 * stamped after `at` are not known at that time and are left out.
 */
export function breakerSample(
  asset: string,
  sources: readonly SourceMark[],
  policy: Policy,
  at: string,
): Dec | undefined {
  const atMs = Date.parse(at);
  const known = sources.filter((source) => Date.parse(source.asOf) <= atMs);
  const mark = resolveMark(asset, known, policy, atMs);
  if (!mark || mark.status === "DIVERGING") return undefined;
  if (mark.status === "OK") return mark.price;
  const accepted = policy.assets.get(asset)?.sources;
  const fresh = known
    .filter((source) => !accepted || accepted.has(source.source))
    .filter((source) => atMs - Date.parse(source.asOf) <= policy.priceMaxAgeSeconds * 1000)
    .map((source) => source.price)
    .sort((a, b) => a.comparedTo(b));
  if (fresh.length === 0) return undefined;
  const middle = Math.floor(fresh.length / 2);
  const upper = fresh[middle] as Dec;
  return fresh.length % 2 === 1 ? upper : (fresh[middle - 1] as Dec).plus(upper).dividedBy(2);
}

function valuesAsset(policy: Policy, asset: string): boolean {
  if (policy.assets.has(asset)) return true;
  return [...policy.instruments.values()].some((instrument) => instrument.underlying === asset);
}
