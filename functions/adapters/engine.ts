/**
 * The engine's one write path: revalue an account and apply the state machine. Read state and inputs,
 * compute the step (pure domain code), and commit it as one TransactWriteItems: the call state with a
 * version condition, the outbox items and the audit entries. A concurrent writer that got there first
 * makes the condition fail; this writer then re-reads and recomputes, so no call is lost or doubled. A
 * liquidation request is decided on its assets' circuit breakers and committed only while they are still
 * active (adapters/breakers.ts).
 */
import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { type CapWait, refreshNeeded } from "../domain/cascade-ledger.ts";
import { type Decision, decide } from "../domain/decide.ts";
import {
  type CallState,
  type Effect,
  type EngineEvent,
  type ExecutionFill,
  initialState,
  planAssets,
  type Step,
} from "../domain/machine.ts";
import { ValuationError } from "../domain/valuation.ts";
import { type AccountInputs, loadAccountInputs, NOT_ONBOARDED } from "./account-inputs.ts";
import { activeBreakerChecks, readPauses } from "./breakers.ts";
import { ledgerStep } from "./cascade-ledger-step.ts";
import { ledgerPut, putLedgerAlone } from "./cascade-ledger-store.ts";
import { fromImage, toItem } from "./codec.ts";
import { parkAccount } from "./parked.ts";
import type { PolicyEntry, Tables } from "./settings.ts";
import { clientRequestToken, type InputsMarker, stateCondition, transactItems } from "./step-items.ts";
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
      /** Trigger lines left out of the index, with why (a price beyond its key's range). */
      readonly unindexed?: readonly string[];
    };

const MAX_ATTEMPTS = 6;

export class ConflictError extends Error {
  override readonly name = "ConflictError";
}

export { auditSeq, clientRequestToken, shardOf } from "./step-items.ts";

export async function readCallState(deps: EngineDeps, accountId: string): Promise<CallState | null> {
  return (await readStoredState(deps, accountId)).state;
}

/** The stored state, with the marker of the account changes judged on it (step-items.ts `InputsMarker`). */
async function readStoredState(
  deps: EngineDeps,
  accountId: string,
): Promise<{ readonly state: CallState | null; readonly marker: InputsMarker }> {
  const result = await deps.dynamo.send(
    new GetItemCommand({
      TableName: deps.tables.marginCalls,
      Key: { accountId: { S: accountId } },
      ConsistentRead: true,
    }),
  );
  if (!result.Item) return { state: null, marker: { exists: false, inputsSeen: null } };
  const item = fromImage(result.Item);
  const inputsSeen = typeof item.inputsSeen === "number" ? item.inputsSeen : null;
  return { state: JSON.parse(String(item.state)) as CallState, marker: { exists: true, inputsSeen } };
}

/**
 * An account change judged to change nothing still leaves its mark on the state it was judged on: one more
 * `inputsSeen`, conditioned on that state. A writer that read the account's items before the change read
 * the state before the mark, so its commit (conditioned on the marker it read) fails, and it decides again
 * on the items as they are now. False when the state moved meanwhile: the change is judged again.
 */
