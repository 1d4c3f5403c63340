/**
 * The margin-call state machine: one pure, deterministic function
 *
 *   transition(state, assessment, policy, event, now, dispatch?) → { next, effects }
 *
 * Effects are what the adapters must do, in order: notify, request a liquidation, record a loss, and append
 * to the audit log. See docs/state-machine.md for the graph and the invariants, each enforced here:
 *
 * 1. No liquidation without a call notice before it: `liquidate` asserts the account is CALLED, and the
 *    hard-floor path issues the call and then the liquidation notice, in that order, in one step. Every
 *    REQUEST_LIQUIDATION names the call notice's notificationId.
 * 2. No flapping: leaving WARNING needs the ratio at 1 + cushion + exitBuffer, and curing a call needs
 *    adjusted equity at the cure line (calls.ts `cureLine`), which is never below the call line.
 * 3. A deposit in flight pauses escalation at the deadline only when it is at least the smaller of
 *    minimumCureAmount and the amount still due, and only for maxPauseSeconds. It never pauses the hard floor.
 * 6. Paying what you were told meets the call (`call.metBy`, docs/state-machine.md "How a call is met"): an
 *    account whose settled deposits since the call reach the amount first called is never liquidated on
 *    that call's deadline; if it is in breach again it gets a new call with its own deadline. Every closed
 *    call records how it was met (DEPOSIT, MARKET, LIQUIDATION, WAIVED), with the amounts.
 * 7. Every CALL, CALL_INCREASED, REMINDER and LIQUIDATION_NOTICE quotes what is due at that revaluation.
 * 8. The hard floor liquidates only when a revaluation hardFloorConfirmSeconds after the first one below it
 *    still finds the account there; a liquidation request never has an empty plan (nothing to sell is a
 *    bad-debt case for the operator); only a final report with something filled completes a liquidation.
 * 4. Every change of status is recorded: each one appends exactly one AUDIT effect.
 * 5. Stale or diverging prices halt all escalation; after they recover, no liquidation request (first or
 *    retry) for haltGraceSeconds. Settling a liquidation on a final execution report is not escalation and
 *    goes on during a halt.
 * 10. No liquidation request (first or retry) touches an asset whose circuit breaker is tripped
 *    (`pausedIn`, `holdForBreaker`); calls, notices and settling go on.
 *
 * transition() does not throw on a state that the snapshot's call-state schema accepts and an assessment
 * made by `assess`.
 */
import type { OperatorAlarm } from "./alarms.ts";
import { assert } from "./assert.ts";
import {
  type CallSizing,
  type CureOption,
  cureLine,
  type ExposureRef,
  type LiquidationPlan,
} from "./calls.ts";
import type { CapWait } from "./cascade-ledger.ts";
import {
  Dec,
  dec,
  ONE,
  quantize,
  Rounding,
  toExactString,
  toFixedString,
  toPlainString,
  ZERO,
} from "./money.ts";
import type { Policy } from "./policy.ts";
import type { PriceStatus } from "./prices.ts";
import { addSeconds, atOrAfter } from "./time.ts";
import { marginRatio, ratioBelow, type SettledDeposit, type Valuation } from "./valuation.ts";

export const STATUSES = [
  "HEALTHY",
  "WARNING",
  "CALLED",
  "CURED",
  "LIQUIDATING",
  "LIQUIDATED",
  "BAD_DEBT",
] as const;
export type Status = (typeof STATUSES)[number];

/** How a call was closed: paid, recovered by the market, liquidated, or waived below the MTA. */
export const CALL_MET = ["DEPOSIT", "MARKET", "LIQUIDATION", "WAIVED"] as const;
export type CallMet = (typeof CALL_MET)[number];

/** What one exposure sold (or bought back) over the call's liquidation, from the execution reports. */
export interface SoldLine {
  readonly target: ExposureRef;
  readonly side: "SELL" | "BUY";
  readonly quantity: string;
  /** Volume-weighted average fill price, at the asset's price scale (HALF_EVEN). */
  readonly averagePrice: string;
  readonly fee: string;
}

/** The record of a closed call: what the daily record of calls reports (FINRA Rule 4220 style). */
export interface CallClosure {
  readonly callId: string;
  readonly how: CallMet;
  readonly at: string;
  /** The amount of the CALL notice. */
  readonly amountCalled: string;
  /** What restored the target when it closed (the CALL notice's amount, raised by any CALL_INCREASED). */
  readonly amountDue: string;
  /** The payment that meets the call: the lowest a notice of the call asked for (OpenCall.paymentToMeet). */
  readonly paymentToMeet: string;
  /** Settled deposits credited to the call: those the engine had not seen when it issued the call. */
  readonly paid: string;
  /** WAIVED: the remainder forgiven, below the minimum transfer amount. */
  readonly waived: string | null;
  /** LIQUIDATION: what was sold. */
  readonly sold: readonly SoldLine[];
  /** LIQUIDATION into BAD_DEBT: the loss. */
  readonly loss: string | null;
}

export interface OpenCall {
  readonly callId: string;
  /** The notificationId of this call's NOTIFY CALL: every REQUEST_LIQUIDATION of the call carries it. */
  readonly callNotificationId: string;
  readonly issuedAt: string;
  readonly deadlineAt: string;
  /**
   * What restores the target, at the currency scale: the CALL notice's amount, raised by any
   * CALL_INCREASED (plus what was paid before the increase).
   */
  readonly amountDue: string;
  /** The CALL notice's amount, never changed. Absent in states written before it existed: amountDue. */
  readonly amountCalled?: string | undefined;
  /**
   * The total paid since the call that meets it: the lowest, over the call's notices, of what was paid when
   * the notice went out plus the amount it quoted. Paying what any notice said meets the call. Absent:
   * amountCalled.
   */
  readonly paymentToMeet?: string | undefined;
  /** When a revaluation first found the account below the hard floor; null when it is not. */
  readonly hardFloorSince?: string | null | undefined;
  /**
   * The settled deposits the engine had seen when it issued the call (settled within
   * PAYMENT_LOOKBACK_SECONDS of it): they are in the equity the call was sized on, so they never pay it,
   * whatever their `settledAt` says. Absent: none.
   */
  readonly priorDepositIds?: readonly string[] | undefined;
  /** The attempt whose final report filled nothing, while no later one went out; absent otherwise. */
  readonly liquidationEndedEmpty?: number | null | undefined;
  /**
   * When a request due for this call was first held back by the circuit breaker, while none has gone out
   * since; null or absent otherwise.
   */
  readonly liquidationPausedAt?: string | null | undefined;
  /**
   * When this call's first request, due, was first held back by the cascade caps (cascade-ledger.ts), while
   * it has not gone out since; null or absent otherwise.
   */
  readonly liquidationWaitingAt?: string | null | undefined;
  /** Why it waits (CapWait's reason), while `liquidationWaitingAt` is set: a new reason is recorded again. */
  readonly liquidationWaitingReason?: string | null | undefined;
  /** How the call was closed; null or absent while it is open. */
  readonly closure?: CallClosure | null | undefined;
  readonly remindersSent: number;
  readonly liquidationAttempts: number;
  /** The latest request, `${callId}:liquidation:${liquidationAttempts}`. */
  readonly liquidationRequestId: string | null;
  readonly liquidationRequestedAt: string | null;
  /**
   * When the engine gave up waiting: maxAttempts requests sent and none finally filled retrySeconds after
   * the last one's dispatch (`retryClockStart`). The account stays LIQUIDATING for an operator; a final
   * report still settles it.
   */
  readonly liquidationExhaustedAt: string | null;
}

