/**
 * The engine's one write path: revalue an account and apply the state machine. Read state and inputs,
 * compute the step (pure domain code), and commit it as one TransactWriteItems: the call state with a
 * version condition, the outbox items and the audit entries. A concurrent writer that got there first
 * makes the condition fail; this writer then re-reads and recomputes, so no call is lost or doubled.
 */
import { createHash } from "node:crypto";
import {
  type DynamoDBClient,
  GetItemCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { assess } from "../domain/assess.ts";
import {
  type CallState,
  creditableDeposits,
  type Effect,
  type EngineEvent,
  type ExecutionFill,
  initialState,
  type Step,
  transition,
} from "../domain/machine.ts";
import { toPlainString } from "../domain/money.ts";
import { plain } from "../domain/snapshot.ts";
import { ValuationError } from "../domain/valuation.ts";
import { type AccountInputs, loadAccountInputs } from "./account-inputs.ts";
import { fromImage, toItem } from "./codec.ts";
import type { PolicyEntry, Tables } from "./settings.ts";
import { syncTriggerIndex } from "./trigger-index.ts";

export interface EngineDeps {
  readonly dynamo: DynamoDBClient;
  readonly tables: Tables;
  readonly policies: ReadonlyMap<string, PolicyEntry>;
  /** Shards of the sparse byDeadline index: spread open calls over partitions. */
  readonly openCallShards: number;
  /** How long delivered outbox items are kept, in seconds. */
  readonly outboxRetentionSeconds?: number;
}

export type RevalueOutcome =
  | { readonly kind: "SKIPPED"; readonly accountId: string; readonly reason: string }
  | {
      readonly kind: "UNCHANGED" | "TRANSITIONED";
      readonly accountId: string;
      readonly state: CallState;
      readonly effects: readonly Effect[];
      /** Commits that lost to a concurrent writer before this one won. */
      readonly conflicts: number;
    };

const MAX_ATTEMPTS = 6;
const DAY_SHARDS = 8;

export class ConflictError extends Error {
  override readonly name = "ConflictError";
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

export async function readCallState(deps: EngineDeps, accountId: string): Promise<CallState | null> {
  const result = await deps.dynamo.send(
    new GetItemCommand({
      TableName: deps.tables.marginCalls,
      Key: { accountId: { S: accountId } },
      ConsistentRead: true,
    }),
  );
  if (!result.Item) return null;
  const item = fromImage(result.Item);
  return JSON.parse(String(item.state)) as CallState;
}

/** The next moment the machine acts on this call without any price or account change. */
function nextDueAt(state: CallState, inputs: AccountInputs): string | null {
  const call = state.call;
  if (!call) return null;
  const policy = inputs.policy.policy;
  const plus = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString();
  if (state.status === "CALLED") {
    const reminders = policy.reminderOffsetsSeconds
      .slice(call.remindersSent)
      .map((offset) => plus(call.issuedAt, offset));
    // A breach of the hard floor is confirmed by a revaluation this long after it was first seen.
    const confirm = call.hardFloorSince ? [plus(call.hardFloorSince, policy.hardFloorConfirmSeconds)] : [];
    return [...reminders, ...confirm, call.deadlineAt].sort()[0] ?? call.deadlineAt;
  }
  // A call met by a deposit is followed by a new one only if a revaluation this long after still finds
  // the account in breach (machine.ts meetCall).
  if (state.status === "CURED" && call.closure?.how === "DEPOSIT" && policy.hardFloorConfirmSeconds > 0) {
    return plus(call.closure.at, policy.hardFloorConfirmSeconds);
  }
  // An exhausted liquidation waits for an operator (or a late fill), not for the sweep.
  if (state.status === "LIQUIDATING" && call.liquidationRequestedAt && !call.liquidationExhaustedAt) {
    return plus(call.liquidationRequestedAt, policy.liquidationRetrySeconds);
  }
  return null;
}

/** What `margin-call evaluate` takes: the audit log keeps it so any decision can be recomputed. */
export function replaySnapshot(inputs: AccountInputs, state: CallState, event: EngineEvent, now: string) {
  const { account } = inputs;
  return {
    now,
    policy: inputs.policy.document,
    account: {
      accountId: account.accountId,
      cash: toPlainString(account.cash),
      holdings: account.holdings.map((h) => ({ asset: h.asset, quantity: toPlainString(h.quantity) })),
      positions: account.positions.map((p) => ({
        instrument: p.instrument,
        size: toPlainString(p.size),
        entryPrice: toPlainString(p.entryPrice),
      })),
      pendingDeposits: account.pendingDeposits.map((d) => ({
        depositId: d.depositId,
        amount: toPlainString(d.amount),
      })),
      // Only the deposits that can pay the open call or one issued now (machine.ts creditableDeposits):
      // an account's whole deposit history would not fit the audit item.
      settledDeposits: creditableDeposits(
        account.settledDeposits ?? [],
        state.call && state.call.issuedAt < now ? state.call.issuedAt : now,
      ).map((d) => ({
        depositId: d.depositId,
        amount: toPlainString(d.amount),
        settledAt: d.settledAt,
      })),
    },
    prices: [...inputs.sources].flatMap(([asset, sources]) =>
      sources.map((source) => ({
        asset,
        source: source.source,
        price: toPlainString(source.price),
        asOf: source.asOf,
        ...(source.realizedVolatility
          ? { realizedVolatility: toPlainString(source.realizedVolatility) }
          : {}),
      })),
    ),
    state: state.version === 0 ? null : state,
    event,
  };
}

function transactItems(
  deps: EngineDeps,
  previous: CallState,
  step: Step,
  inputs: AccountInputs,
  event: EngineEvent,
  now: string,
): TransactWriteItem[] {
  const { tables } = deps;
  const next = step.next;
  const dueAt = nextDueAt(next, inputs);
  const nowSeconds = Math.floor(Date.parse(now) / 1000);
  const items: TransactWriteItem[] = [
    {
      Put: {
        TableName: tables.marginCalls,
        Item: toItem({
          accountId: next.accountId,
          version: next.version,
          status: next.status,
          state: JSON.stringify(next),
          updatedAt: now,
          policy: `${inputs.policy.policy.policyId}@${inputs.policy.policy.version}`,
          ...(dueAt
            ? { openCallShard: shardOf(next.accountId, deps.openCallShards), deadlineAt: dueAt }
            : {}),
        }),
        ...(previous.version === 0
          ? { ConditionExpression: "attribute_not_exists(accountId)" }
          : {
              ConditionExpression: "version = :previous",
              ExpressionAttributeValues: { ":previous": { N: String(previous.version) } },
            }),
      },
    },
  ];
  for (const effect of step.effects) {
    if (effect.kind === "AUDIT") continue;
    const outboxId =
      effect.kind === "NOTIFY"
        ? effect.notificationId
        : effect.kind === "REQUEST_LIQUIDATION"
          ? effect.requestId
          : `${effect.accountId}:v${next.version}:loss`;
    items.push({
      Put: {
        TableName: tables.outbox,
        Item: toItem({
          outboxId,
          kind: effect.kind,
          accountId: effect.accountId,
          version: next.version,
          createdAt: now,
          payload: JSON.stringify(plain(effect)),
          expiresAtEpochSeconds: nowSeconds + (deps.outboxRetentionSeconds ?? 30 * 86_400),
        }),
        ConditionExpression: "attribute_not_exists(outboxId)",
      },
    });
  }
  let index = 0;
  for (const effect of step.effects) {
    if (effect.kind !== "AUDIT") continue;
    const first = index === 0;
    items.push({
      Put: {
        TableName: tables.auditLog,
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
          ...(first
            ? {
                snapshot: JSON.stringify(replaySnapshot(inputs, previous, event, now)),
                effects: JSON.stringify(plain(step.effects.filter((e) => e.kind !== "AUDIT"))),
              }
            : {}),
        }),
        ConditionExpression: "attribute_not_exists(seq)",
      },
    });
    index += 1;
  }
  return items;
}