async function markInputsSeen(
  deps: EngineDeps,
  state: CallState,
  marker: InputsMarker,
  inputs: AccountInputs,
  now: string,
): Promise<boolean> {
  try {
    if (!marker.exists) {
      // The account's first mark: its state item, as the machine starts it, at version 0.
      await deps.dynamo.send(
        new PutItemCommand({
          TableName: deps.tables.marginCalls,
          Item: toItem({
            accountId: state.accountId,
            version: state.version,
            status: state.status,
            state: JSON.stringify(state),
            updatedAt: now,
            policy: `${inputs.policy.policy.policyId}@${inputs.policy.policy.version}`,
            inputsSeen: 1,
          }),
          ConditionExpression: "attribute_not_exists(accountId)",
        }),
      );
      return true;
    }
    const condition = stateCondition(state, marker);
    await deps.dynamo.send(
      new UpdateItemCommand({
        TableName: deps.tables.marginCalls,
        Key: { accountId: { S: state.accountId } },
        UpdateExpression: "SET inputsSeen = :next",
        ConditionExpression: condition.ConditionExpression,
        ExpressionAttributeValues: {
          ...condition.ExpressionAttributeValues,
          ":next": { N: String((marker.inputsSeen ?? 0) + 1) },
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === "ConditionalCheckFailedException") return false;
    throw error;
  }
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
/** Decides one step from what was loaded; undefined when the account cannot be valued (said why). */
function decideFrom(
  inputs: AccountInputs,
  state: CallState,
  event: EngineEvent,
  now: string,
  liquidationPauses?: ReadonlyMap<string, string>,
  capWait?: CapWait,
) {
  try {
    return decide({
      state,
      account: inputs.account,
      sources: inputs.sources,
      marks: inputs.marks,
      policy: inputs.policy.policy,
      event: withFills(event, inputs),
      now,
      liquidationDispatch: inputs.liquidationDispatch,
      liquidationPauses,
      capWait,
    });
  } catch (error) {
    // The items pass the contract but cannot be valued under the policy (a borrowed asset the policy
    // does not lend, say): keep the state, say why, and let the sweep retry once upstream fixes it.
    if (error instanceof ValuationError) return error;
    throw error;
  }
}

function requestOf(step: Step) {
  return step.effects.find((effect) => effect.kind === "REQUEST_LIQUIDATION");
}

/**
 * The breakers of the assets of the liquidation the step requests. Read whatever this environment's cached
 * policy says of a breaker: another environment may already decide under a version that has one and has
 * tripped it. A request is rare, and an asset without a breaker item costs one key of one BatchGetItem.
 */
async function breakersOfRequest(deps: EngineDeps, inputs: AccountInputs, step: Step) {
  const policy = inputs.policy.policy;
  const request = requestOf(step);
  if (request?.kind !== "REQUEST_LIQUIDATION") return undefined;
  return readPauses(deps, policy.policyId, planAssets(request.plan, policy));
}

/** Commits a step in one TransactWriteItems; false when a concurrent writer got there first. */
async function commit(
  deps: EngineDeps,
  inputs: AccountInputs,
  state: CallState,
  marker: InputsMarker,
  decision: Decision,
  now: string,
  extraItems: readonly TransactWriteItem[],
) {
  const { step, snapshot } = decision;
  const context = { ...deps, inputs, previous: state, marker, now, snapshot: snapshot() };
  try {
    const items = [...transactItems(context, step), ...extraItems];
    await deps.dynamo.send(
      new TransactWriteItemsCommand({
        TransactItems: items,
        ClientRequestToken: clientRequestToken(state.accountId, step.next.version, items),
      }),
    );
    return true;
  } catch (error) {
    if (isConflict(error)) return false;
    throw error;
  }
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
    const stored = await readStoredState(deps, accountId);
    const state = stored.state ?? initialState(accountId, now);
    // Prices are read after the state they are applied to, never from a cache: a decision on prices older
    // than the state it changes could undo a newer one (a false cure after a call).
    const loaded = await loadAccountInputs(
      deps.dynamo,
      deps.tables,
      deps.policies,
      accountId,
      Date.parse(now),
      state,
    );
    // An account without its PROFILE is not onboarded yet (its items arrive one by one): not parked.
    if (!loaded.ok && loaded.reason.startsWith(NOT_ONBOARDED))
      return { kind: "SKIPPED", accountId, reason: loaded.reason };
    if (!loaded.ok) return await parked(deps, accountId, loaded.reason, now);
    let decision = decideFrom(loaded.inputs, state, event, now);
    if (decision instanceof ValuationError) return await parked(deps, accountId, decision.message, now);
    // Invariant 10: a step that would request a liquidation is decided on the breakers of the plan's assets.
    const breakers = await breakersOfRequest(deps, loaded.inputs, decision.step);
    if (breakers?.pauses.size) {
      decision = decideFrom(loaded.inputs, state, event, now, breakers.pauses);
      if (decision instanceof ValuationError) throw decision; // decided once on the same inputs already
    }
    // The cascade caps: a first request is admitted against the policy's ledger, or waits (decided again).
    const ledger = await ledgerStep(deps, loaded.inputs, state, decision, now);
    if (ledger?.wait) {
      decision = decideFrom(loaded.inputs, state, event, now, breakers?.pauses, ledger.wait);
      if (decision instanceof ValuationError) throw decision; // decided once on the same inputs already
    }
    const policyId = loaded.inputs.policy.policy.policyId;
    const checks =
      breakers && requestOf(decision.step)
        ? activeBreakerChecks(deps.tables.triggerIndex, policyId, breakers.active)
        : [];
    const ledgerWrite = ledger?.write
      ? [ledgerPut(deps.tables.triggerIndex, policyId, ledger.read, ledger.next, now)]
      : [];
    const { step, triggers } = decision;
    const changed = step.effects.length > 0 || step.next !== state;
    if (
      changed &&
      !(await commit(deps, loaded.inputs, state, stored.marker, decision, now, [...checks, ...ledgerWrite]))
    )
      continue;
    // A wait already recorded changes nothing in the account, but its place in the ledger is refreshed now
    // and then, only while the state it was decided on is still the stored one. A refresh that loses a race
    // is left for the next time the account asks: its place lapses at worst, never its request.
    if (!changed && ledger?.write && refreshNeeded(ledger.read, ledger.next, accountId, now)) {
      await putLedgerAlone(deps, policyId, ledger.read, ledger.next, now, {
        table: deps.tables.marginCalls,
        accountId,
        condition: stateCondition(state, stored.marker),
      });
    }
    const judgedChange = !changed && event.type === "REVALUE" && event.cause === "ACCOUNT_CHANGE";
    if (judgedChange && !(await markInputsSeen(deps, state, stored.marker, loaded.inputs, now))) continue;
    const { leftOut } = await syncTriggerIndex(deps, accountId, triggers, now);
    const unindexed = leftOut.length > 0 ? { unindexed: leftOut } : {};
    return changed
      ? {
          kind: "TRANSITIONED",
          accountId,
          state: step.next,
          effects: step.effects,
          conflicts: attempt,
          ...unindexed,
        }
      : { kind: "UNCHANGED", accountId, state, effects: [], conflicts: attempt, ...unindexed };
  }
  throw new ConflictError(`account ${accountId}: ${MAX_ATTEMPTS} commits lost to concurrent writers`);
}

/**
 * One account's revaluation, on its own: an account that throws (a bug, a value the engine cannot hold,
 * DynamoDB refusing for now) is reported not revalued, with its reason and the alarm that watches it, and
 * the caller goes on with the others. One hostile account must not stop a page, a tick or the sweep.
 */
export async function revalueIsolated(
  deps: EngineDeps,
  accountId: string,
  event: EngineEvent,
  clock: string | (() => string),
): Promise<RevalueOutcome> {
  try {
    return await revalueAccount(deps, accountId, event, clock);
  } catch (error) {
    const reason = `revaluation failed: ${error instanceof Error ? error.message : String(error)}`;
    try {
      return await parked(deps, accountId, reason, typeof clock === "function" ? clock() : clock);
    } catch {
      // DynamoDB refusing the parking too: the outcome is still logged and alarmed, and the sweep's next
      // pass revalues the account again.
      return { kind: "SKIPPED", accountId, reason };
    }
  }
}

/** An account that cannot be valued now: parked with its reason (parked.ts), reported SKIPPED. */
async function parked(
  deps: EngineDeps,
  accountId: string,
  reason: string,
  now: string,
): Promise<RevalueOutcome> {
  await parkAccount(deps, accountId, reason, now);
  return { kind: "SKIPPED", accountId, reason };
}
