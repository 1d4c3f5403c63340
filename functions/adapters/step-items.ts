/**
 * How one step of the state machine is written: one builder per table, composed into the single
 * TransactWriteItems that commits the step. MarginCalls holds the next state, conditioned on the version
 * the step was computed from; the Outbox one item per NOTIFY, REQUEST_LIQUIDATION, RECORD_LOSS and FUND_FEE; the
 * AuditLog one item per AUDIT effect, the first carrying the replayable snapshot. docs/data-model.md has
 * the keys and the access patterns.
 */
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import type { Put, TransactWriteItem } from "@aws-sdk/client-dynamodb";
import { type CallState, type Effect, nextDueAt, type Step } from "../domain/machine.ts";
import { plain } from "../domain/snapshot.ts";
import type { AccountInputs } from "./account-inputs.ts";
import { toItem } from "./codec.ts";
import type { Tables } from "./settings.ts";

/** Shards of the audit log's byDay index. */
export const DAY_SHARDS = 8;
const DEFAULT_OUTBOX_RETENTION_SECONDS = 30 * 86_400;

/**
 * What the commit knows of the stored state item beyond its version: whether it exists, and how many account
 * changes were judged on it (`inputsSeen`, absent on items written before it existed). A commit is
 * conditioned on both: a decision on items read before a change that was judged since cannot commit.
 */
export interface InputsMarker {
  readonly exists: boolean;
  readonly inputsSeen: number | null;
}

/** The condition that the stored state is still the one read: its version and its inputs marker. */
export function stateCondition(
  previous: CallState,
  marker: InputsMarker,
): Required<Pick<Put, "ConditionExpression">> & Pick<Put, "ExpressionAttributeValues"> {
  if (!marker.exists) return { ConditionExpression: "attribute_not_exists(accountId)" };
  const version = { ":previous": { N: String(previous.version) } };
  return marker.inputsSeen === null
    ? {
        ConditionExpression: "version = :previous AND attribute_not_exists(inputsSeen)",
        ExpressionAttributeValues: version,
      }
    : {
        ConditionExpression: "version = :previous AND inputsSeen = :seen",
        ExpressionAttributeValues: { ...version, ":seen": { N: String(marker.inputsSeen) } },
      };
}

/** What the builders need beyond the step. */
export interface StepContext {
  readonly tables: Tables;
  /** Shards of the sparse byDeadline index: spread open calls over partitions. */
  readonly openCallShards: number;
  readonly outboxRetentionSeconds?: number | undefined;
  readonly inputs: AccountInputs;
  readonly previous: CallState;
  /** The stored state item as read: the commit is conditioned on it. */
  readonly marker: InputsMarker;
  readonly now: string;
  /** The snapshot the first AUDIT item keeps: what `margin-call evaluate` replays. */
  readonly snapshot: unknown;
}

function hash(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

export function shardOf(key: string, shards: number): string {
  return String(hash(key).readUInt32BE(0) % shards);
}

/**
 * A TransactWriteItems token: 36 characters, the same for the same key, version and items, so an SDK retry
 * after a lost reply succeeds instead of conflicting. The items are part of it: a commit cancelled (a breaker's
 * ConditionCheck, say) and decided again at the same version writes other items, and DynamoDB refuses a token
 * reused with other parameters within ten minutes (IdempotentParameterMismatchException).
 */
export function clientRequestToken(
  key: string,
  version: number,
  items: readonly TransactWriteItem[],
): string {
  return hash(`${key}|v${version}|${JSON.stringify(items, bytesAsBase64)}`)
    .toString("base64url")
    .slice(0, 36);
}

/** Binary attributes (a gzipped snapshot part, a cap ledger) as base64, not as JSON's index-by-index object. */
function bytesAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key];
  return original instanceof Uint8Array ? Buffer.from(original).toString("base64") : value;
}

export function auditSeq(version: number, index: number): string {
  return `v${String(version).padStart(12, "0")}#${String(index).padStart(3, "0")}`;
}

/** The next state, written only if the stored state is still the one the step was computed from. */
export function marginCallsItem(context: StepContext, next: CallState): TransactWriteItem {
  const { previous, marker, inputs, now } = context;
  const dueAt = nextDueAt(next, inputs.policy.policy, inputs.liquidationDispatch);
  return {
    Put: {
      TableName: context.tables.marginCalls,
      Item: toItem({
        accountId: next.accountId,
        version: next.version,
        status: next.status,
        state: JSON.stringify(next),
        updatedAt: now,
        policy: `${inputs.policy.policy.policyId}@${inputs.policy.policy.version}`,
        ...(dueAt
          ? { openCallShard: shardOf(next.accountId, context.openCallShards), deadlineAt: dueAt }
          : {}),
        ...(marker.inputsSeen === null ? {} : { inputsSeen: marker.inputsSeen }),
      }),
      ...stateCondition(previous, marker),
    },
  };
}

/** One outbox item per effect that leaves the engine, under a key taken from the effect. */
export function outboxItems(
  context: StepContext,
  next: CallState,
  effects: readonly Effect[],
): TransactWriteItem[] {
  const nowSeconds = Math.floor(Date.parse(context.now) / 1000);
  const retentionSeconds = context.outboxRetentionSeconds ?? DEFAULT_OUTBOX_RETENTION_SECONDS;
  return effects.flatMap((effect): TransactWriteItem[] => {
    if (effect.kind === "AUDIT") return [];
    const outboxId =
      effect.kind === "NOTIFY"
        ? effect.notificationId
        : effect.kind === "REQUEST_LIQUIDATION"
          ? effect.requestId
          : effect.kind === "FUND_FEE"
            ? `${effect.accountId}:v${next.version}:fee`
            : `${effect.accountId}:v${next.version}:loss`;
    const { policy } = context.inputs.policy;
    return [
      {
        Put: {
          TableName: context.tables.outbox,
          Item: toItem({
            outboxId,
            kind: effect.kind,
            accountId: effect.accountId,
            version: next.version,
            // The policy that decided the step: the relay runs a loss's waterfall, or credits a fee, under it.
            policy: `${policy.policyId}@${policy.version}`,
            createdAt: context.now,
            payload: JSON.stringify(plain(effect)),
            expiresAtEpochSeconds: nowSeconds + retentionSeconds,
          }),
          ConditionExpression: "attribute_not_exists(outboxId)",
        },
      },
    ];
  });
}

