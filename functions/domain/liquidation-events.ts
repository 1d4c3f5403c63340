/**
 * The liquidation events, as zod schemas of their EventBridge `detail`: the request (with the Dutch-auction
 * schedule each step carries), cascade damping and the loss waterfall, and the builders that make each
 * detail from a domain decision. docs/events.md documents each one with an
 * example, and test/unit/event-schemas.test.ts validates every example against these schemas.
 *
 * Amounts in the currency are written at the currency's scale ("2000.00"), quantities, prices and ratios
 * without trailing zeros ("0.5"), as in `LiquidationRequested`. Each `reference` is deterministic: the key a
 * consumer deduplicates on.
 */
import { z } from "zod";
import type { AuctionSchedule } from "./auction.ts";
import type { BreakerDecision } from "./cascade.ts";
import type { FundFlow } from "./insurance-fund.ts";
import { FUND_FLOW_CAUSES } from "./insurance-fund.ts";
import { LOSS_AFTER_FUND, SOCIALISED_BASES, type WaterfallResult } from "./loss-waterfall.ts";
import { type Dec, dec, isCanonicalDecimal, Rounding, toFixedString, toPlainString, ZERO } from "./money.ts";

const decimal = z.string().refine(isCanonicalDecimal, { error: "must be a canonical decimal string" });
const positive = decimal.refine((text) => !text.startsWith("-") && !/^0(\.0+)?$/.test(text), {
  error: "must be above 0",
});
const nonNegative = decimal.refine((text) => !text.startsWith("-"), { error: "must not be negative" });
const timestamp = z.iso.datetime({ error: "must be an ISO-8601 UTC timestamp" });
const id = z.string().min(1);

const exposure = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("HOLDING"), asset: id }),
  z.strictObject({ kind: z.literal("POSITION"), instrument: id }),
]);

const side = z.enum(["SELL", "BUY"]);
const scheduleCommon = {
  side,
  buf: positive,
  tailSeconds: z.int().min(1),
  cusp: positive,
  markPrice: positive,
  top: positive,
  priceScale: z.int().min(0).max(18),
  cycleSeconds: z.int().min(1),
  startsAt: timestamp.optional(),
};

/** A step's Dutch-auction schedule as the request carries it (functions/domain/auction.ts, serialised). */
export const auctionScheduleSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("LINEAR"), ...scheduleCommon, tauSeconds: z.int().min(1) }),
  z.strictObject({ kind: z.literal("STEP"), ...scheduleCommon, stepSeconds: z.int().min(1), cut: positive }),
]);

export const liquidationRequestedSchema = z.strictObject({
  reference: id,
  requestId: id,
  accountId: id,
  callId: id,
  callNotificationId: id,
  attempt: z.int().min(1),
  reason: z.enum(["DEADLINE", "HARD_FLOOR", "RETRY"]),
  plan: z.strictObject({
    steps: z
      .array(
        z.strictObject({
          target: exposure,
          side,
          quantity: positive,
          markPrice: positive,
          limitPrice: nonNegative,
          closesAll: z.boolean(),
          fee: positive.optional(),
          hedgedWith: exposure.optional(),
          auction: auctionScheduleSchema.optional(),
        }),
      )
      .min(1),
    restoresTarget: z.boolean(),
    fee: positive.optional(),
    closeFactor: z
      .strictObject({
        healthFactor: decimal.nullable(),
        debt: nonNegative,
        collateral: nonNegative,
        factor: positive,
        maxNotional: nonNegative.nullable(),
        binding: z.boolean(),
      })
      .optional(),
    closesInFull: z.boolean().optional(),
  }),
  recordedAt: timestamp,
  noticeDelivered: z.boolean(),
});

/**
 * The schedule a request's step carries, as the engine computed it: what an execution system follows
 * (`auctionPrice(schedule, seconds since startsAt, or since the request's recordedAt)`).
 */
export function scheduleOfStep(auction: z.infer<typeof auctionScheduleSchema>): AuctionSchedule {
  const common = {
    side: auction.side,
    buf: dec(auction.buf),
    tailSeconds: auction.tailSeconds,
    cusp: dec(auction.cusp),
    markPrice: dec(auction.markPrice),
    top: dec(auction.top),
    priceScale: auction.priceScale,
    cycleSeconds: auction.cycleSeconds,
    ...(auction.startsAt === undefined ? {} : { startsAt: auction.startsAt }),
  };
  return auction.kind === "LINEAR"
    ? { ...common, kind: "LINEAR", tauSeconds: auction.tauSeconds }
    : { ...common, kind: "STEP", stepSeconds: auction.stepSeconds, cut: dec(auction.cut) };
}