export interface CallState {
  readonly accountId: string;
  readonly status: Status;
  /** Incremented by every step that changes anything; adapters write conditionally on it. */
  readonly version: number;
  /** When the current status was entered. */
  readonly since: string;
  /** The open call, or the last one while CURED, LIQUIDATING, LIQUIDATED or BAD_DEBT. */
  readonly call: OpenCall | null;
  readonly callsIssued: number;
  readonly halt: {
    readonly since: string;
    readonly reason: string;
    /** When the halt outlasted prices.haltAlarmSeconds and the operator was alarmed. */
    readonly alarmedAt?: string | undefined;
  } | null;
  /** When prices last recovered from a halt. */
  readonly resumedAt: string | null;
  /** The loss taken when the account ended in BAD_DEBT, at the currency scale. */
  readonly loss: string | null;
}

export function initialState(accountId: string, now: string): CallState {
  return {
    accountId,
    status: "HEALTHY",
    version: 0,
    since: now,
    call: null,
    callsIssued: 0,
    halt: null,
    resumedAt: null,
    loss: null,
  };
}

/** What the engine knows about the account at `now`: its valuation, prices, call sizing and options. */
export interface Assessment {
  readonly valuation: Valuation;
  readonly priceStatus: PriceStatus;
  readonly priceDetail: string;
  readonly sizing: CallSizing;
  /** Computed when the account is in breach or in the warning zone; empty otherwise. */
  readonly cureOptions: readonly CureOption[];
  /** Computed when adjusted equity is below the restore target (a shortfall); null otherwise. */
  readonly liquidationPlan: LiquidationPlan | null;
  /** Settled deposits of the account (in its currency): what pays a call. Omitted: none. */
  readonly settledDeposits?: readonly SettledDeposit[] | undefined;
  /**
   * The assets whose new liquidation requests the circuit breaker pauses, with when each pause began
   * (cascade.ts). Omitted: none paused, or not read because the step requests no liquidation.
   */
  readonly liquidationPauses?: ReadonlyMap<string, string> | undefined;
  /**
   * The cascade caps' verdict on the call's first request, when the engine read the cap ledger and the
   * request must wait (cascade-ledger.ts `admitOne`). Omitted: admitted, no caps, or not read.
   */
  readonly capWait?: CapWait | undefined;
}

/** One execution report of a liquidation request, as the execution system wrote it. */
export interface ExecutionFill {
  readonly reportId: string;
  readonly requestId: string;
  readonly target: ExposureRef;
  readonly side: "SELL" | "BUY";
  readonly filledQuantity: string;
  readonly averagePrice: string | null;
  readonly fee: string;
  readonly final: boolean;
}

/**
 * What the engine read of the current liquidation request's dispatch: the outbox relay sets `dispatchedAt`
 * on the request's Outbox item once it has put it on the bus (or claimed it, when the put's outcome was
 * uncertain). An input of the decision, kept in its replay snapshot. Absent, or read for another request:
 * unknown, and the retry counts from the commit (`liquidationRequestedAt`), as before dispatches were read.
 */
export interface LiquidationDispatch {
  /** The request it was read for: the call's liquidationRequestId at the read. */
  readonly requestId: string;
  /** When the relay put the request on the bus; null while it has not. */
  readonly dispatchedAt: string | null;
}

export type EngineEvent =
  | {
      readonly type: "REVALUE";
      /** What triggered it: an upstream write, a price tick, or the scheduled sweep. */
      readonly cause: "ACCOUNT_CHANGE" | "PRICE_TICK" | "SWEEP";
      readonly eventId: string;
    }
  | {
      readonly type: "EXECUTION_REPORT";
      readonly eventId: string;
      readonly requestId: string;
      /** The execution system has finished with this request. */
      readonly final: boolean;
      /**
       * Every report the account holds for the requests of this call, this one included: a final report
       * settles the liquidation only if something filled. Absent in events recorded before fills were
       * counted: such a final report settles, as it did then.
       */
      readonly fills?: readonly ExecutionFill[] | undefined;
    };