/**
 * An execution report is decided on every report the account holds for the same call: what filled over
 * all its attempts, not the one report alone. A final report with nothing filled does not settle.
 */
function withFills(event: EngineEvent, inputs: AccountInputs): EngineEvent {
  if (event.type !== "EXECUTION_REPORT") return event;
  const marker = event.requestId.lastIndexOf(":liquidation:");
  const callPrefix =
    marker >= 0 ? event.requestId.slice(0, marker + ":liquidation:".length) : event.requestId;
  const fills: ExecutionFill[] = inputs.executionReports
    .filter((report) => report.requestId.startsWith(callPrefix))
    .map((report) => ({
      reportId: report.reportId,
      requestId: report.requestId,
      target: report.target,
      side: report.side,
      filledQuantity: report.filledQuantity,
      averagePrice: report.averagePrice ?? null,
      fee: report.fee,
      final: report.final,
    }))
    .sort((a, b) => (a.reportId < b.reportId ? -1 : a.reportId > b.reportId ? 1 : 0));
  return { ...event, fills };
}

function isConflict(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "IdempotentParameterMismatchException") return true;
  if (error.name === "TransactionConflictException") return true;
  if (error.name !== "TransactionCanceledException") return false;
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.some(
    (reason) => reason.Code === "ConditionalCheckFailed" || reason.Code === "TransactionConflict",
  );
}