export const liquidationPausedSchema = z.strictObject({
  reference: id,
  policyId: id,
  asset: id,
  reason: z.literal("VOLATILITY"),
  move: nonNegative,
  maxMove: positive,
  windowSeconds: z.int().min(1),
  windowHigh: positive,
  windowLow: positive,
  pausedAt: timestamp,
});

export const liquidationResumedSchema = z.strictObject({
  reference: id,
  pauseReference: id,
  policyId: id,
  asset: id,
  pausedAt: timestamp,
  calmSince: timestamp,
  resumedAt: timestamp,
  coolDownSeconds: z.int().min(0),
  move: nonNegative.nullable(),
});

export const insuranceFundFlowSchema = z.strictObject({
  reference: id,
  currency: id,
  seq: z.int().min(1),
  cause: z.enum(FUND_FLOW_CAUSES),
  amount: decimal,
  requested: positive,
  balanceAfter: nonNegative,
  accountId: id.nullable(),
  sourceReference: id,
  recordedAt: timestamp,
});

export const deleveragingRequestedSchema = z.strictObject({
  reference: id,
  bankruptAccountId: id,
  instrument: id,
  bankruptSide: z.enum(["LONG", "SHORT"]),
  bankruptcyPrice: positive,
  quantityNeeded: positive,
  quantityClosed: nonNegative,
  currency: id,
  cover: nonNegative,
  instructions: z
    .array(
      z.strictObject({
        accountId: id,
        side: z.enum(["BUY", "SELL"]),
        quantity: positive,
        price: positive,
        closesAll: z.boolean(),
        rank: z.int().min(1),
      }),
    )
    .min(1),
  recordedAt: timestamp,
});

export const lossSocialisedSchema = z.strictObject({
  reference: id,
  bankruptAccountId: id,
  currency: id,
  base: z.enum(SOCIALISED_BASES),
  baseTotal: positive,
  amount: positive,
  charges: z.array(z.strictObject({ accountId: id, amount: nonNegative })).min(1),
  recordedAt: timestamp,
});

export const badDebtRecordedSchema = z.strictObject({
  reference: id,
  accountId: id,
  currency: id,
  shortfall: positive,
  fundCover: nonNegative,
  afterFund: z.enum(LOSS_AFTER_FUND),
  adlCover: nonNegative,
  socialisedCover: nonNegative,
  amount: positive,
  recordedAt: timestamp,
});

export const LIQUIDATION_EVENT_DETAILS = {
  LiquidationRequested: liquidationRequestedSchema,
  LiquidationPaused: liquidationPausedSchema,
  LiquidationResumed: liquidationResumedSchema,
  InsuranceFundFlow: insuranceFundFlowSchema,
  DeleveragingRequested: deleveragingRequestedSchema,
  LossSocialised: lossSocialisedSchema,
  BadDebtRecorded: badDebtRecordedSchema,
} as const;
export type LiquidationEventType = keyof typeof LIQUIDATION_EVENT_DETAILS;
export const LIQUIDATION_EVENT_TYPES = Object.keys(LIQUIDATION_EVENT_DETAILS) as LiquidationEventType[];

/** The EventBridge envelope of one of these events, its `detail` checked by the detail type's schema. */
export function eventSchema(detailType: LiquidationEventType) {
  return z.strictObject({
    version: z.literal("0"),
    id: id,
    "detail-type": z.literal(detailType),
    source: z.literal("margin-call-engine"),
    account: z.string().regex(/^\d{12}$/),
    time: timestamp,
    region: id,
    resources: z.array(z.string()).length(0),
    "replay-name": id.optional(),
    detail: LIQUIDATION_EVENT_DETAILS[detailType],
  });
}

export interface EventDetail {
  readonly detailType: LiquidationEventType;
  readonly detail: Record<string, unknown>;
}

/**
 * The reference of the pause of a policy's breaker on an asset that began at `pausedAt`; its release is
 * `…:resume:…`. Each policy has its own breaker on an asset, so its id is part of the key.
 */
export function pauseReference(asset: string, policyId: string, pausedAt: string): string {
  return `${asset}:${policyId}:pause:${pausedAt}`;
}

