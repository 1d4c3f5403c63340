/**
 * The cascade caps applied one account at a time (cascade.ts `admit`; docs/liquidation.md, section 10).
 *
 * The engine decides each account on its own, but the caps are shared: the notional under liquidation per
 * asset and in total, within the policy's window. So each policy with caps keeps one ledger: the requests
 * in flight (each call's first request, its notional by asset, when it was sent and when it settled) and
 * the accounts waiting (their margin ratio and notional, when they began to wait and when they were last
 * seen). A step that would send a call's first request is admitted against the ledger it read:
 *
 *   - the candidates are this account and every other account still waiting (seen within WAIT_TTL_SECONDS:
 *     a waiting account that cured, or was liquidated by a later step, stops being seen and drops out);
 *   - `admit` decides them all in priority order (deepest deficit first, then size, then account id), with
 *     the caps' usage from the requests still in flight; this account goes only if `admit` admits it;
 *   - the others are not sent by this step: a higher-priority account that `admit` would admit keeps its
 *     room, and is sent when its own next revaluation (the sweep's due-call pass, each minute) asks again.
 *
 * The ledger is written in the step's own transaction, conditional on the version read: no two steps admit
 * against the same room, and a step that lost the race decides again on the new ledger. So caps are never
 * exceeded (in flight + admitted ≤ cap, on every cap), whatever the interleaving, and a waiting account is
 * never passed by one of lower priority on a cap it is short of.
 *
 * A call's retries (attempt 2 on) are not admitted again: they close what the first request left, so their
 * notional is within the first's, which stays in flight until the call settles. A settled call's request
 * counts for the rest of its window, as `usageInWindow` says.
 */
import { assert } from "./assert.ts";
import {
  admit,
  byPriority,
  type CascadePolicy,
  capsOf,
  type InFlightRequest,
  type LiquidationCandidate,
  usageInWindow,
  type WaitReason,
} from "./cascade.ts";
import type { LiquidationPlan } from "./liquidation-rules.ts";
import { type Dec, ZERO } from "./money.ts";
import type { Policy } from "./policy.ts";
import { addSeconds, atOrAfter } from "./time.ts";

/**
 * How long a waiting account holds its place without being seen again. A waiting call is past its deadline
 * or below its hard floor, so the sweep's due-call pass takes it every minute; a call that stops asking
 * while still CALLED (back above the floor before its deadline) holds its place at most this long. A place
 * lost by a slow pass costs the account its priority, not its request, so the bound errs long.
 */
export const WAIT_TTL_SECONDS = 900;

/** The most waiting accounts a ledger keeps, by priority: the rest are decided when they next ask. */
export const MAX_WAITING = 500;

/** The most requests a ledger keeps in flight: past it, new requests wait (LEDGER_FULL) until some settle. */
export const MAX_IN_FLIGHT = 1_000;

export interface LedgerRequest extends InFlightRequest {
  readonly accountId: string;
  readonly callId: string;
}

export interface LedgerWaiting extends LiquidationCandidate {
  readonly since: string;
  readonly seenAt: string;
}

export interface CascadeLedger {
  /** 0: never written. */
  readonly version: number;
  readonly inFlight: readonly LedgerRequest[];
  readonly waiting: readonly LedgerWaiting[];
}

export const EMPTY_LEDGER: CascadeLedger = { version: 0, inFlight: [], waiting: [] };

/** Why a call's first request, due now, waits for the caps: what the machine records and the audit says. */
export interface CapWait {
  readonly reason: Exclude<WaitReason, "PAUSED"> | "LEDGER_FULL";
  /** The caps it lacked room on (EXCEEDS_CAP: the caps it is larger than). */
  readonly caps: readonly string[];
  /** The caps a higher-priority waiting account holds that it touches. */
  readonly behindOn: readonly string[];
  /** 1-based place among the candidates of the decision. */
  readonly priority: number;
  /** Candidates in that decision: this account and every other one waiting. */
  readonly of: number;
}

export type Admission =
  | { readonly admitted: true; readonly ledger: CascadeLedger }
  | { readonly admitted: false; readonly ledger: CascadeLedger; readonly wait: CapWait };

/** The caps of a policy, or null when it sets none: then nothing is capped and no ledger is kept. */
export function cascadeOf(policy: Policy): CascadePolicy | null {
  const cascade = policy.cascade;
  return cascade && capsOf(cascade).size > 0 ? cascade : null;
}

/** A plan's notional by the asset that prices each step: quantity × mark, exact. */
export function planNotional(plan: LiquidationPlan, policy: Policy): Map<string, Dec> {
  const byAsset = new Map<string, Dec>();
  for (const step of plan.steps) {
    const asset =
      step.target.kind === "HOLDING"
        ? step.target.asset
        : (policy.instruments.get(step.target.instrument)?.underlying ?? step.target.instrument);
    byAsset.set(asset, (byAsset.get(asset) ?? ZERO).plus(step.quantity.abs().times(step.markPrice)));
  }
  return byAsset;
}

