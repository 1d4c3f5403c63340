/**
 * The insurance fund: an exact, append-only ledger, one balance per currency. Every movement is a flow with
 * its cause, a flow id that makes applying it idempotent, and a sequence number per currency that orders the
 * ledger and lets an adapter store each flow with one conditional write.
 *
 * - LIQUIDATION_FEE credits the fee a liquidation paid; MANUAL_TOPUP credits what an operator put in.
 * - BANKRUPTCY_COVER debits what the fund covers of a bankrupt account's shortfall: min(balance, shortfall).
 *   The fund never goes negative. A cover of an empty fund is still recorded, as a flow of 0, so that its
 *   flow id is spent: a redelivered request can never take money credited after it.
 * - Every amount is at the currency's scale; a request that is not is refused, never rounded here (the caller
 *   names the rounding where the amount is made).
 *
 * Item keys the DynamoDB adapter uses (one partition per currency, so one currency's ledger is one Query in
 * order; the sequence is zero-padded to 12 digits so the sort key orders flows by sequence):
 *
 *   PK FUND#<currency>  SK BALANCE           { balance, seq, updatedAt }              the head, read to plan
 *   PK FUND#<currency>  SK FLOW#<seq:012>    { flowId, cause, amount, balanceAfter,   one per flow, never
 *                                              requested, accountId, sourceReference,  updated or deleted
 *                                              recordedAt }
 *   PK FUND#<currency>  SK FLOWID#<flowId>   { seq }                                  the idempotency marker
 *
 * Applying a flow planned from the head (`planFlow`) is one TransactWriteItems:
 *
 *   Put    FLOWID#<flowId>  condition attribute_not_exists(PK)  fails: applied already; read it and return it
 *   Put    FLOW#<seq>       condition attribute_not_exists(PK)
 *   Put    BALANCE          condition seq = :previousSeq (attribute_not_exists(PK) for the first flow)
 *                           fails: another flow won the race; re-read the head and plan again
 *
 * So the stored balance always equals the last flow's balanceAfter, and the sum of the flows.
 */
import { assert } from "./assert.ts";
import { type Dec, min, ZERO } from "./money.ts";

export const FUND_FLOW_CAUSES = ["LIQUIDATION_FEE", "BANKRUPTCY_COVER", "MANUAL_TOPUP"] as const;
export type FundFlowCause = (typeof FUND_FLOW_CAUSES)[number];

/** The most flows one currency's ledger holds: the sequence is zero-padded to 12 digits in the sort key. */
export const MAX_FUND_SEQ = 999_999_999_999;

/** What an adapter reads to plan a flow: the BALANCE item of one currency. */
export interface FundHead {
  readonly currency: string;
  /** Decimal places of the currency (the policy's `currencyScale`). */
  readonly scale: number;
  readonly balance: Dec;
  /** The sequence number of the last flow; 0 before the first. */
  readonly seq: number;
}

/** A movement asked of the fund. */
export interface FundFlowRequest {
  /** Deterministic id of the decision that asks for it, e.g. `<lossReference>:fund`. */
  readonly flowId: string;
  readonly currency: string;
  readonly cause: FundFlowCause;
  /** Above 0, at the currency scale: the fee or top-up credited, or the shortfall asked to be covered. */
  readonly amount: Dec;
  /** The account the flow came from or went to; null for a manual top-up. */
  readonly accountId: string | null;
  /** The engine's reference of the cause: a liquidation request id, a loss reference, an operator ticket. */
  readonly sourceReference: string;
  /** ISO-8601 UTC. */
  readonly recordedAt: string;
}

/** A flow on the ledger. */
export interface FundFlow {
  readonly flowId: string;
  readonly currency: string;
  readonly seq: number;
  readonly cause: FundFlowCause;
  /** Signed, at the currency scale: above 0 credits the fund, below 0 debits it; 0 for a cover of an empty fund. */
  readonly amount: Dec;
  /** What the request asked: the fee credited, or the shortfall a cover was asked to cover. */
  readonly requested: Dec;
  readonly balanceAfter: Dec;
  readonly accountId: string | null;
  readonly sourceReference: string;
  readonly recordedAt: string;
}

