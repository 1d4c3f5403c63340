/**
 * One self-contained evaluation: account, prices, policy, the current call state and a timestamp in; the
 * valuation, trigger prices, call, cure options and the state machine's step out. The `evaluate` CLI and
 * the audit log's replay both use it, so a recorded decision can be recomputed from its record.
 */

import { z } from "zod";
import { assess } from "./assess.ts";
import type { CureOption, LiquidationPlan } from "./calls.ts";
import type { CapWait } from "./cascade-ledger.ts";
import {
  CALL_MET,
  type CallStanding,
  type CallState,
  callStanding,
  creditableDeposits,
  type EngineEvent,
  initialState,
  type LiquidationDispatch,
  STATUSES,
  type Step,
  transition,
} from "./machine.ts";
import {
  Dec,
  dec,
  isCanonicalDecimal,
  Rounding,
  toExactString,
  toFixedString,
  toPlainString,
} from "./money.ts";
import { jsonPath, type Policy, PolicyError, type PolicyIssue, parsePolicy } from "./policy.ts";
import { type ResolvedMark, resolveMark, type SourceMark } from "./prices.ts";
import { type TriggerPrices, triggerPrices } from "./triggers.ts";
import { type Account, marginRatio, notionalLeverage, type Valuation, ValuationError } from "./valuation.ts";

const decimalString = z
  .string({ error: 'must be a decimal string, e.g. "1234.50"; numbers lose digits' })
  .refine(isCanonicalDecimal, {
    error: "must be a canonical decimal string (no exponent, plus sign or leading zeros)",
  });
const positive = decimalString.refine((text) => dec(text).greaterThan(0), { error: "must be above 0" });
const timestamp = z.iso.datetime({ error: "must be an ISO-8601 UTC timestamp, e.g. 2026-11-24T12:00:00Z" });
const assetCode = z
  .string()
  .regex(/^[A-Z0-9][A-Z0-9._-]{0,31}$/, { error: "must be an asset code like BTC" });

const exposureRefSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("HOLDING"), asset: assetCode }),
  z.strictObject({ kind: z.literal("POSITION"), instrument: z.string().min(1) }),
]);

const closureSchema = z.strictObject({
  callId: z.string(),
  how: z.enum(CALL_MET),
  at: timestamp,
  amountCalled: decimalString,
  amountDue: decimalString,
  paymentToMeet: decimalString,
  paid: decimalString,
  waived: decimalString.nullable(),
  sold: z.array(
    z.strictObject({
      target: exposureRefSchema,
      side: z.enum(["SELL", "BUY"]),
      quantity: decimalString,
      averagePrice: decimalString,
      fee: decimalString,
    }),
  ),
  loss: decimalString.nullable(),
});

const openCallSchema = z.strictObject({
  callId: z.string(),
  callNotificationId: z.string(),
  issuedAt: timestamp,
  deadlineAt: timestamp,
  amountDue: decimalString,
  remindersSent: z.int().min(0),
  liquidationAttempts: z.int().min(0),
  liquidationRequestId: z.string().nullable(),
  liquidationRequestedAt: timestamp.nullable(),
  liquidationExhaustedAt: timestamp.nullable(),
  amountCalled: decimalString.optional(),
  hardFloorSince: timestamp.nullable().optional(),
  paymentToMeet: decimalString.optional(),
  liquidationEndedEmpty: z.int().min(1).nullable().optional(),
  liquidationPausedAt: timestamp.nullable().optional(),
  liquidationWaitingAt: timestamp.nullable().optional(),
  liquidationWaitingReason: z
    .enum(["EXCEEDS_CAP", "CAP_FULL", "BEHIND_HIGHER_PRIORITY", "LEDGER_FULL"])
    .nullable()
    .optional(),
  priorDepositIds: z.array(z.string()).max(1_000).optional(),
  closure: closureSchema.nullable().optional(),
});

/** A CallState that transition() accepts: it never throws on one of these with an assessment from `assess`. */
export const callStateSchema = z
  .strictObject({
    accountId: z.string(),
    status: z.enum(STATUSES),
    version: z.int().min(0),
    since: timestamp,
    call: openCallSchema.nullable(),
    callsIssued: z.int().min(0),
    halt: z
      .strictObject({ since: timestamp, reason: z.string(), alarmedAt: timestamp.optional() })
      .nullable(),
    resumedAt: timestamp.nullable(),
    loss: decimalString.nullable(),
  })
  .refine((state) => state.call !== null || (state.status !== "CALLED" && state.status !== "LIQUIDATING"), {
    path: ["call"],
    error: "must be the open call while the status is CALLED or LIQUIDATING",
  });

