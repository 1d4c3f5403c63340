/**
 * The functional core of one revaluation: everything a step decides, from one valuation. The adapter loads
 * the state, the account and the prices once, calls `decide`, and commits what it returns once: the next
 * state and its effects, the trigger prices the index keeps, and the snapshot the audit log keeps so the
 * decision can be replayed. Nothing here reads a clock or does I/O.
 */
import { assess } from "./assess.ts";
import type { CapWait } from "./cascade-ledger.ts";
import type { Assessment, CallState, EngineEvent, LiquidationDispatch, Step } from "./machine.ts";
import { transition } from "./machine.ts";
import { ONE } from "./money.ts";
import type { Policy } from "./policy.ts";
import type { ResolvedMark, SourceMark } from "./prices.ts";
import { snapshotOf } from "./snapshot.ts";
import { type TriggerPrices, triggerPricesOf } from "./triggers.ts";
import type { Account } from "./valuation.ts";

export interface DecideInput {
  readonly state: CallState;
  readonly account: Account;
  /** Every source of every asset the account needs, as read; `marks` resolves them. */
  readonly sources: ReadonlyMap<string, readonly SourceMark[]>;
  readonly marks: ReadonlyMap<string, ResolvedMark>;
  readonly policy: Policy;
  readonly event: EngineEvent;
  readonly now: string;
  /**
   * The dispatch of the current liquidation request, read only while LIQUIDATING with one; omitted:
   * unknown, and a retry counts from the request's commit (machine.ts `retryClockStart`).
   */
  readonly liquidationDispatch?: LiquidationDispatch | undefined;
  /** The tripped circuit breakers of the account's assets (asset → pausedAt), as read; omitted: none. */
  readonly liquidationPauses?: ReadonlyMap<string, string> | undefined;
  /** The cascade caps' verdict on a first request due now, as decided on the ledger read; omitted: none. */
  readonly capWait?: CapWait | undefined;
}

export interface Decision {
  readonly assessment: Assessment;
  readonly step: Step;
  /** Breach and warning prices, with the hard floor and the cure line as `levels` [floor, cure]. */
  readonly triggers: readonly TriggerPrices[];
  /**
   * What `margin-call evaluate` replays to the same step. Built on demand: only a step that is committed
   * keeps it, and most revaluations change nothing.
   */
  readonly snapshot: () => ReturnType<typeof snapshotOf>;
}

/**
 * The ratios the trigger index adds to breach and warning: the hard floor, and the cure line (1 + exit
 * buffer, ignoring the threshold, which only lowers it). Crossing either changes a call's state.
 */
export function triggerLevels(policy: Policy) {
  return [policy.hardFloorRatio, ONE.plus(policy.exitBuffer)] as const;
}

/** Decides one step. Throws ValuationError when the account cannot be valued under the policy. */
export function decide(input: DecideInput): Decision {
  const { state, account, marks, policy, event, now, liquidationDispatch, liquidationPauses, capWait } =
    input;
  const assessment = assess(account, marks, policy, liquidationPauses, capWait);
  return {
    assessment,
    step: transition(state, assessment, policy, event, now, liquidationDispatch),
    triggers: triggerPricesOf(assessment.valuation, policy, triggerLevels(policy)),
    snapshot: () =>
      snapshotOf({
        account,
        policy: policy.document,
        sources: input.sources,
        state,
        event,
        now,
        liquidationDispatch,
        liquidationPauses,
        capWait,
      }),
  };
}
