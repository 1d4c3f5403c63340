/**
 * The margin-call state machine: one pure, deterministic function
 *
 *   transition(state, assessment, policy, event, now) → { next, effects }
 *
 * Effects are what the adapters must do, in order: notify, request a liquidation, record a loss, and append
 * to the audit log. See docs/state-machine.md for the graph and the invariants, each enforced here:
 *
 * 1. No liquidation without a call notice before it: `liquidate` asserts the account is CALLED, and the
 *    hard-floor path issues the call and then the liquidation notice, in that order, in one step. Every
 *    REQUEST_LIQUIDATION names the call notice's notificationId.
 * 2. No flapping: leaving WARNING needs the ratio at 1 + cushion + exitBuffer, and curing a call needs
 *    adjusted equity at the cure line (calls.ts `cureLine`), which is never below the call line.
 * 3. A deposit in flight pauses escalation at the deadline only when it is at least minimumCureAmount,
 *    and only for maxPauseSeconds. It never pauses the hard floor.
 * 4. Every change of status is recorded: each one appends exactly one AUDIT effect.
 * 5. Stale or diverging prices halt all escalation; after they recover, no liquidation request (first or
 *    retry) for haltGraceSeconds. Settling a liquidation on a final execution report is not escalation and
 *    goes on during a halt.
 *
 * transition() does not throw on a state that the snapshot's call-state schema accepts and an assessment
 * made by `assess`.
 */
import { type CallSizing, type CureOption, cureLine, type LiquidationPlan } from "./calls.ts";
import { ONE, quantize, Rounding, toFixedString, toPlainString, ZERO } from "./money.ts";
import type { Policy } from "./policy.ts";
import type { PriceStatus } from "./prices.ts";
import { marginRatio, ratioBelow, type Valuation } from "./valuation.ts";

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

export interface OpenCall {
  readonly callId: string;
  /** The notificationId of this call's NOTIFY CALL: every REQUEST_LIQUIDATION of the call carries it. */
  readonly callNotificationId: string;
  readonly issuedAt: string;
  readonly deadlineAt: string;
  /** The amount called, at the currency scale. */
  readonly amountDue: string;
  readonly remindersSent: number;
  readonly liquidationAttempts: number;
  /** The latest request, `${callId}:liquidation:${liquidationAttempts}`. */
  readonly liquidationRequestId: string | null;
  readonly liquidationRequestedAt: string | null;
  /**
   * When the engine gave up waiting: maxAttempts requests sent and none finally filled retrySeconds after
   * the last. The account stays LIQUIDATING for an operator; a final report still settles it.
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
  readonly halt: { readonly since: string; readonly reason: string } | null;
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
    };

export type NoticeKind =
  | "WARNING"
  | "CALL"
  | "REMINDER"
  | "CURED"
  | "LIQUIDATION_NOTICE"
  | "LIQUIDATION_COMPLETE";

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
    }
  | {
      readonly kind: "REQUEST_LIQUIDATION";
      readonly requestId: string;
      readonly accountId: string;
      readonly callId: string;
      /** The call notice's notificationId: the dispatcher holds the request until that notice is sent. */
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
  move(to: Status, reason: string, changes: Partial<CallState> = {}): void {
    const from = this.state.status;
    this.state = { ...this.state, ...changes, status: to, since: this.now };
    this.audit(from, to, reason);
  }