/** One audit item per AUDIT effect; the first also keeps the snapshot and the step's other effects. */
export function auditItems(
  context: StepContext,
  next: CallState,
  effects: readonly Effect[],
): TransactWriteItem[] {
  const { now } = context;
  const audits = effects.filter((effect) => effect.kind === "AUDIT");
  const stored = storedSnapshot(JSON.stringify(context.snapshot));
  const first = audits[0];
  const parts: TransactWriteItem[] = stored.parts.map((part, index) => ({
    Put: {
      TableName: context.tables.auditLog,
      Item: {
        accountId: { S: first?.accountId ?? next.accountId },
        seq: { S: snapshotPartSeq(auditSeq(next.version, 0), index) },
        snapshotPart: { B: part },
      },
      ConditionExpression: "attribute_not_exists(seq)",
    },
  }));
  const entries = audits.map(
    (effect, index): TransactWriteItem => ({
      Put: {
        TableName: context.tables.auditLog,
        Item: toItem({
          accountId: effect.accountId,
          seq: auditSeq(next.version, index),
          auditId: effect.auditId,
          version: next.version,
          from: effect.from,
          to: effect.to,
          reason: effect.reason,
          at: effect.at,
          eventId: effect.eventId,
          figures: effect.figures,
          ...(effect.closure ? { closure: effect.closure } : {}),
          ...(effect.alarm ? { alarm: effect.alarm } : {}),
          dayShard: `${now.slice(0, 10)}#${shardOf(effect.auditId, DAY_SHARDS)}`,
          recordedAtAccount: `${now}#${effect.accountId}`,
          ...(index === 0
            ? {
                ...stored.onEntry,
                effects: JSON.stringify(plain(effects.filter((other) => other.kind !== "AUDIT"))),
              }
            : {}),
        }),
        ConditionExpression: "attribute_not_exists(seq)",
      },
    }),
  );
  const [head, ...rest] = entries;
  if (head?.Put?.Item && stored.gzip) head.Put.Item.snapshotGzip = { B: stored.gzip };
  return [...parts, ...entries.slice(0, 1), ...rest];
}

/** The snapshot is kept as text up to this many characters; a larger one is gzipped. */
export const SNAPSHOT_TEXT_MAX = 100_000;
/** A gzipped snapshot larger than this is kept in parts of this size, items of their own. */
export const SNAPSHOT_PART_BYTES = 300_000;

export function snapshotPartSeq(entrySeq: string, index: number): string {
  return `${entrySeq}#SNAPSHOT#${String(index).padStart(3, "0")}`;
}

/**
 * How the replay snapshot is kept on the step's first audit item, within DynamoDB's 400 KB: as text, else
 * gzipped (`snapshotGzip`), else gzipped in parts (`snapshotParts` items `<seq>#SNAPSHOT#<n>`, written in
 * the same transaction). An account with thousands of deposits in flight still commits.
 */
function storedSnapshot(text: string): {
  onEntry: Record<string, unknown>;
  gzip?: Uint8Array;
  parts: Uint8Array[];
} {
  if (text.length <= SNAPSHOT_TEXT_MAX) return { onEntry: { snapshot: text }, parts: [] };
  const zipped = gzipSync(Buffer.from(text, "utf8"));
  if (zipped.length <= SNAPSHOT_PART_BYTES) return { onEntry: {}, gzip: zipped, parts: [] };
  const parts: Uint8Array[] = [];
  for (let start = 0; start < zipped.length; start += SNAPSHOT_PART_BYTES) {
    parts.push(zipped.subarray(start, start + SNAPSHOT_PART_BYTES));
  }
  return { onEntry: { snapshotParts: parts.length }, parts };
}

/**
 * The replay snapshot of an audit entry, however it is kept; `readPart` reads a part item by its seq.
 * Null on an entry that is not a step's first.
 */
export async function snapshotOfEntry(
  entry: Record<string, unknown>,
  readPart: (seq: string) => Promise<Uint8Array | undefined>,
): Promise<unknown> {
  if (typeof entry.snapshot === "string") return JSON.parse(entry.snapshot);
  let zipped: Uint8Array | undefined;
  if (entry.snapshotGzip instanceof Uint8Array) zipped = entry.snapshotGzip;
  else if (typeof entry.snapshotParts === "number") {
    const parts: Uint8Array[] = [];
    for (let index = 0; index < entry.snapshotParts; index += 1) {
      const part = await readPart(snapshotPartSeq(String(entry.seq), index));
      if (!part) throw new Error(`audit entry ${String(entry.seq)}: snapshot part ${index} is missing`);
      parts.push(part);
    }
    zipped = Buffer.concat(parts);
  }
  return zipped ? JSON.parse(gunzipSync(zipped).toString("utf8")) : null;
}

/** The whole step, for one TransactWriteItems. */
export function transactItems(context: StepContext, step: Step): TransactWriteItem[] {
  return [
    marginCallsItem(context, step.next),
    ...outboxItems(context, step.next, step.effects),
    ...auditItems(context, step.next, step.effects),
  ];
}