export const snapshotSchema = z.strictObject({
  now: timestamp,
  policy: z.unknown(),
  account: z.strictObject({
    accountId: z.string().min(1).max(64),
    cash: decimalString.default("0"),
    holdings: z
      .array(z.strictObject({ asset: assetCode, quantity: decimalString }))
      .max(500)
      .default([]),
    positions: z
      .array(z.strictObject({ instrument: z.string().min(1), size: decimalString, entryPrice: positive }))
      .max(500)
      .default([]),
    pendingDeposits: z
      .array(z.strictObject({ depositId: z.string().min(1), amount: positive }))
      // Any number upstream has in flight is in the decision's snapshot (kept gzipped when large,
      // step-items.ts): every recorded decision must replay.
      .max(100_000)
      .default([]),
    /** Settled deposits: what pays a call (their money is already in the cash holding). */
    settledDeposits: z
      .array(z.strictObject({ depositId: z.string().min(1), amount: positive, settledAt: timestamp }))
      .max(100_000)
      .default([]),
  }),
  prices: z
    .array(
      z.strictObject({
        asset: assetCode,
        source: z.string().min(1).default("snapshot"),
        price: positive,
        asOf: timestamp,
        realizedVolatility: decimalString.optional(),
      }),
    )
    .max(5_000),
  state: callStateSchema.nullable().default(null),
  event: z
    .discriminatedUnion("type", [
      z.strictObject({
        type: z.literal("REVALUE"),
        cause: z.enum(["ACCOUNT_CHANGE", "PRICE_TICK", "SWEEP"]),
        eventId: z.string().min(1),
      }),
      z.strictObject({
        type: z.literal("EXECUTION_REPORT"),
        eventId: z.string().min(1),
        requestId: z.string().min(1),
        final: z.boolean(),
        fills: z
          .array(
            z.strictObject({
              reportId: z.string().min(1),
              requestId: z.string().min(1),
              target: exposureRefSchema,
              side: z.enum(["SELL", "BUY"]),
              filledQuantity: decimalString,
              averagePrice: decimalString.nullable(),
              fee: decimalString,
              final: z.boolean(),
            }),
          )
          .max(1_000)
          .optional(),
      }),
    ])
    .default({ type: "REVALUE", cause: "SWEEP", eventId: "snapshot" }),
  /**
   * What the engine read of the current liquidation request's dispatch (machine.ts LiquidationDispatch).
   * Absent in snapshots recorded before it was read, and whenever it was not: unknown.
   */
  liquidationDispatch: z
    .strictObject({ requestId: z.string().min(1), dispatchedAt: timestamp.nullable() })
    .optional(),
  /**
   * The assets whose circuit breaker was tripped when the engine decided, with when each pause began
   * (machine.ts invariant 10). Absent: none, or not read (the step requested no liquidation).
   */
  liquidationPauses: z
    .array(z.strictObject({ asset: assetCode, pausedAt: timestamp }))
    .max(1_000)
    .optional(),
  /**
   * The cascade caps' verdict when the call's first request was due and had to wait (cascade-ledger.ts).
   * Absent: admitted, no caps, or not read.
   */
  capWait: z
    .strictObject({
      reason: z.enum(["EXCEEDS_CAP", "CAP_FULL", "BEHIND_HIGHER_PRIORITY", "LEDGER_FULL"]),
      caps: z.array(z.string().max(64)).max(1_000),
      behindOn: z.array(z.string().max(64)).max(1_000),
      priority: z.int().min(1),
      of: z.int().min(1),
    })
    .optional(),
});

/** One problem with the input: its JSON path and the reason, as for a policy. */
export type InputIssue = PolicyIssue;

export class SnapshotError extends Error {
  override readonly name = "SnapshotError";
  constructor(readonly issues: readonly InputIssue[]) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join("\n"));
  }
}

export interface Evaluation {
  readonly policy: Policy;
  readonly account: Account;
  readonly marks: ReadonlyMap<string, ResolvedMark>;
  readonly now: string;
  readonly state: CallState;
  readonly event: EngineEvent;
  /** The dispatch of the current liquidation request, as recorded; undefined: unknown. */
  readonly liquidationDispatch: LiquidationDispatch | undefined;
  readonly valuation: Valuation;
  readonly triggers: readonly TriggerPrices[];
  readonly cureOptions: readonly CureOption[];
  readonly liquidationPlan: LiquidationPlan | null;
  readonly sizing: ReturnType<typeof assess>["sizing"];
  readonly priceStatus: ReturnType<typeof assess>["priceStatus"];
  /** Where the open call stands before the step (CALLED only): paid, still due now. */
  readonly standing: CallStanding | null;
  readonly step: Step;
}