  /** Records an event that changes no status (a reminder, a halt, a retry). */
  audit(from: Status, to: Status, reason: string): void {
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
    });
  }

  notify(notice: NoticeKind): void {
    const call = this.state.call;
    const ratio = marginRatio(this.assessment.valuation);
    const open = notice === "CALL" || notice === "REMINDER";
    this.effects.push({
      kind: "NOTIFY",
      notificationId: this.id(notice.toLowerCase()),
      notice,
      accountId: this.initial.accountId,
      callId: notice === "WARNING" ? null : (call?.callId ?? null),
      amountDue: open || notice === "LIQUIDATION_NOTICE" ? (call?.amountDue ?? null) : null,
      deadlineAt: open ? (call?.deadlineAt ?? null) : null,
      marginRatio: ratio ? toPlainString(ratio) : null,
      cureOptions: open || notice === "WARNING" ? this.assessment.cureOptions : [],
      loss: notice === "LIQUIDATION_COMPLETE" ? this.state.loss : null,
    });
  }

  build(): Step {
    if (this.effects.length === 0 && this.state === this.initial) return { next: this.initial, effects: [] };
    return { next: { ...this.state, version: this.nextVersion }, effects: this.effects };
  }
}

const addSeconds = (iso: string, seconds: number): string =>
  new Date(Date.parse(iso) + seconds * 1000).toISOString();
const atOrAfter = (now: string, instant: string): boolean => Date.parse(now) >= Date.parse(instant);

const requestIdOf = (callId: string, attempt: number): string => `${callId}:liquidation:${attempt}`;

function issueCall(step: StepBuilder, reason: string): void {
  const { policy, now } = step;
  const callsIssued = step.state.callsIssued + 1;
  step.move("CALLED", reason, { callsIssued, loss: null });
  const call: OpenCall = {
    callId: `${step.initial.accountId}:call:${callsIssued}`,
    // The NOTIFY CALL is the next effect, so this is its notificationId.
    callNotificationId: step.id("call"),
    issuedAt: now,
    deadlineAt: addSeconds(now, policy.curePeriodSeconds),
    amountDue: toFixedString(step.assessment.sizing.amount, policy.currencyScale, Rounding.UP),
    remindersSent: 0,
    liquidationAttempts: 0,
    liquidationRequestId: null,
    liquidationRequestedAt: null,
    liquidationExhaustedAt: null,
  };
  step.state = { ...step.state, call };
  step.notify("CALL");
}

/** Escalates a CALLED account. Invariant 1: a call notice was issued before, always. */
function liquidate(step: StepBuilder, reason: "DEADLINE" | "HARD_FLOOR"): void {
  const call = step.state.call;
  if (step.state.status !== "CALLED" || !call) {
    throw new Error(
      `invariant: liquidation of ${step.initial.accountId} without a call (status ${step.state.status})`,
    );
  }
  // `assess` plans whenever there is a shortfall, and an uncured call always has one (cureLine ≤ target).
  // A hand-made assessment without a plan still liquidates, with an empty plan that restores nothing.
  const plan = step.assessment.liquidationPlan ?? { steps: [], restoresTarget: false };
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
      },
    },
  );
  step.notify("LIQUIDATION_NOTICE");
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

function inGracePeriod(step: StepBuilder): boolean {
  const resumedAt = step.state.resumedAt;
  return resumedAt !== null && !atOrAfter(step.now, addSeconds(resumedAt, step.policy.haltGraceSeconds));
}