/** One currency's ledger: the head and every flow, in sequence. */
export interface FundLedger {
  readonly head: FundHead;
  readonly flows: readonly FundFlow[];
  readonly byFlowId: ReadonlyMap<string, FundFlow>;
}

export class FundFlowError extends Error {
  override readonly name = "FundFlowError";
}

/** A flow id applied before with a different request: a bug upstream, never silently ignored. */
export class FundFlowConflictError extends Error {
  override readonly name = "FundFlowConflictError";
}

export function emptyFund(currency: string, scale: number): FundLedger {
  assert(Number.isInteger(scale) && scale >= 0 && scale <= 18, `a currency scale is 0..18, not ${scale}`);
  return { head: { currency, scale, balance: ZERO, seq: 0 }, flows: [], byFlowId: new Map() };
}

/** The sign of a cause: +1 credits the fund, −1 debits it. */
export function causeDirection(cause: FundFlowCause): 1 | -1 {
  return cause === "BANKRUPTCY_COVER" ? -1 : 1;
}

/**
 * The next flow of a currency, from its head alone: what the adapter writes conditionally. A cover takes
 * min(balance, amount), so the balance after is never negative. Throws FundFlowError on a bad request.
 */
export function planFlow(head: FundHead, request: FundFlowRequest): FundFlow {
  checkRequest(head, request);
  const taken = causeDirection(request.cause) === 1 ? request.amount : min(head.balance, request.amount);
  const amount = causeDirection(request.cause) === 1 ? taken : taken.negated();
  const balanceAfter = head.balance.plus(amount);
  assert(!balanceAfter.isNegative(), `the ${head.currency} fund never goes below 0`);
  assert(balanceAfter.decimalPlaces() <= head.scale, "a fund balance stays at the currency scale");
  return {
    flowId: request.flowId,
    currency: head.currency,
    seq: head.seq + 1,
    cause: request.cause,
    amount: amount.isZero() ? ZERO : amount,
    requested: request.amount,
    balanceAfter,
    accountId: request.accountId,
    sourceReference: request.sourceReference,
    recordedAt: request.recordedAt,
  };
}

/** The head after a flow: what the BALANCE item holds once the flow is written. */
export function headAfter(head: FundHead, flow: FundFlow): FundHead {
  assert(flow.currency === head.currency, "a flow moves its own currency's fund");
  assert(flow.seq === head.seq + 1, `flow ${flow.flowId} has seq ${flow.seq}, expected ${head.seq + 1}`);
  assert(head.balance.plus(flow.amount).equals(flow.balanceAfter), `flow ${flow.flowId} adds up`);
  return { ...head, balance: flow.balanceAfter, seq: flow.seq };
}

export interface AppliedFlow {
  readonly ledger: FundLedger;
  /** The flow on the ledger for this flow id: the new one, or the one applied before. */
  readonly flow: FundFlow;
  /** False when the flow id was applied before: the ledger is returned unchanged. */
  readonly applied: boolean;
}

/**
 * Applies a flow once: a flow id seen before returns the flow it made and the same ledger (the same request
 * redelivered), and throws FundFlowConflictError if the request differs from the one applied.
 */
export function applyFlow(ledger: FundLedger, request: FundFlowRequest): AppliedFlow {
  const existing = ledger.byFlowId.get(request.flowId);
  if (existing) return { ledger, flow: appliedBefore(existing, request), applied: false };
  const flow = planFlow(ledger.head, request);
  const byFlowId = new Map(ledger.byFlowId);
  byFlowId.set(flow.flowId, flow);
  return {
    ledger: { head: headAfter(ledger.head, flow), flows: [...ledger.flows, flow], byFlowId },
    flow,
    applied: true,
  };
}