/**
 * Revalues one account and applies the state machine, committing the step if it changes anything.
 * Idempotent: re-running it with the same inputs finds nothing to change.
 */
export async function revalueAccount(
  deps: EngineDeps,
  accountId: string,
  event: EngineEvent,
  /** The time of the decision, or a clock read at each attempt: a page of a long sweep must not decide on its start time. */
  clock: string | (() => string),
): Promise<RevalueOutcome> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const now = typeof clock === "function" ? clock() : clock;
    const nowMs = Date.parse(now);
    const state = (await readCallState(deps, accountId)) ?? initialState(accountId, now);
    // Prices are read after the state they are applied to, never from a cache: a decision on prices older
    // than the state it changes could undo a newer one (a false cure after a call).
    const loaded = await loadAccountInputs(deps.dynamo, deps.tables, deps.policies, accountId, nowMs);
    if (!loaded.ok) return { kind: "SKIPPED", accountId, reason: loaded.reason };
    const inputs = loaded.inputs;
    const decided = withFills(event, inputs);
    let assessment: ReturnType<typeof assess>;
    try {
      assessment = assess(inputs.account, inputs.marks, inputs.policy.policy);
    } catch (error) {
      // The items pass the contract but cannot be valued under the policy (a borrowed asset the policy
      // does not lend, say): keep the state, say why, and let the sweep retry once upstream fixes it.
      if (error instanceof ValuationError) return { kind: "SKIPPED", accountId, reason: error.message };
      throw error;
    }
    const step = transition(state, assessment, inputs.policy.policy, decided, now);
    if (step.effects.length === 0 && step.next === state) {
      await syncTriggerIndex(deps, inputs, now);
      return { kind: "UNCHANGED", accountId, state, effects: [], conflicts: attempt };
    }
    try {
      await deps.dynamo.send(
        new TransactWriteItemsCommand({
          TransactItems: transactItems(deps, state, step, inputs, decided, now),
          ClientRequestToken: clientRequestToken(accountId, step.next.version),
        }),
      );
    } catch (error) {
      if (isConflict(error)) continue;
      throw error;
    }
    await syncTriggerIndex(deps, inputs, now);
    return { kind: "TRANSITIONED", accountId, state: step.next, effects: step.effects, conflicts: attempt };
  }
  throw new ConflictError(`account ${accountId}: ${MAX_ATTEMPTS} commits lost to concurrent writers`);
}