/** Parses and evaluates a snapshot. Throws SnapshotError with the JSON path of every bad field. */
export function evaluateSnapshot(input: unknown): Evaluation {
  const parsed = snapshotSchema.safeParse(input);
  if (!parsed.success) {
    throw new SnapshotError(
      parsed.error.issues.map((issue) => ({ path: jsonPath(issue.path), message: issue.message })),
    );
  }
  const snapshot = parsed.data;
  let policy: Policy;
  try {
    policy = parsePolicy(snapshot.policy);
  } catch (error) {
    if (error instanceof PolicyError) {
      throw new SnapshotError(
        error.issues.map((issue) => ({ ...issue, path: issue.path.replace(/^\$/, "$.policy") })),
      );
    }
    throw error;
  }
  const account: Account = {
    accountId: snapshot.account.accountId,
    cash: dec(snapshot.account.cash),
    holdings: snapshot.account.holdings.map((holding) => ({
      asset: holding.asset,
      quantity: dec(holding.quantity),
    })),
    positions: snapshot.account.positions.map((position) => ({
      instrument: position.instrument,
      size: dec(position.size),
      entryPrice: dec(position.entryPrice),
    })),
    pendingDeposits: snapshot.account.pendingDeposits.map((deposit) => ({
      depositId: deposit.depositId,
      amount: dec(deposit.amount),
    })),
    settledDeposits: snapshot.account.settledDeposits.map((deposit) => ({
      depositId: deposit.depositId,
      amount: dec(deposit.amount),
      settledAt: deposit.settledAt,
    })),
  };
  const nowMs = Date.parse(snapshot.now);
  const byAsset = new Map<string, SourceMark[]>();
  for (const price of snapshot.prices) {
    const list = byAsset.get(price.asset) ?? [];
    list.push({
      source: price.source,
      price: dec(price.price),
      asOf: price.asOf,
      ...(price.realizedVolatility ? { realizedVolatility: dec(price.realizedVolatility) } : {}),
    });
    byAsset.set(price.asset, list);
  }
  const marks = new Map<string, ResolvedMark>();
  for (const [asset, sources] of byAsset) {
    const mark = resolveMark(asset, sources, policy, nowMs);
    if (mark) marks.set(asset, mark);
  }
  const state = snapshot.state ?? initialState(account.accountId, snapshot.now);
  if (state.accountId !== account.accountId) {
    throw new SnapshotError([
      { path: "$.state.accountId", message: `must be the account's id, ${account.accountId}` },
    ]);
  }
  try {
    const pauses = new Map((snapshot.liquidationPauses ?? []).map((pause) => [pause.asset, pause.pausedAt]));
    const assessment = assess(account, marks, policy, pauses, snapshot.capWait);
    return {
      policy,
      account,
      marks,
      now: snapshot.now,
      state,
      event: snapshot.event,
      liquidationDispatch: snapshot.liquidationDispatch,
      valuation: assessment.valuation,
      triggers: triggerPrices(account, marks, policy),
      cureOptions: assessment.cureOptions,
      liquidationPlan: assessment.liquidationPlan,
      sizing: assessment.sizing,
      priceStatus: assessment.priceStatus,
      standing: state.status === "CALLED" && state.call ? callStanding(state.call, assessment, policy) : null,
      step: transition(state, assessment, policy, snapshot.event, snapshot.now, snapshot.liquidationDispatch),
    };
  } catch (error) {
    if (error instanceof ValuationError) throw new SnapshotError([{ path: "$", message: error.message }]);
    throw error;
  }
}

/** Replaces every decimal with its canonical string, for JSON output and storage. */
export function plain(value: unknown): unknown {
  if (Dec.isDecimal(value)) return toPlainString(value as Dec);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, inner]) => [key, plain(inner)]));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
  }
  return value;
}

/** The closure of a call closed by this step, or null. */
export function closedIn(evaluation: Evaluation) {
  const closure = evaluation.step.effects.find((effect) => effect.kind === "AUDIT" && effect.closure);
  return closure?.kind === "AUDIT" && closure.closure ? closure.closure : null;
}