export const NOTICE_KINDS = [
  "WARNING",
  "CALL",
  "CALL_INCREASED",
  "REMINDER",
  "CURED",
  "LIQUIDATION_NOTICE",
  "LIQUIDATION_COMPLETE",
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export type Effect =
  | {
      readonly kind: "NOTIFY";
      readonly notificationId: string;
      readonly notice: NoticeKind;
      readonly accountId: string;
      readonly callId: string | null;
      readonly amountDue: string | null;
      readonly deadlineAt: string | null;
      readonly marginRatio: string | null;
      readonly cureOptions: readonly CureOption[];
      /** LIQUIDATION_COMPLETE into BAD_DEBT: the loss, at the currency scale. Null otherwise. */
      readonly loss: string | null;
      /** LIQUIDATION_NOTICE: why, the deadline passed or the hard floor. */
      readonly reason?: "DEADLINE" | "HARD_FLOOR";
      /** CURED: how the call was met. */
      readonly met?: CallMet;
      /** CALL_INCREASED: what restores the account now, and what it took when last told. */
      readonly restoreAmount?: string;
      readonly previousAmountDue?: string;
      /** LIQUIDATION_COMPLETE: what was sold. */
      readonly sold?: readonly SoldLine[];
    }
  | {
      readonly kind: "REQUEST_LIQUIDATION";
      readonly requestId: string;
      readonly accountId: string;
      readonly callId: string;
      /** The call notice's notificationId: the outbox relay holds the request until that notice has its outcome. */
      readonly callNotificationId: string;
      readonly attempt: number;
      readonly reason: "DEADLINE" | "HARD_FLOOR" | "RETRY";
      readonly plan: LiquidationPlan;
    }
  | {
      readonly kind: "RECORD_LOSS";
      readonly accountId: string;
      readonly callId: string | null;
      readonly amount: string;
      /** The open position the loss waterfall's ADL can close (`bankruptPosition`); absent when none is open. */
      readonly position?: LossPosition;
    }
  | {
      /** A liquidation settled under a fee rate above 0: the fee it earned, for the insurance fund. */
      readonly kind: "FUND_FEE";
      /** `<requestId>:fee`: the fund flow's id, so the fee is credited once however often it is relayed. */
      readonly flowId: string;
      readonly accountId: string;
      readonly callId: string;
      /** The call's latest liquidation request: the one its fills settled. */
      readonly requestId: string;
      readonly currency: string;
      /** Σ filled quantity × average price × feeRate over the call's fills, DOWN at the currency scale. */
      readonly amount: string;
    }
  | {
      readonly kind: "AUDIT";
      readonly auditId: string;
      readonly accountId: string;
      readonly from: Status;
      readonly to: Status;
      readonly reason: string;
      readonly at: string;
      readonly eventId: string;
      readonly figures: AuditFigures;
      /** A call closed in this step: how it was met, with the amounts. */
      readonly closure?: CallClosure;
      /** A condition that needs an operator, raised as an alarm by the handlers. */
      readonly alarm?: OperatorAlarm;
    };

export interface AuditFigures {
  readonly equity: string;
  readonly adjustedEquity: string;
  readonly maintenance: string;
  readonly marginRatio: string | null;
  readonly callAmount: string;
  readonly priceStatus: PriceStatus;
  readonly policy: string;
}

export interface Step {
  readonly next: CallState;
  readonly effects: readonly Effect[];
}

/**
 * The bankrupt account's largest open position (by |notional| at the mark, ties to the instrument, ascending)
 * when its loss is recorded: what the loss waterfall's ADL closes against the opposite side
 * (loss-waterfall.ts). Its bankruptcy price is where closing the whole position leaves the account's equity at
 * 0: mark + loss / size, so above the mark for a long and below it for a short, rounded away from the mark at
 * the underlying's price scale (closing it all there covers at least the loss). Decimal strings.
 */
export interface LossPosition {
  readonly instrument: string;
  readonly side: "LONG" | "SHORT";
  /** |size|, at the instrument's quantity scale. */
  readonly quantity: string;
  readonly quantityScale: number;
  readonly markPrice: string;
  readonly bankruptcyPrice: string;
}

class StepBuilder {
  state: CallState;
  readonly effects: Effect[] = [];
  private readonly nextVersion: number;

  constructor(
    readonly initial: CallState,
    readonly assessment: Assessment,
    readonly policy: Policy,
    readonly event: EngineEvent,
    readonly now: string,
    readonly dispatch: LiquidationDispatch | undefined,
  ) {
    this.state = initial;
    this.nextVersion = initial.version + 1;
  }

  /** Deterministic ids: the same input state and event always give the same ids. Names the next effect. */
  id(suffix: string): string {
    return `${this.initial.accountId}:v${this.nextVersion}:${this.effects.length}:${suffix}`;
  }

  figures(): AuditFigures {
    const { valuation, sizing } = this.assessment;
    const scale = this.policy.currencyScale;
    const ratio = marginRatio(valuation);
    return {
      equity: toFixedString(valuation.equity, scale, Rounding.HALF_EVEN),
      adjustedEquity: toFixedString(valuation.adjustedEquity, scale, Rounding.HALF_EVEN),
      maintenance: toFixedString(valuation.maintenance, scale, Rounding.HALF_EVEN),
      marginRatio: ratio ? toPlainString(ratio) : null,
      callAmount: toFixedString(sizing.amount, scale, Rounding.UP),
      priceStatus: this.assessment.priceStatus,
      policy: `${this.policy.policyId}@${this.policy.version}`,
    };
  }

  /** Changes status and records it: one AUDIT effect per change (invariant 4). */
  move(to: Status, reason: string, changes: Partial<CallState> = {}, extra: AuditExtra = {}): void {
    const from = this.state.status;
    this.state = { ...this.state, ...changes, status: to, since: this.now };
    this.audit(from, to, reason, extra);
  }

  /** Records an event that changes no status (a reminder, a halt, a retry). */
  audit(from: Status, to: Status, reason: string, extra: AuditExtra = {}): void {
    this.effects.push({
      kind: "AUDIT",
      auditId: this.id("audit"),
      accountId: this.initial.accountId,
      from,
      to,
      reason,
      at: this.now,
      eventId: this.event.eventId,
      figures: this.figures(),
      ...extra,
    });
  }

  notify(notice: NoticeKind, extra: NoticeExtra = {}): void {
    const call = this.state.call;
    const ratio = marginRatio(this.assessment.valuation);
    const open = notice === "CALL" || notice === "REMINDER" || notice === "CALL_INCREASED";
    const quotesDue = open || notice === "LIQUIDATION_NOTICE";
    this.effects.push({
      kind: "NOTIFY",
      notificationId: this.id(notice.toLowerCase()),
      notice,
      accountId: this.initial.accountId,
      callId: notice === "WARNING" ? null : (call?.callId ?? null),
      amountDue: quotesDue && call ? (extra.amountDue ?? call.amountDue) : null,
      deadlineAt: open ? (call?.deadlineAt ?? null) : null,
      marginRatio: ratio ? toPlainString(ratio) : null,
      cureOptions: open || notice === "WARNING" ? this.cureOptionsFor(notice, extra.amountDue) : [],
      loss: notice === "LIQUIDATION_COMPLETE" ? this.state.loss : null,
      ...(extra.reason ? { reason: extra.reason } : {}),
      ...(extra.met ? { met: extra.met } : {}),
      ...(extra.previousAmountDue ? { previousAmountDue: extra.previousAmountDue } : {}),
      ...(extra.restoreAmount ? { restoreAmount: extra.restoreAmount } : {}),
      ...(extra.sold ? { sold: extra.sold } : {}),
    });
  }

  /**
   * The ways to cure a notice lists. A CALL or REMINDER offers, as its deposit, the amount it quotes: paying
   * it meets the call. Reducing a holding restores the target, which meets it too. A CALL_INCREASED and a
   * WARNING offer what restores the account.
   */
  private cureOptionsFor(notice: NoticeKind, quoted: string | undefined): readonly CureOption[] {
    const options = this.assessment.cureOptions;
    if ((notice !== "CALL" && notice !== "REMINDER") || quoted === undefined) return options;
    return options.map((option) => (option.kind === "DEPOSIT" ? { ...option, amount: dec(quoted) } : option));
  }

  build(): Step {
    if (this.effects.length === 0 && this.state === this.initial) return { next: this.initial, effects: [] };
    return { next: { ...this.state, version: this.nextVersion }, effects: this.effects };
  }
}

interface AuditExtra {
  readonly closure?: CallClosure;
  readonly alarm?: OperatorAlarm;
}

interface NoticeExtra {
  /** The amount quoted, when it is not the call's amountDue: what is due now. */
  readonly amountDue?: string;
  readonly restoreAmount?: string;
  readonly reason?: "DEADLINE" | "HARD_FLOOR";
  readonly met?: CallMet;
  readonly previousAmountDue?: string;
  readonly sold?: readonly SoldLine[];
}

const requestIdOf = (callId: string, attempt: number): string => `${callId}:liquidation:${attempt}`;

/**
 * How far before a call a deposit's `settledAt` may lie and still pay it: a ledger's clock or value date
 * may be behind the engine's. A deposit pays a call when the engine had not seen it at the call's issue
 * (`priorDepositIds`), never by its timestamp alone, so neither a re-stamped deposit nor a back-dated one
 * is counted wrongly. One day, so the deposits any decision needs stay few (and in its replay snapshot).
 */
export const PAYMENT_LOOKBACK_SECONDS = 86_400;

/** The settled deposits that can pay a call issued at `issuedAt` (those the engine saw then excepted). */
export function creditableDeposits(
  deposits: readonly SettledDeposit[],
  issuedAt: string,
): readonly SettledDeposit[] {
  const from = addSeconds(issuedAt, -PAYMENT_LOOKBACK_SECONDS);
  return deposits.filter((deposit) => atOrAfter(deposit.settledAt, from));
}

/** What an open call stands at, at one revaluation: the figures every notice and decision uses. */
export interface CallStanding {
  /** Settled deposits credited to the call: not seen when it was issued. */
  readonly paid: Dec;
  /** The CALL notice's amount. */
  readonly amountCalled: Dec;
  /** The total payment that meets the call: what the notices told the borrower (`paymentToMeet`). */
  readonly toMeet: Dec;
  /** toMeet − paid, at the currency scale, rounded up; zero once paid. */
  readonly remaining: Dec;
  /** The deposit that restores the target now, at the currency scale, rounded up; zero at the target. */
  readonly toRestore: Dec;
  /** What the notices quote: the deposit that, at unchanged prices, meets the call under the policy's mode. */
  readonly dueNow: Dec;
  /** Paid what a notice said: the call is met (at once, or under EQUITY at the deadline or in breach). */
  readonly paidInFull: boolean;
  readonly atCureLine: boolean;
}

/**
 * Where an open call stands now. The amount due now depends on how the policy meets calls: under PAYMENT,
 * the rest of what the notices asked; under EQUITY and EITHER, that or the deposit that restores the target
 * now, whichever is smaller. Paid in full, nothing more is due.
 */
export function callStanding(call: OpenCall, assessment: Assessment, policy: Policy): CallStanding {
  const scale = policy.currencyScale;
  let paid = ZERO;
  const prior = new Set(call.priorDepositIds ?? []);
  for (const deposit of creditableDeposits(assessment.settledDeposits ?? [], call.issuedAt)) {
    if (!prior.has(deposit.depositId)) paid = paid.plus(deposit.amount);
  }
  const amountCalled = dec(call.amountCalled ?? call.amountDue);
  const toMeet = call.paymentToMeet === undefined ? amountCalled : dec(call.paymentToMeet);
  const owed = toMeet.minus(paid);
  const remaining = owed.greaterThan(ZERO) ? quantize(owed, scale, Rounding.UP) : ZERO;
  const shortfall = assessment.sizing.shortfall;
  const toRestore = shortfall.greaterThan(ZERO) ? quantize(shortfall, scale, Rounding.UP) : ZERO;
  return {
    paid,
    amountCalled,
    toMeet,
    remaining,
    toRestore,
    dueNow: policy.callMetBy === "PAYMENT" ? remaining : Dec.min(remaining, toRestore),
    paidInFull: remaining.isZero(),
    atCureLine: assessment.valuation.adjustedEquity.greaterThanOrEqualTo(
      cureLine(assessment.valuation, policy),
    ),
  };
}

const money = (step: StepBuilder, value: Dec): string =>
  toFixedString(value, step.policy.currencyScale, Rounding.UP);

/** An exact amount at the currency scale, or with all its places when it has more: never rounded. */
const exactMoney = (step: StepBuilder, value: Dec): string => toExactString(value, step.policy.currencyScale);

/** The record of a call closed now: how, and the amounts (a daily record of calls reports these). */
function closureOf(
  step: StepBuilder,
  call: OpenCall,
  how: CallMet,
  outcome: { readonly sold?: readonly SoldLine[]; readonly loss?: string | null } = {},
): CallClosure {
  const standing = callStanding(call, step.assessment, step.policy);
  return {
    callId: call.callId,
    how,
    at: step.now,
    amountCalled: money(step, standing.amountCalled),
    amountDue: call.amountDue,
    paymentToMeet: exactMoney(step, standing.toMeet),
    paid: exactMoney(step, standing.paid),
    waived: how === "WAIVED" ? money(step, standing.remaining) : null,
    sold: outcome.sold ?? [],
    loss: outcome.loss ?? null,
  };
}

function issueCall(step: StepBuilder, reason: string): void {
  const { policy, now } = step;
  const callsIssued = step.state.callsIssued + 1;
  step.move("CALLED", reason, { callsIssued, loss: null });
  const amount = money(step, step.assessment.sizing.amount);
  // The call is sized on equity that holds every deposit seen so far: none of them pays it.
  const prior = creditableDeposits(step.assessment.settledDeposits ?? [], now)
    .map((deposit) => deposit.depositId)
    .sort();
  const call: OpenCall = {
    callId: `${step.initial.accountId}:call:${callsIssued}`,
    // The NOTIFY CALL is the next effect, so this is its notificationId.
    callNotificationId: step.id("call"),
    issuedAt: now,
    deadlineAt: addSeconds(now, policy.curePeriodSeconds),
    amountDue: amount,
    amountCalled: amount,
    remindersSent: 0,
    liquidationAttempts: 0,
    liquidationRequestId: null,
    liquidationRequestedAt: null,
    liquidationExhaustedAt: null,
    hardFloorSince: null,
    closure: null,
    ...(prior.length ? { priorDepositIds: prior } : {}),
  };
  step.state = { ...step.state, call };
  step.notify("CALL");
}

/** Closes an open call that was met (or waived) and tells the borrower; CALLED → CURED. */
function closeCall(step: StepBuilder, call: OpenCall, how: CallMet, reason: string): void {
  const closure = closureOf(step, call, how);
  step.move("CURED", reason, { call: { ...call, closure, hardFloorSince: null } }, { closure });
  step.notify("CURED", { met: how });
}

/** The assets a plan's steps sell or buy: a holding's asset, a position's underlying. */
export function planAssets(plan: LiquidationPlan, policy: Policy): string[] {
  const assets = plan.steps.map((planned) =>
    planned.target.kind === "HOLDING"
      ? planned.target.asset
      : (policy.instruments.get(planned.target.instrument)?.underlying ?? planned.target.instrument),
  );
  return [...new Set(assets)].sort();
}

/** Invariant 10: the assets of the plan whose circuit breaker is tripped, sorted; empty: none. */
function pausedIn(step: StepBuilder, plan: LiquidationPlan): string[] {
  const pauses = step.assessment.liquidationPauses;
  if (!pauses?.size) return [];
  return planAssets(plan, step.policy).filter((asset) => pauses.has(asset));
}

/**
 * A request due now on a paused asset waits: the call stays as it is (CALLED, or LIQUIDATING with its
 * attempt outstanding). The first hold since the call's last request is recorded, once.
 */
function holdForBreaker(step: StepBuilder, paused: readonly string[]): void {
  const call = step.state.call;
  if (!call || call.liquidationPausedAt) return;
  const status = step.state.status;
  const since = paused.map((asset) => `${asset} since ${step.assessment.liquidationPauses?.get(asset)}`);
  step.state = { ...step.state, call: { ...call, liquidationPausedAt: step.now } };
  step.audit(status, status, `liquidation paused by the circuit breaker: ${since.join(", ")}`);
}

/**
 * A call's first request, due now, that the cascade caps hold back waits: the call stays CALLED, and is
 * asked again at each revaluation (the sweep's due-call pass takes it each minute: its deadline is past). The
 * first wait since the call was issued is recorded, and again whenever its reason changes; one that no
 * release of room can end (larger than a cap, or a full ledger) raises an alarm.
 */
function holdForCap(step: StepBuilder, wait: CapWait): void {
  const call = step.state.call;
  if (!call || (call.liquidationWaitingAt && call.liquidationWaitingReason === wait.reason)) return;
  const status = step.state.status;
  const on = [...wait.caps, ...wait.behindOn.map((cap) => `${cap} (held for a higher priority)`)];
  const stuck = wait.reason === "EXCEEDS_CAP" || wait.reason === "LEDGER_FULL";
  step.state = {
    ...step.state,
    call: {
      ...call,
      liquidationWaitingAt: call.liquidationWaitingAt ?? step.now,
      liquidationWaitingReason: wait.reason,
    },
  };
  step.audit(
    status,
    status,
    `liquidation waits for the cascade caps: ${wait.reason}${on.length ? ` on ${on.join(", ")}` : ""}, priority ${wait.priority} of ${wait.of}`,
    stuck ? { alarm: "LIQUIDATION_WAITS_ON_CAP" } : {},
  );
}

/**
 * Escalates a CALLED account. Invariant 1: a call notice was issued before, always. A plan with nothing to
 * sell is not sent: the account is a bad-debt case for the operator.
 */
function liquidate(step: StepBuilder, reason: "DEADLINE" | "HARD_FLOOR"): void {
  const call = step.state.call;
  if (step.state.status !== "CALLED" || !call) {
    throw new Error(
      `invariant: liquidation of ${step.initial.accountId} without a call (status ${step.state.status})`,
    );
  }
  const plan = step.assessment.liquidationPlan;
  if (!plan || plan.steps.length === 0) {
    nothingToSell(step, call);
    return;
  }
  const paused = pausedIn(step, plan);
  if (paused.length > 0) {
    holdForBreaker(step, paused);
    return;
  }
  const wait = step.assessment.capWait;
  if (wait) {
    holdForCap(step, wait);
    return;
  }
  const dueNow = callStanding(call, step.assessment, step.policy).dueNow;
  const requestId = requestIdOf(call.callId, 1);
  step.move(
    "LIQUIDATING",
    reason === "HARD_FLOOR" ? "margin ratio below the hard floor" : "call not met by the deadline",
    {
      call: {
        ...call,
        liquidationAttempts: 1,
        liquidationRequestId: requestId,
        liquidationRequestedAt: step.now,
        liquidationExhaustedAt: null,
        liquidationPausedAt: null,
        liquidationWaitingAt: null,
        liquidationWaitingReason: null,
      },
    },
  );
  step.notify("LIQUIDATION_NOTICE", { amountDue: money(step, dueNow), reason });
  step.effects.push({
    kind: "REQUEST_LIQUIDATION",
    requestId,
    accountId: step.initial.accountId,
    callId: call.callId,
    callNotificationId: call.callNotificationId,
    attempt: 1,
    reason,
    plan,
  });
}

/** The loss on negative equity, rounded up to the currency scale; null when equity is not negative. */
function lossOf(step: StepBuilder): string | null {
  const equity = step.assessment.valuation.equity;
  if (!equity.isNegative()) return null;
  return money(step, quantize(equity.negated(), step.policy.currencyScale, Rounding.UP));
}

function recordLoss(step: StepBuilder, call: OpenCall, loss: string): void {
  const position = bankruptPosition(step, dec(loss));
  step.effects.push({
    kind: "RECORD_LOSS",
    accountId: step.initial.accountId,
    callId: call.callId,
    amount: loss,
    ...(position ? { position } : {}),
  });
}

/** The position ADL can close for a loss (LossPosition); null when none is open or none can cover it. */
function bankruptPosition(step: StepBuilder, loss: Dec): LossPosition | null {
  const open = step.assessment.valuation.lines.filter(
    (line) => line.kind === "POSITION" && !line.quantity.isZero() && line.price.greaterThan(ZERO),
  );
  open.sort((a, b) => b.value.abs().comparedTo(a.value.abs()) || (a.name < b.name ? -1 : 1));
  const largest = open[0];
  const instrument = largest ? step.policy.instruments.get(largest.name) : undefined;
  const asset = largest ? step.policy.assets.get(largest.asset) : undefined;
  if (!largest || !instrument || !asset) return null;
  const long = largest.quantity.greaterThan(ZERO);
  const bankruptcyPrice = quantize(
    largest.price.plus(loss.dividedBy(largest.quantity)),
    asset.priceScale,
    long ? Rounding.UP : Rounding.DOWN,
  );
  // A short whose loss is more than its whole notional has no bankruptcy price above 0: ADL cannot cover it.
  if (!bankruptcyPrice.greaterThan(ZERO)) return null;
  return {
    instrument: largest.name,
    side: long ? "LONG" : "SHORT",
    quantity: toPlainString(largest.quantity.abs()),
    quantityScale: instrument.quantityScale,
    markPrice: toPlainString(largest.price),
    bankruptcyPrice: toPlainString(bankruptcyPrice),
  };
}

function nothingToSell(step: StepBuilder, call: OpenCall): void {
  const loss = lossOf(step);
  const closure = closureOf(step, call, "LIQUIDATION", { loss });
  step.move(
    "BAD_DEBT",
    "nothing to sell: the shortfall is a bad-debt case for the operator",
    { call: { ...call, closure }, loss },
    { closure, alarm: "NOTHING_TO_SELL" },
  );
  if (loss) recordLoss(step, call, loss);
}

function inGracePeriod(step: StepBuilder): boolean {
  const resumedAt = step.state.resumedAt;
  return resumedAt !== null && !atOrAfter(step.now, addSeconds(resumedAt, step.policy.haltGraceSeconds));
}

/** Below the hard floor: liquidate once a revaluation hardFloorConfirmSeconds after the first confirms it. */
function hardFloor(step: StepBuilder): void {
  const call = step.state.call;
  if (!call || inGracePeriod(step)) return;
  const since = call.hardFloorSince ?? null;
  if (since !== null && atOrAfter(step.now, addSeconds(since, step.policy.hardFloorConfirmSeconds))) {
    liquidate(step, "HARD_FLOOR");
    return;
  }
  if (step.policy.hardFloorConfirmSeconds === 0) {
    liquidate(step, "HARD_FLOOR");
    return;
  }
  if (since === null) {
    step.state = { ...step.state, call: { ...call, hardFloorSince: step.now } };
    step.audit(
      "CALLED",
      "CALLED",
      `margin ratio below the hard floor: liquidation if still below at ${addSeconds(step.now, step.policy.hardFloorConfirmSeconds)}`,
    );
  }
}

/** From a settled status (HEALTHY, WARNING, CURED, LIQUIDATED): call, warn, or clear. */
function classify(step: StepBuilder): void {
  const { valuation, sizing } = step.assessment;
  const { policy } = step;
  const status = step.state.status;
  if (justPaid(step)) return;
  if (sizing.inBreach && sizing.amount.greaterThan(ZERO)) {
    issueCall(step, "margin ratio below 1");
    if (ratioBelow(valuation, policy.hardFloorRatio)) hardFloor(step);
    return;
  }
  const inWarningZone = ratioBelow(valuation, ONE.plus(policy.warningCushion));
  const clearsWarning = !ratioBelow(valuation, ONE.plus(policy.warningCushion).plus(policy.exitBuffer));
  if (status === "WARNING") {
    if (clearsWarning) step.move("HEALTHY", "margin ratio above the warning line plus the exit buffer");
    return;
  }
  if (inWarningZone || sizing.inBreach) {
    step.move(
      "WARNING",
      sizing.belowMinimumTransfer
        ? "in breach, below the minimum transfer amount"
        : "margin ratio within the warning cushion",
    );
    step.notify("WARNING");
    return;
  }
  if (status !== "HEALTHY") {
    if (clearsWarning) step.move("HEALTHY", "margin ratio above the warning line plus the exit buffer");
    else step.move("WARNING", "margin ratio within the exit buffer of the warning line");
  }
}

/** Closes the call if it is met now; true when it did. A met call in breach again gets a new call. */
function meetCall(step: StepBuilder, call: OpenCall, atDeadline: boolean): boolean {
  const { policy } = step;
  const { sizing } = step.assessment;
  const standing = callStanding(call, step.assessment, policy);
  const mode = policy.callMetBy;
  let how: CallMet | null = null;
  let reason = "";
  if (standing.paidInFull && (mode !== "EQUITY" || sizing.inBreach || atDeadline)) {
    // Paid what a notice asked: met. In breach again, a new call (its own notice and deadline) follows
    // in this step. Under EQUITY, out of breach, the call waits for its deadline and asks nothing more.
    how = "DEPOSIT";
    reason = "settled deposits since the call reach what its notices asked";
  } else if (standing.atCureLine && (mode !== "PAYMENT" || atDeadline)) {
    how = standing.paidInFull ? "DEPOSIT" : "MARKET";
    reason = "adjusted equity at or above the cure line";
  } else if (atDeadline && !sizing.inBreach && standing.remaining.lessThan(policy.minimumTransferAmount)) {
    how = "WAIVED";
    reason = "out of breach with less than the minimum transfer amount still due: waived";
  }
  if (how === null) return false;
  closeCall(step, call, how, reason);
  // Met by a deposit yet in breach: a new call, once a revaluation hardFloorConfirmSeconds later still finds
  // the account in breach (a settlement's record written before its cash would otherwise call it again).
  if (how !== "DEPOSIT" || step.policy.hardFloorConfirmSeconds === 0) {
    if (sizing.inBreach && sizing.amount.greaterThan(ZERO)) classify(step);
  }
  return true;
}

/** A call met by a deposit this recently is not followed by a new one yet (see meetCall). */
function justPaid(step: StepBuilder): boolean {
  const closure = step.state.status === "CURED" ? step.state.call?.closure : null;
  return (
    closure?.how === "DEPOSIT" &&
    !atOrAfter(step.now, addSeconds(closure.at, step.policy.hardFloorConfirmSeconds))
  );
}

function whileCalled(step: StepBuilder, call: OpenCall): void {
  const { valuation, sizing } = step.assessment;
  const { policy, now } = step;
  const atDeadline = atOrAfter(now, call.deadlineAt);
  if (meetCall(step, call, atDeadline)) return;
  if (ratioBelow(valuation, policy.hardFloorRatio)) {
    hardFloor(step);
    if (step.state.status !== "CALLED") return;
  } else if (call.hardFloorSince) {
    step.state = { ...step.state, call: { ...call, hardFloorSince: null } };
  }
  const current = step.state.call ?? call;
  const standing = callStanding(current, step.assessment, policy);
  if (atDeadline) {
    const pauseFloor = Dec.min(policy.minimumCureAmount, standing.dueNow);
    const pauses =
      valuation.pendingDeposits.greaterThanOrEqualTo(pauseFloor) &&
      valuation.pendingDeposits.greaterThan(ZERO) &&
      !atOrAfter(now, addSeconds(current.deadlineAt, policy.maxPauseSeconds));
    if (!pauses && !inGracePeriod(step)) liquidate(step, "DEADLINE");
    return;
  }
  // The deficit outgrew the call by more than the minimum transfer amount: the borrower is told what now
  // restores the account. The deadline does not move (Reg T: a market move does not extend it), and what
  // meets this call does not grow: a new deficit is a new call, with its own deadline, once this one is met.
  const restoring = Dec.max(ZERO, dec(current.amountDue).minus(standing.paid));
  if (
    sizing.amount.greaterThan(ZERO) &&
    sizing.amount.greaterThan(restoring.plus(policy.minimumTransferAmount))
  ) {
    step.state = {
      ...step.state,
      call: { ...current, amountDue: money(step, standing.paid.plus(sizing.amount)) },
    };
    step.audit(
      "CALLED",
      "CALLED",
      "call increased: the deficit grew past the amount called by more than the MTA",
    );
    quoteDue(step, "CALL_INCREASED", standing, {
      restoreAmount: money(step, sizing.amount),
      previousAmountDue: money(step, restoring),
    });
    return;
  }
  if (standing.dueNow.isZero()) return;
  const due = policy.reminderOffsetsSeconds.filter((offset) =>
    atOrAfter(now, addSeconds(current.issuedAt, offset)),
  ).length;
  if (due > current.remindersSent) {
    step.state = { ...step.state, call: { ...current, remindersSent: due } };
    step.audit("CALLED", "CALLED", `reminder ${due} of ${policy.reminderOffsetsSeconds.length}`);
    quoteDue(step, "REMINDER", standing);
  }
}

/**
 * Sends a notice quoting what is due now, and remembers it: paying what a notice said meets the call, so
 * the payment that meets it is the lowest of what was paid at each notice plus the amount it quoted.
 */
function quoteDue(
  step: StepBuilder,
  notice: "REMINDER" | "CALL_INCREASED",
  standing: CallStanding,
  extra: NoticeExtra = {},
): void {
  const call = step.state.call;
  if (!call) return;
  const promised = standing.paid.plus(standing.dueNow);
  const toMeet = Dec.min(standing.toMeet, promised);
  step.state = { ...step.state, call: { ...call, paymentToMeet: exactMoney(step, toMeet) } };
  step.notify(notice, { ...extra, amountDue: money(step, standing.dueNow) });
}

const callPrefix = (call: OpenCall): string => `${call.callId}:liquidation:`;

function attemptOf(requestId: string, call: OpenCall): number | null {
  const prefix = callPrefix(call);
  if (!requestId.startsWith(prefix)) return null;
  const attempt = requestId.slice(prefix.length);
  if (!/^[1-9]\d{0,5}$/.test(attempt)) return null;
  const number = Number(attempt);
  return number <= call.liquidationAttempts ? number : null;
}

/** What the call's reports say was sold, per exposure and side: quantities, average price and fees. */
export function soldLines(fills: readonly ExecutionFill[], call: OpenCall, policy: Policy): SoldLine[] {
  const lines = new Map<string, { line: SoldLine; quantity: Dec; notional: Dec; fee: Dec }>();
  for (const fill of fills) {
    if (attemptOf(fill.requestId, call) === null) continue;
    const name = fill.target.kind === "HOLDING" ? fill.target.asset : fill.target.instrument;
    const key = `${fill.target.kind}#${name}#${fill.side}`;
    const quantity = dec(fill.filledQuantity);
    const entry = lines.get(key) ?? {
      line: { target: fill.target, side: fill.side, quantity: "0", averagePrice: "0", fee: "0" },
      quantity: ZERO,
      notional: ZERO,
      fee: ZERO,
    };
    entry.quantity = entry.quantity.plus(quantity);
    if (fill.averagePrice !== null)
      entry.notional = entry.notional.plus(quantity.times(dec(fill.averagePrice)));
    entry.fee = entry.fee.plus(dec(fill.fee));
    lines.set(key, entry);
  }
  return [...lines.values()]
    .filter((entry) => entry.quantity.greaterThan(ZERO))
    .map(({ line, quantity, notional, fee }) => {
      const asset =
        line.target.kind === "HOLDING"
          ? line.target.asset
          : (policy.instruments.get(line.target.instrument)?.underlying ?? "");
      const priceScale = policy.assets.get(asset)?.priceScale ?? 8;
      return {
        ...line,
        quantity: toPlainString(quantity),
        averagePrice: toFixedString(notional.dividedBy(quantity), priceScale, Rounding.HALF_EVEN),
        fee: toPlainString(fee),
      };
    });
}

/** A final report on a request of this call: `settles` when anything filled (or fills were not counted). */
function finalReport(event: EngineEvent, call: OpenCall): { attempt: number; settles: boolean } | null {
  if (event.type !== "EXECUTION_REPORT" || !event.final) return null;
  const attempt = attemptOf(event.requestId, call);
  if (attempt === null) return null;
  if (event.fills === undefined) return { attempt, settles: true };
  const filled = event.fills.some(
    (fill) => attemptOf(fill.requestId, call) !== null && dec(fill.filledQuantity).greaterThan(ZERO),
  );
  return { attempt, settles: filled };
}

function settle(step: StepBuilder, call: OpenCall): void {
  const { event, policy } = step;
  const sold = event.type === "EXECUTION_REPORT" ? soldLines(event.fills ?? [], call, policy) : [];
  const loss = lossOf(step);
  const closure = closureOf(step, call, "LIQUIDATION", { sold, loss });
  const closed = { ...call, closure };
  if (loss) {
    step.move("BAD_DEBT", "liquidation complete with negative equity", { loss, call: closed }, { closure });
    recordLoss(step, call, loss);
  } else {
    step.move("LIQUIDATED", "liquidation complete", { loss: null, call: closed }, { closure });
  }
  step.notify("LIQUIDATION_COMPLETE", { sold });
  const fee = event.type === "EXECUTION_REPORT" ? liquidationFee(event.fills ?? [], call, policy) : ZERO;
  if (fee.greaterThan(ZERO)) {
    const requestId = requestIdOf(call.callId, call.liquidationAttempts);
    step.effects.push({
      kind: "FUND_FEE",
      flowId: `${requestId}:fee`,
      accountId: step.initial.accountId,
      callId: call.callId,
      requestId,
      currency: policy.currency,
      amount: money(step, fee),
    });
  }
}

/**
 * The fee a settled liquidation earned for the insurance fund: Σ filled quantity × average price × feeRate
 * over the fills of the call's requests, exact, then rounded DOWN at the currency scale, so the fund never
 * books more than the fee the planner sold for (a fill without a price adds nothing).
 */
export function liquidationFee(fills: readonly ExecutionFill[], call: OpenCall, policy: Policy): Dec {
  let notional = ZERO;
  for (const fill of fills) {
    if (attemptOf(fill.requestId, call) === null || fill.averagePrice === null) continue;
    notional = notional.plus(dec(fill.filledQuantity).times(dec(fill.averagePrice)));
  }
  const fee = quantize(notional.times(policy.liquidationFeeRate), policy.currencyScale, Rounding.DOWN);
  assert(!fee.isNegative(), "a liquidation fee is never negative");
  return fee;
}

/**
 * Where the current attempt's retry clock starts: its dispatch (never before its commit, whatever the
 * relay's clock says), or its commit when the dispatch is unknown; null while it is known not to have gone
 * out. A request still in the outbox has not reached the execution system, so it cannot have timed out
 * there: retrying it would only queue a second request with the same plan behind the first.
 */
export function retryClockStart(call: OpenCall, dispatch: LiquidationDispatch | undefined): string | null {
  const requestedAt = call.liquidationRequestedAt;
  if (requestedAt === null) return null;
  if (dispatch === undefined || dispatch.requestId !== call.liquidationRequestId) return requestedAt;
  const { dispatchedAt } = dispatch;
  if (dispatchedAt === null) return null;
  return atOrAfter(dispatchedAt, requestedAt) ? dispatchedAt : requestedAt;
}

/**
 * While LIQUIDATING: settle on a final report that filled something, else retry, else flag the liquidation
 * as exhausted. A final report with nothing filled ends its attempt: the next one goes out at once when it
 * may. Otherwise the attempt times out retrySeconds after its dispatch (`retryClockStart`), never while it
 * waits in the outbox. A retry plans on the account as upstream holds it now, its holdings and cash net of
 * every fill written with them: it asks only for what is still to be sold, and supersedes the attempt.
 * During a price halt (`halted`) only settling and flagging happen: neither is escalation.
 */
function whileLiquidating(step: StepBuilder, call: OpenCall, halted: boolean): void {
  const { policy, now } = step;
  const report = finalReport(step.event, call);
  if (report?.settles) {
    settle(step, call);
    return;
  }
  // The execution system is done with the latest attempt and filled nothing: no request is outstanding.
  const endedEmpty =
    (report !== null && report.attempt === call.liquidationAttempts) ||
    call.liquidationEndedEmpty === call.liquidationAttempts;
  const newlyEmpty = endedEmpty && call.liquidationEndedEmpty !== call.liquidationAttempts;
  const clockStart = retryClockStart(call, step.dispatch);
  const retryDue =
    endedEmpty ||
    (clockStart !== null && atOrAfter(now, addSeconds(clockStart, policy.liquidationRetrySeconds)));
  if (!retryDue) return;
  const plan = step.assessment.liquidationPlan;
  if (endedEmpty && !halted && !inGracePeriod(step)) {
    // Nothing is being sold, and nothing needs to be: the account recovered while it waited.
    if (!plan) {
      closeCall(step, call, "MARKET", "back at the restore target with no liquidation outstanding");
      return;
    }
    if (plan.steps.length === 0) {
      nothingToSell(step, call);
      return;
    }
  }
  if (call.liquidationAttempts < policy.liquidationMaxAttempts) {
    const paused = plan && !halted ? pausedIn(step, plan) : [];
    if (halted || !plan || plan.steps.length === 0 || inGracePeriod(step) || paused.length > 0) {
      if (newlyEmpty) {
        step.state = { ...step.state, call: { ...call, liquidationEndedEmpty: call.liquidationAttempts } };
        step.audit(
          "LIQUIDATING",
          "LIQUIDATING",
          `attempt ${call.liquidationAttempts} ended with nothing filled`,
        );
      }
      if (paused.length > 0 && !inGracePeriod(step)) holdForBreaker(step, paused);
      return;
    }
    const attempt = call.liquidationAttempts + 1;
    const requestId = requestIdOf(call.callId, attempt);
    step.state = {
      ...step.state,
      call: {
        ...call,
        liquidationAttempts: attempt,
        liquidationRequestId: requestId,
        liquidationRequestedAt: now,
        liquidationPausedAt: null,
      },
    };
    step.audit(
      "LIQUIDATING",
      "LIQUIDATING",
      endedEmpty
        ? `attempt ${call.liquidationAttempts} ended with nothing filled: attempt ${attempt}`
        : `no final fill after ${policy.liquidationRetrySeconds} s: attempt ${attempt}`,
    );
    step.effects.push({
      kind: "REQUEST_LIQUIDATION",
      requestId,
      accountId: step.initial.accountId,
      callId: call.callId,
      callNotificationId: call.callNotificationId,
      attempt,
      reason: "RETRY",
      plan,
    });
    return;
  }
  if (call.liquidationExhaustedAt === null) {
    step.state = { ...step.state, call: { ...call, liquidationExhaustedAt: now } };
    step.audit(
      "LIQUIDATING",
      "LIQUIDATING",
      `liquidation exhausted: no fill after attempt ${call.liquidationAttempts} of ` +
        `${policy.liquidationMaxAttempts}; operator action needed`,
      { alarm: "LIQUIDATION_EXHAUSTED" },
    );
  }
}

/** While prices are stale or diverging: record the halt once, and alarm the operator once it lasts too long. */
function whileHalted(step: StepBuilder): void {
  const { state, assessment, policy, now } = step;
  const status = state.status;
  if (!state.halt) {
    step.state = {
      ...state,
      halt: { since: now, reason: `${assessment.priceStatus}: ${assessment.priceDetail}` },
    };
    step.audit(
      status,
      status,
      `escalation halted: prices ${assessment.priceStatus.toLowerCase()} (${assessment.priceDetail})`,
    );
  } else if (!state.halt.alarmedAt && atOrAfter(now, addSeconds(state.halt.since, policy.haltAlarmSeconds))) {
    step.state = { ...state, halt: { ...state.halt, alarmedAt: now } };
    step.audit(
      status,
      status,
      `escalation halted for more than ${policy.haltAlarmSeconds} s: operator action needed`,
      { alarm: "PRICE_HALT_TOO_LONG" },
    );
  }
  if (status === "LIQUIDATING" && state.call) whileLiquidating(step, state.call, true);
}

/**
 * What every step guarantees, asserted on the way out: the version rises by exactly one when anything
 * changes; the AUDIT effects that change status form one unbroken chain from the old status to the new
 * (one per change); a liquidation is requested only for a call that was open before the step or issued,
 * with its notice, earlier in it.
 */
export function assertStep(initial: CallState, step: Step): Step {
  const { next, effects } = step;
  if (next === initial) {
    assert(effects.length === 0, `${initial.accountId}: a step with effects left the state as it was`);
    return step;
  }
  assert(
    next.version === initial.version + 1,
    `${initial.accountId}: version ${initial.version} → ${next.version}`,
  );
  let status = initial.status;
  let called = (initial.status === "CALLED" || initial.status === "LIQUIDATING") && initial.call !== null;
  const noticed = new Set(initial.call ? [initial.call.callNotificationId] : []);
  for (const effect of effects) {
    if (effect.kind === "AUDIT" && effect.from !== effect.to) {
      assert(
        effect.from === status,
        `${initial.accountId}: audit ${effect.from} → ${effect.to} after ${status}`,
      );
      status = effect.to;
      if (status === "CALLED") called = true;
    }
    if (effect.kind === "NOTIFY" && effect.notice === "CALL") noticed.add(effect.notificationId);
    if (effect.kind === "REQUEST_LIQUIDATION") {
      assert(called, `${initial.accountId}: liquidation ${effect.requestId} without a call`);
      assert(noticed.has(effect.callNotificationId), `${effect.requestId}: its call notice was never issued`);
    }
  }
  assert(
    status === next.status,
    `${initial.accountId}: audits end at ${status}, the state at ${next.status}`,
  );
  return step;
}

/**
 * The transition function. Pure and deterministic: the same inputs always give the same step. `dispatch` is
 * what the engine read of the current liquidation request's dispatch; omitted: unknown (see
 * LiquidationDispatch).
 */
export function transition(
  state: CallState,
  assessment: Assessment,
  policy: Policy,
  event: EngineEvent,
  now: string,
  dispatch?: LiquidationDispatch,
): Step {
  return assertStep(state, decideStep(state, assessment, policy, event, now, dispatch));
}

function decideStep(
  state: CallState,
  assessment: Assessment,
  policy: Policy,
  event: EngineEvent,
  now: string,
  dispatch: LiquidationDispatch | undefined,
): Step {
  const step = new StepBuilder(state, assessment, policy, event, now, dispatch);
  const status = state.status;

  if (assessment.priceStatus !== "OK") {
    whileHalted(step);
    return step.build();
  }
  if (state.halt) {
    step.state = { ...state, halt: null, resumedAt: now };
    step.audit(
      status,
      status,
      `prices recovered; no liquidation before ${addSeconds(now, policy.haltGraceSeconds)}`,
    );
  }

  switch (status) {
    case "HEALTHY":
    case "WARNING":
    case "CURED":
    case "LIQUIDATED":
      classify(step);
      break;
    case "CALLED":
      if (!state.call) throw new Error(`invariant: ${state.accountId} is CALLED without a call`);
      whileCalled(step, state.call);
      break;
    case "LIQUIDATING":
      if (!state.call) throw new Error(`invariant: ${state.accountId} is LIQUIDATING without a call`);
      whileLiquidating(step, state.call, false);
      break;
    case "BAD_DEBT":
      if (!assessment.valuation.equity.isNegative()) {
        step.move("HEALTHY", "equity restored after the loss");
        classify(step);
      }
      break;
    default: {
      const unreachable: never = status;
      throw new Error(`unknown status ${String(unreachable)}`);
    }
  }
  return step.build();
}

/**
 * The next moment at which time alone changes what `transition` decides for this state, or null when only a
 * price or account change can: a reminder, the deadline, the confirmation of a breach of the hard floor,
 * a new call after a deposit closure, a liquidation retry. The sweep revalues the account then (the
 * sparse byDeadline index holds it). A retry is due retrySeconds after the request's dispatch when
 * `dispatch` says when that was; otherwise retrySeconds after its commit, the earliest it can be due (a
 * request is dispatched after its commit), and the sweep looks again on every run until it is due.
 */
export function nextDueAt(state: CallState, policy: Policy, dispatch?: LiquidationDispatch): string | null {
  const call = state.call;
  if (!call) return null;
  if (state.status === "CALLED") {
    const reminders = policy.reminderOffsetsSeconds
      .slice(call.remindersSent)
      .map((offset) => addSeconds(call.issuedAt, offset));
    const confirm = call.hardFloorSince
      ? [addSeconds(call.hardFloorSince, policy.hardFloorConfirmSeconds)]
      : [];
    return [...reminders, ...confirm, call.deadlineAt].sort()[0] ?? call.deadlineAt;
  }
  if (state.status === "CURED" && call.closure?.how === "DEPOSIT" && policy.hardFloorConfirmSeconds > 0) {
    return addSeconds(call.closure.at, policy.hardFloorConfirmSeconds);
  }
  // An exhausted liquidation waits for an operator (or a late fill), not for the sweep.
  if (state.status === "LIQUIDATING" && call.liquidationRequestedAt && !call.liquidationExhaustedAt) {
    const from = retryClockStart(call, dispatch) ?? call.liquidationRequestedAt;
    return addSeconds(from, policy.liquidationRetrySeconds);
  }
  return null;
}
