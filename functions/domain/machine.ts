/**
 * The margin-call state machine: one pure, deterministic function
 *
 *   transition(state, assessment, policy, event, now) → { next, effects }
 *
 * Effects are what the adapters must do, in order: notify, request a liquidation, record a loss, and append
 * to the audit log. See docs/state-machine.md for the graph and the invariants, each enforced here:
 *
 * 1. No liquidation without a call notice before it: `liquidate` asserts the account is CALLED, and the
 *    hard-floor path issues the call and then the liquidation notice, in that order, in one step.
 * 2. No flapping: leaving WARNING needs the ratio at 1 + cushion + exitBuffer, and curing a call needs
 *    adjusted equity at requirement × (1 + exitBuffer) − threshold.
 * 3. A deposit in flight pauses escalation at the deadline only when it is at least minimumCureAmount,
 *    and only for maxPauseSeconds. It never pauses the hard floor.
 * 4. Every change of status is recorded: each one appends exactly one AUDIT effect.
 * 5. Stale or diverging prices halt all escalation; after they recover, no liquidation for haltGraceSeconds.
 */
import type { CallSizing, CureOption, LiquidationPlan } from "./calls.ts";
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
  readonly issuedAt: string;
  readonly deadlineAt: string;
  /** The amount called, at the currency scale. */
  readonly amountDue: string;
  readonly remindersSent: number;
  readonly liquidationAttempts: number;
  readonly liquidationRequestId: string | null;
  readonly liquidationRequestedAt: string | null;
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
  /** Computed when the account is in breach; null otherwise. */
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

export type NoticeKind = "WARNING" | "CALL" | "REMINDER" | "CURED" | "LIQUIDATION_NOTICE";

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
    }
  | {
      readonly kind: "REQUEST_LIQUIDATION";
      readonly requestId: string;
      readonly accountId: string;
      readonly callId: string;
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

  /** Deterministic ids: the same input state and event always give the same ids. */
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
    this.effects.push({
      kind: "NOTIFY",
      notificationId: this.id(notice.toLowerCase()),
      notice,
      accountId: this.initial.accountId,
      callId: notice === "WARNING" ? null : (call?.callId ?? null),
      amountDue: notice === "CALL" || notice === "REMINDER" ? (call?.amountDue ?? null) : null,
      deadlineAt: notice === "CALL" || notice === "REMINDER" ? (call?.deadlineAt ?? null) : null,
      marginRatio: ratio ? toPlainString(ratio) : null,
      cureOptions: notice === "CURED" || notice === "LIQUIDATION_NOTICE" ? [] : this.assessment.cureOptions,
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

function issueCall(step: StepBuilder, reason: string): void {
  const { policy, now } = step;
  const callsIssued = step.state.callsIssued + 1;
  const call: OpenCall = {
    callId: `${step.initial.accountId}:call:${callsIssued}`,
    issuedAt: now,
    deadlineAt: addSeconds(now, policy.curePeriodSeconds),
    amountDue: toFixedString(step.assessment.sizing.amount, policy.currencyScale, Rounding.UP),
    remindersSent: 0,
    liquidationAttempts: 0,
    liquidationRequestId: null,
    liquidationRequestedAt: null,
  };
  step.move("CALLED", reason, { call, callsIssued, loss: null });
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
  const plan = step.assessment.liquidationPlan;
  if (!plan) throw new Error("invariant: an account in breach is assessed with a liquidation plan");
  const requestId = `${call.callId}:liquidation:1`;
  step.move(
    "LIQUIDATING",
    reason === "HARD_FLOOR" ? "margin ratio below the hard floor" : "call not met by the deadline",
    {
      call: {
        ...call,
        liquidationAttempts: 1,
        liquidationRequestId: requestId,
        liquidationRequestedAt: step.now,
      },
    },
  );
  step.notify("LIQUIDATION_NOTICE");
  step.effects.push({
    kind: "REQUEST_LIQUIDATION",
    requestId,
    accountId: step.initial.accountId,
    callId: call.callId,
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
  const cureLine = valuation.maintenance.times(ONE.plus(policy.exitBuffer)).minus(policy.threshold);
  if (valuation.adjustedEquity.greaterThanOrEqualTo(cureLine)) {
    step.move("CURED", "adjusted equity restored above the requirement plus the exit buffer");
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

function whileLiquidating(step: StepBuilder, call: OpenCall): void {
  const { event, policy, now } = step;
  if (event.type === "EXECUTION_REPORT" && event.final && event.requestId === call.liquidationRequestId) {
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
      step.move("LIQUIDATED", "liquidation complete");
    }
    return;
  }
  const requestedAt = call.liquidationRequestedAt;
  if (
    requestedAt &&
    call.liquidationAttempts < policy.liquidationMaxAttempts &&
    atOrAfter(now, addSeconds(requestedAt, policy.liquidationRetrySeconds)) &&
    step.assessment.liquidationPlan
  ) {
    const attempt = call.liquidationAttempts + 1;
    const requestId = `${call.callId}:liquidation:${attempt}`;
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
      attempt,
      reason: "RETRY",
      plan: step.assessment.liquidationPlan,
    });
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
      whileLiquidating(step, state.call);
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
