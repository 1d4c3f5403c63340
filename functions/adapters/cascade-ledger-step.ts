/**
 * The cascade ledger's part in one step of the engine (domain: cascade-ledger.ts; docs/liquidation.md,
 * section 10): from the step decided, what the policy's ledger becomes and whether the step must wait. The
 * engine (engine.ts) decides again on a wait and writes the ledger with the step (cascade-ledger-store.ts
 * `ledgerPut`) or, for a refreshed wait alone, `putLedgerAlone`.
 */
import {
  admitOne,
  type CapWait,
  type CascadeLedger,
  cascadeOf,
  forgetWait,
  planNotional,
  settleRequest,
} from "../domain/cascade-ledger.ts";
import type { Decision } from "../domain/decide.ts";
import type { CallState, Step } from "../domain/machine.ts";
import { ZERO } from "../domain/money.ts";
import { marginRatio } from "../domain/valuation.ts";
import type { AccountInputs } from "./account-inputs.ts";
import { encodeLedger, LEDGER_MAX_BYTES, type LedgerDeps, readLedger } from "./cascade-ledger-store.ts";

/** What a step does to its policy's cascade ledger: the write, and the wait it decided (null: none). */
export interface LedgerStep {
  readonly read: CascadeLedger;
  readonly next: CascadeLedger;
  readonly wait: CapWait | null;
  /** False: nothing to write (a full ledger). */
  readonly write: boolean;
}

/** The liquidation the step requests, if any (the engine reads it the same way, engine.ts `requestOf`). */
function requestOf(step: Step) {
  return step.effects.find((effect) => effect.kind === "REQUEST_LIQUIDATION");
}

/**
 * The cascade ledger's part in a step (cascade-ledger.ts), when the policy has caps: a call's first request
 * is admitted or waits; a call leaving LIQUIDATING settles its request; a waiting call that leaves CALLED
 * another way (cured, closed) gives up its place. Null: the step does not touch the ledger.
 */
export async function ledgerStep(
  deps: LedgerDeps,
  inputs: AccountInputs,
  state: CallState,
  decision: Decision,
  now: string,
): Promise<LedgerStep | null> {
  const policy = inputs.policy.policy;
  const cascade = cascadeOf(policy);
  const { step, assessment } = decision;
  const request = requestOf(step);
  const first =
    cascade && request?.kind === "REQUEST_LIQUIDATION" && request.attempt === 1 ? request : undefined;
  // Settling and giving a place up are written whatever the policy says now: a version without caps must
  // not leave the requests and waits of the version before counting forever (one read of the ledger per
  // settle; none is there for a policy that never had caps).
  const settles = state.status === "LIQUIDATING" && step.next.status !== "LIQUIDATING";
  const waited = state.call?.liquidationWaitingAt ? state.call.callId : null;
  const gaveUp =
    waited !== null && !first && (step.next.status !== "CALLED" || step.next.call?.callId !== waited);
  if (!first && !settles && !gaveUp) return null;
  const read = await readLedger(deps, policy.policyId);
  if (first && cascade) {
    const candidate = {
      accountId: state.accountId,
      marginRatio: marginRatio(assessment.valuation) ?? ZERO,
      notionalByAsset: planNotional(first.plan, policy),
    };
    const verdict = admitOne(read, candidate, first.callId, cascade, now);
    if (encodeLedger(verdict.ledger).byteLength > LEDGER_MAX_BYTES) {
      // A ledger this large would soon pass DynamoDB's 400 KB: wait, and write nothing.
      const wait: CapWait = { reason: "LEDGER_FULL", caps: [], behindOn: [], priority: 1, of: 1 };
      return { read, next: read, wait, write: false };
    }
    if (verdict.ledger === read) return null; // in flight already: a stale step, whose commit will fail
    return { read, next: verdict.ledger, wait: verdict.admitted ? null : verdict.wait, write: true };
  }
  const callId = state.call?.callId ?? "";
  const next = settles
    ? (settleRequest(read, callId, now) ?? (gaveUp ? forgetWait(read, state.accountId) : null))
    : forgetWait(read, state.accountId);
  return next ? { read, next, wait: null, write: true } : null;
}