/** The JSON the CLI prints: amounts at the currency scale, every figure a string. */
export function evaluationReport(evaluation: Evaluation): unknown {
  const { policy, valuation, sizing, step } = evaluation;
  const money = (value: Dec) => toFixedString(value, policy.currencyScale, Rounding.HALF_EVEN);
  const ratio = marginRatio(valuation);
  const leverage = notionalLeverage(valuation);
  return {
    accountId: valuation.accountId,
    now: evaluation.now,
    policy: `${policy.policyId}@${policy.version}`,
    currency: policy.currency,
    prices: Object.fromEntries(
      [...evaluation.marks].map(([asset, mark]) => [
        asset,
        { price: toPlainString(mark.price), status: mark.status, asOf: mark.asOf, detail: mark.detail },
      ]),
    ),
    priceStatus: evaluation.priceStatus,
    valuation: {
      equity: money(valuation.equity),
      adjustedEquity: money(valuation.adjustedEquity),
      collateralGross: money(valuation.collateralGross),
      collateralHaircut: money(valuation.collateralHaircut),
      maintenanceRequirement: money(valuation.maintenance),
      initialRequirement: money(valuation.initial),
      marginRatio: ratio ? toPlainString(ratio) : null,
      excess: money(valuation.excess.greaterThan(0) ? valuation.excess : new Dec(0)),
      deficit: money(valuation.excess.lessThan(0) ? valuation.excess.negated() : new Dec(0)),
      grossExposure: money(valuation.grossExposure),
      notionalLeverage: leverage ? toPlainString(leverage) : null,
      pendingDeposits: money(valuation.pendingDeposits),
    },
    triggers: plain(evaluation.triggers),
    call: {
      inBreach: sizing.inBreach,
      amount: toFixedString(sizing.amount, policy.currencyScale, Rounding.UP),
      restoreTarget: money(sizing.target),
      belowMinimumTransfer: sizing.belowMinimumTransfer,
      metBy: policy.callMetBy,
    },
    openCall: evaluation.standing
      ? {
          callId: evaluation.state.call?.callId ?? null,
          amountCalled: toFixedString(evaluation.standing.amountCalled, policy.currencyScale, Rounding.UP),
          amountDue: evaluation.state.call?.amountDue ?? null,
          paid: toExactString(evaluation.standing.paid, policy.currencyScale),
          dueNow: toFixedString(evaluation.standing.dueNow, policy.currencyScale, Rounding.UP),
          deadlineAt: evaluation.state.call?.deadlineAt ?? null,
        }
      : null,
    closedCall: closedIn(evaluation),
    cureOptions: plain(evaluation.cureOptions),
    liquidationPlan: plain(evaluation.liquidationPlan),
    transition: {
      from: evaluation.state.status,
      to: step.next.status,
      version: step.next.version,
      effects: plain(step.effects),
    },
    nextState: step.next,
  };
}

/** What one decision was made from: the inputs of `transition`, as the adapters loaded them. */
export interface DecisionInputs {
  readonly account: Account;
  /** The policy document as deployed (parsed, defaults filled). */
  readonly policy: unknown;
  /** Every source of every asset the account needs, as read. */
  readonly sources: ReadonlyMap<string, readonly SourceMark[]>;
  readonly state: CallState;
  readonly event: EngineEvent;
  readonly now: string;
  /** What was read of the current liquidation request's dispatch; omitted: not read. */
  readonly liquidationDispatch?: LiquidationDispatch | undefined;
  /** The tripped circuit breakers read (asset → pausedAt); omitted or empty: none. */
  readonly liquidationPauses?: ReadonlyMap<string, string> | undefined;
  /** The cascade caps' verdict on a first request due now; omitted: none. */
  readonly capWait?: CapWait | undefined;
}

/**
 * The snapshot `evaluateSnapshot` replays to the same step: the audit log keeps it with each decision. Only
 * the settled deposits that can pay the open call or one issued now are kept (machine.ts
 * `creditableDeposits`): an account's whole deposit history would not fit the audit item.
 */
export function snapshotOf(inputs: DecisionInputs) {
  const { account, state, now } = inputs;
  const paymentsFrom = state.call && state.call.issuedAt < now ? state.call.issuedAt : now;
  return {
    now,
    policy: inputs.policy,
    account: {
      accountId: account.accountId,
      cash: toPlainString(account.cash),
      holdings: account.holdings.map((holding) => ({
        asset: holding.asset,
        quantity: toPlainString(holding.quantity),
      })),
      positions: account.positions.map((position) => ({
        instrument: position.instrument,
        size: toPlainString(position.size),
        entryPrice: toPlainString(position.entryPrice),
      })),
      pendingDeposits: account.pendingDeposits.map((deposit) => ({
        depositId: deposit.depositId,
        amount: toPlainString(deposit.amount),
      })),
      settledDeposits: creditableDeposits(account.settledDeposits ?? [], paymentsFrom).map((deposit) => ({
        depositId: deposit.depositId,
        amount: toPlainString(deposit.amount),
        settledAt: deposit.settledAt,
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
    event: inputs.event,
    ...(inputs.liquidationDispatch ? { liquidationDispatch: inputs.liquidationDispatch } : {}),
    ...(inputs.liquidationPauses?.size
      ? {
          liquidationPauses: [...inputs.liquidationPauses]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([asset, pausedAt]) => ({ asset, pausedAt })),
        }
      : {}),
    ...(inputs.capWait ? { capWait: inputs.capWait } : {}),
  };
}