/** From a settled status (HEALTHY, WARNING, CURED, LIQUIDATED): call, warn, or clear. */
function classify(step: StepBuilder): void {
  const { valuation, sizing } = step.assessment;
  const { policy } = step;
  const status = step.state.status;
  if (sizing.inBreach && sizing.amount.greaterThan(ZERO)) {
    issueCall(step, "margin ratio below 1");
    if (ratioBelow(valuation, policy.hardFloorRatio) && !inGracePeriod(step)) liquidate(step, "HARD_FLOOR");
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

function whileCalled(step: StepBuilder, call: OpenCall): void {
  const { valuation } = step.assessment;
  const { policy, now } = step;
  if (valuation.adjustedEquity.greaterThanOrEqualTo(cureLine(valuation, policy))) {
    step.move("CURED", "adjusted equity at or above the cure line");
    step.notify("CURED");
    return;
  }
  if (ratioBelow(valuation, policy.hardFloorRatio) && !inGracePeriod(step)) {
    liquidate(step, "HARD_FLOOR");
    return;
  }
  if (atOrAfter(now, call.deadlineAt)) {
    const pauses =
      valuation.pendingDeposits.greaterThanOrEqualTo(policy.minimumCureAmount) &&
      valuation.pendingDeposits.greaterThan(ZERO) &&
      !atOrAfter(now, addSeconds(call.deadlineAt, policy.maxPauseSeconds));
    if (!pauses && !inGracePeriod(step)) liquidate(step, "DEADLINE");
    return;
  }
  const due = policy.reminderOffsetsSeconds.filter((offset) =>
    atOrAfter(now, addSeconds(call.issuedAt, offset)),
  ).length;
  if (due > call.remindersSent) {
    step.state = { ...step.state, call: { ...call, remindersSent: due } };
    step.audit("CALLED", "CALLED", `reminder ${due} of ${policy.reminderOffsetsSeconds.length}`);
    step.notify("REMINDER");
  }
}

/** A final report on any request this call made (attempts 1 to liquidationAttempts) settles it. */
function settlesLiquidation(event: EngineEvent, call: OpenCall): boolean {
  if (event.type !== "EXECUTION_REPORT" || !event.final) return false;
  const prefix = `${call.callId}:liquidation:`;
  if (!event.requestId.startsWith(prefix)) return false;
  const attempt = event.requestId.slice(prefix.length);
  return /^[1-9]\d{0,5}$/.test(attempt) && Number(attempt) <= call.liquidationAttempts;
}

/**
 * While LIQUIDATING: settle on a final report, else retry, else flag the liquidation as exhausted. During a
 * price halt (`halted`) only settling and flagging happen: neither is escalation.
 */
function whileLiquidating(step: StepBuilder, call: OpenCall, halted: boolean): void {
  const { event, policy, now } = step;
  if (settlesLiquidation(event, call)) {
    const equity = step.assessment.valuation.equity;
    if (equity.isNegative()) {
      const loss = toFixedString(
        quantize(equity.negated(), policy.currencyScale, Rounding.UP),
        policy.currencyScale,
        Rounding.UP,
      );
      step.move("BAD_DEBT", "liquidation complete with negative equity", { loss });
      step.effects.push({
        kind: "RECORD_LOSS",
        accountId: step.initial.accountId,
        callId: call.callId,
        amount: loss,
      });
    } else {
      step.move("LIQUIDATED", "liquidation complete", { loss: null });
    }
    step.notify("LIQUIDATION_COMPLETE");
    return;
  }
  const requestedAt = call.liquidationRequestedAt;
  if (!requestedAt || !atOrAfter(now, addSeconds(requestedAt, policy.liquidationRetrySeconds))) return;
  if (call.liquidationAttempts < policy.liquidationMaxAttempts) {
    const plan = step.assessment.liquidationPlan;
    if (halted || !plan || inGracePeriod(step)) return;
    const attempt = call.liquidationAttempts + 1;
    const requestId = requestIdOf(call.callId, attempt);
    step.state = {
      ...step.state,
      call: {
        ...call,
        liquidationAttempts: attempt,
        liquidationRequestId: requestId,
        liquidationRequestedAt: now,
      },
    };
    step.audit(
      "LIQUIDATING",
      "LIQUIDATING",
      `no final fill after ${policy.liquidationRetrySeconds} s: attempt ${attempt}`,
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
      `liquidation exhausted: no final fill ${policy.liquidationRetrySeconds} s after attempt ` +
        `${call.liquidationAttempts} of ${policy.liquidationMaxAttempts}; operator action needed`,
    );
  }
}

/** The transition function. Pure and deterministic: the same inputs always give the same step. */
export function transition(
  state: CallState,
  assessment: Assessment,
  policy: Policy,
  event: EngineEvent,
  now: string,
): Step {
  const step = new StepBuilder(state, assessment, policy, event, now);
  const status = state.status;

  if (assessment.priceStatus !== "OK") {
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
    }
    if (status === "LIQUIDATING" && state.call) whileLiquidating(step, state.call, true);
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