export function breakerEvent(decision: BreakerDecision, policyId: string): EventDetail {
  if (decision.kind === "PAUSE") {
    return {
      detailType: "LiquidationPaused",
      detail: {
        reference: pauseReference(decision.asset, policyId, decision.at),
        policyId,
        asset: decision.asset,
        reason: "VOLATILITY",
        move: toPlainString(decision.move.move),
        maxMove: toPlainString(decision.maxMove),
        windowSeconds: decision.windowSeconds,
        windowHigh: toPlainString(decision.move.high),
        windowLow: toPlainString(decision.move.low),
        pausedAt: decision.at,
      },
    };
  }
  return {
    detailType: "LiquidationResumed",
    detail: {
      reference: `${decision.asset}:${policyId}:resume:${decision.pausedAt}`,
      pauseReference: pauseReference(decision.asset, policyId, decision.pausedAt),
      policyId,
      asset: decision.asset,
      pausedAt: decision.pausedAt,
      calmSince: decision.calmSince,
      resumedAt: decision.at,
      coolDownSeconds: decision.coolDownSeconds,
      move: decision.move ? toPlainString(decision.move.move) : null,
    },
  };
}

export function fundFlowEvent(flow: FundFlow, scale: number): EventDetail {
  return {
    detailType: "InsuranceFundFlow",
    detail: {
      reference: flow.flowId,
      currency: flow.currency,
      seq: flow.seq,
      cause: flow.cause,
      amount: money(flow.amount, scale),
      requested: money(flow.requested, scale),
      balanceAfter: money(flow.balanceAfter, scale),
      accountId: flow.accountId,
      sourceReference: flow.sourceReference,
      recordedAt: flow.recordedAt,
    },
  };
}

/**
 * The events of one waterfall, in order: the fund flow, then DeleveragingRequested or LossSocialised when
 * they took something, then BadDebtRecorded when something remains. `lossReference` is the loss's
 * reference (`<accountId>:v<version>:loss`), which every reference here extends.
 */
export function waterfallEvents(
  result: WaterfallResult,
  lossReference: string,
  scale: number,
  recordedAt: string,
): EventDetail[] {
  const events: EventDetail[] = [fundFlowEvent(result.fundFlow, scale)];
  const { adl, socialised } = result;
  if (adl && adl.instructions.length > 0) {
    events.push({
      detailType: "DeleveragingRequested",
      detail: {
        reference: `${lossReference}:adl`,
        bankruptAccountId: result.accountId,
        instrument: adl.instrument,
        bankruptSide: adl.side,
        bankruptcyPrice: toPlainString(adl.bankruptcyPrice),
        quantityNeeded: toPlainString(adl.quantityNeeded),
        quantityClosed: toPlainString(adl.quantityClosed),
        currency: result.currency,
        cover: money(adl.cover, scale),
        instructions: adl.instructions.map((instruction) => ({
          accountId: instruction.accountId,
          side: instruction.side,
          quantity: toPlainString(instruction.quantity),
          price: toPlainString(instruction.price),
          closesAll: instruction.closesAll,
          rank: instruction.rank,
        })),
        recordedAt,
      },
    });
  }
  if (socialised?.cover.greaterThan(ZERO)) {
    events.push({
      detailType: "LossSocialised",
      detail: {
        reference: `${lossReference}:socialised`,
        bankruptAccountId: result.accountId,
        currency: result.currency,
        base: socialised.base,
        baseTotal: toPlainString(socialised.baseTotal),
        amount: money(socialised.cover, scale),
        charges: socialised.charges.map((c) => ({ accountId: c.accountId, amount: money(c.amount, scale) })),
        recordedAt,
      },
    });
  }
  if (result.badDebt.greaterThan(ZERO)) {
    events.push({
      detailType: "BadDebtRecorded",
      detail: {
        reference: `${lossReference}:bad-debt`,
        accountId: result.accountId,
        currency: result.currency,
        shortfall: money(result.shortfall, scale),
        fundCover: money(result.fundCover, scale),
        afterFund: result.afterFund,
        adlCover: money(adl?.cover ?? ZERO, scale),
        socialisedCover: money(socialised?.cover ?? ZERO, scale),
        amount: money(result.badDebt, scale),
        recordedAt,
      },
    });
  }
  return events;
}

function money(value: Dec, scale: number): string {
  return toFixedString(value, scale, Rounding.HALF_EVEN);
}
