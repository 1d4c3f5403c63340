/**
 * How one step of the state machine is written: one builder per table, composed into the single
 * TransactWriteItems that commits the step. MarginCalls holds the next state, conditioned on the version
 * the step was computed from; the Outbox one item per NOTIFY, REQUEST_LIQUIDATION and RECORD_LOSS; the
 * AuditLog one item per AUDIT effect, the first carrying the replayable snapshot. docs/data-model.md has
 * the keys and the access patterns.
 */
import { createHash } from "node:crypto";
import type { TransactWriteItem } from "@aws-sdk/client-dynamodb";
import { type CallState, type Effect, nextDueAt, type Step } from "../domain/machine.ts";
import { plain } from "../domain/snapshot.ts";
import type { AccountInputs } from "./account-inputs.ts";
import { toItem } from "./codec.ts";
import type { Tables } from "./settings.ts";

const DAY_SHARDS = 8;
const DEFAULT_OUTBOX_RETENTION_SECONDS = 30 * 86_400;

/** What the builders need beyond the step. */
export interface StepContext {
  readonly tables: Tables;
  /** Shards of the sparse byDeadline index: spread open calls over partitions. */
  readonly openCallShards: number;
  readonly outboxRetentionSeconds?: number | undefined;
  readonly inputs: AccountInputs;
  readonly previous: CallState;
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

/** At most 36 characters, the same for the same account and version: a retried commit is idempotent. */
export function clientRequestToken(accountId: string, version: number): string {
  return hash(`${accountId}|v${version}`).toString("base64url").slice(0, 36);
}

export function auditSeq(version: number, index: number): string {
  return `v${String(version).padStart(12, "0")}#${String(index).padStart(3, "0")}`;
}

/** The next state, written only if the stored version is still the one the step was computed from. */
export function marginCallsItem(context: StepContext, next: CallState): TransactWriteItem {
  const { previous, inputs, now } = context;
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
      }),
      ...(previous.version === 0
        ? { ConditionExpression: "attribute_not_exists(accountId)" }
        : {
            ConditionExpression: "version = :previous",
            ExpressionAttributeValues: { ":previous": { N: String(previous.version) } },
          }),
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
          : `${effect.accountId}:v${next.version}:loss`;
    return [
      {
        Put: {
          TableName: context.tables.outbox,
          Item: toItem({
            outboxId,
            kind: effect.kind,
            accountId: effect.accountId,
            version: next.version,
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
  return audits.map((effect, index) => ({
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
              snapshot: JSON.stringify(context.snapshot),
              effects: JSON.stringify(plain(effects.filter((other) => other.kind !== "AUDIT"))),
            }
          : {}),
      }),
      ConditionExpression: "attribute_not_exists(seq)",
    },
  }));
}

/** The whole step, for one TransactWriteItems. */
export function transactItems(context: StepContext, step: Step): TransactWriteItem[] {
  return [
    marginCallsItem(context, step.next),
    ...outboxItems(context, step.next, step.effects),
    ...auditItems(context, step.next, step.effects),
  ];
}