/** The ledger without what no longer counts: settled requests past their window, waits not seen lately. */
export function live(ledger: CascadeLedger, cascade: CascadePolicy, now: string): CascadeLedger {
  const windowStart = addSeconds(now, -cascade.windowSeconds);
  const seenSince = addSeconds(now, -WAIT_TTL_SECONDS);
  return {
    version: ledger.version,
    inFlight: ledger.inFlight.filter((r) => r.settledAt === null || atOrAfter(r.requestedAt, windowStart)),
    waiting: ledger.waiting.filter((w) => atOrAfter(w.seenAt, seenSince)),
  };
}

/** Decides whether `candidate`'s first request for `callId` goes now, and the ledger to write either way. */
export function admitOne(
  read: CascadeLedger,
  candidate: LiquidationCandidate,
  callId: string,
  cascade: CascadePolicy,
  now: string,
): Admission {
  const ledger = live(read, cascade, now);
  const { accountId } = candidate;
  // The call's first request is in flight already: the step was decided on a state read before that
  // request's commit (its own commit will fail on the state's version). Change nothing.
  if (ledger.inFlight.some((r) => r.callId === callId && r.settledAt === null)) {
    return { admitted: true, ledger: read };
  }
  const others = ledger.waiting.filter((w) => w.accountId !== accountId);
  const own = ledger.waiting.find((w) => w.accountId === accountId);
  const inFlight = ledger.inFlight;
  const usage = usageInWindow(inFlight, now, cascade.windowSeconds);
  const decided = admit([...others, candidate], cascade, usage, new Set());
  const admitted = decided.admitted.some((a) => a.accountId === accountId);
  const of = others.length + 1;
  if (admitted && inFlight.length < MAX_IN_FLIGHT) {
    const request: LedgerRequest = {
      accountId,
      callId,
      requestedAt: now,
      settledAt: null,
      notionalByAsset: candidate.notionalByAsset,
    };
    return { admitted: true, ledger: { ...ledger, inFlight: [...inFlight, request], waiting: others } };
  }
  const waiting = decided.waiting.find((w) => w.accountId === accountId);
  const priority =
    waiting?.priority ?? decided.admitted.find((a) => a.accountId === accountId)?.priority ?? of;
  const wait: CapWait =
    waiting && waiting.reason !== "PAUSED"
      ? { reason: waiting.reason, caps: waiting.caps, behindOn: waiting.behindOn, priority, of }
      : { reason: "LEDGER_FULL", caps: [], behindOn: [], priority, of };
  const entry: LedgerWaiting = { ...candidate, since: own?.since ?? now, seenAt: now };
  return { admitted: false, wait, ledger: { ...ledger, inFlight, waiting: keptWaiting([...others, entry]) } };
}

/**
 * Whether a wait's place needs writing again: its reason for waiting or its figures changed, or it was last
 * seen more than a third of WAIT_TTL_SECONDS ago. A waiting account asks every minute; writing its place each
 * time would rewrite the whole ledger item once a minute per waiting account.
 */
export function refreshNeeded(
  read: CascadeLedger,
  next: CascadeLedger,
  accountId: string,
  now: string,
): boolean {
  const before = read.waiting.find((w) => w.accountId === accountId);
  const after = next.waiting.find((w) => w.accountId === accountId);
  if (!before || !after) return true;
  if (next.inFlight.length !== read.inFlight.length || next.waiting.length !== read.waiting.length)
    return true;
  if (!before.marginRatio.equals(after.marginRatio)) return true;
  return !atOrAfter(before.seenAt, addSeconds(now, -Math.floor(WAIT_TTL_SECONDS / 3)));
}

/** The ledger with the call's request settled at `now`, or null when it has none in flight unsettled. */
export function settleRequest(read: CascadeLedger, callId: string, now: string): CascadeLedger | null {
  const index = read.inFlight.findIndex((r) => r.callId === callId && r.settledAt === null);
  if (index < 0) return null;
  const inFlight = read.inFlight.map((r, i) => (i === index ? { ...r, settledAt: now } : r));
  return { ...read, inFlight };
}

/** The ledger without the account's wait, or null when it is not waiting. */
export function forgetWait(read: CascadeLedger, accountId: string): CascadeLedger | null {
  if (!read.waiting.some((w) => w.accountId === accountId)) return null;
  return { ...read, waiting: read.waiting.filter((w) => w.accountId !== accountId) };
}

/** At most MAX_WAITING, the highest priority kept (cascade.ts `byPriority` order), each account once. */
function keptWaiting(waiting: readonly LedgerWaiting[]): LedgerWaiting[] {
  const byId = new Map(waiting.map((w) => [w.accountId, w]));
  assert(byId.size === waiting.length, "an account waits once");
  return byPriority(waiting)
    .slice(0, MAX_WAITING)
    .flatMap((candidate) => {
      const entry = byId.get(candidate.accountId);
      return entry ? [entry] : [];
    });
}