/**
 * The flow a request's flow id made before, when the request is the same one redelivered; throws
 * FundFlowConflictError when it differs (a bug upstream, never silently ignored).
 */
export function appliedBefore(existing: FundFlow, request: FundFlowRequest): FundFlow {
  assert(existing.flowId === request.flowId, "a request is compared with its own flow id's flow");
  if (!sameRequest(existing, request)) {
    throw new FundFlowConflictError(
      `flow ${request.flowId} was applied as ${existing.cause} ${existing.requested.toFixed()} ` +
        `${existing.currency}; now asked as ${request.cause} ${request.amount.toFixed()} ${request.currency}`,
    );
  }
  return existing;
}

/**
 * Rebuilds a ledger from its stored flows and checks every invariant: sequence 1..n without gaps, distinct
 * flow ids, each balanceAfter the previous plus the amount, never negative, a credit of what was requested,
 * a cover of exactly min(balance, requested). Throws InvariantError on the first break.
 */
export function replayFund(currency: string, scale: number, flows: readonly FundFlow[]): FundLedger {
  let head = emptyFund(currency, scale).head;
  const byFlowId = new Map<string, FundFlow>();
  for (const flow of flows) {
    assert(!byFlowId.has(flow.flowId), `flow id ${flow.flowId} appears once`);
    assert(flow.amount.decimalPlaces() <= scale, `flow ${flow.flowId} is at the currency scale`);
    const before = head.balance;
    head = headAfter(head, flow);
    const moved = causeDirection(flow.cause) === 1 ? flow.requested : min(before, flow.requested).negated();
    assert(flow.amount.equals(moved), `flow ${flow.flowId} moves what its cause allows`);
    assert(!flow.balanceAfter.isNegative(), `flow ${flow.flowId} leaves the fund at or above 0`);
    byFlowId.set(flow.flowId, flow);
  }
  return { head, flows: [...flows], byFlowId };
}

/** The item keys of one flow (see the header): partition, the head, the flow and its idempotency marker. */
export function fundItemKeys(
  currency: string,
  seq: number,
  flowId: string,
): { readonly pk: string; readonly balanceSk: string; readonly flowSk: string; readonly flowIdSk: string } {
  assert(Number.isInteger(seq) && seq >= 1 && seq <= MAX_FUND_SEQ, `a flow seq is 1..${MAX_FUND_SEQ}`);
  return {
    pk: `FUND#${currency}`,
    balanceSk: "BALANCE",
    flowSk: `FLOW#${String(seq).padStart(12, "0")}`,
    flowIdSk: `FLOWID#${flowId}`,
  };
}

function checkRequest(head: FundHead, request: FundFlowRequest): void {
  const problem = requestProblem(head, request);
  if (problem) throw new FundFlowError(`flow ${request.flowId}: ${problem}`);
}

function requestProblem(head: FundHead, request: FundFlowRequest): string | null {
  if (request.flowId.length === 0) return "a flow needs a flow id";
  if (request.currency !== head.currency) return `is in ${request.currency}, the fund in ${head.currency}`;
  if (!FUND_FLOW_CAUSES.includes(request.cause)) return `unknown cause ${String(request.cause)}`;
  if (!request.amount.greaterThan(ZERO)) return "the amount must be above 0";
  if (request.amount.decimalPlaces() > head.scale) {
    return `the amount ${request.amount.toFixed()} has more than ${head.scale} decimal places`;
  }
  if (head.seq >= MAX_FUND_SEQ) return "the ledger is full";
  return null;
}

function sameRequest(flow: FundFlow, request: FundFlowRequest): boolean {
  return (
    flow.currency === request.currency &&
    flow.cause === request.cause &&
    flow.requested.equals(request.amount) &&
    flow.accountId === request.accountId &&
    flow.sourceReference === request.sourceReference
  );
}
