/**
 * The margin policy: a versioned, validated document set by the lender. See docs/margin-model.md for the
 * meaning of each field and the sources of the rules (Binance tiers, FINRA 4210, ISDA CSA, Drift, Aave).
 */
import { z } from "zod";
import type { AuctionPolicy } from "./auction.ts";
import {
  type CascadePolicy,
  type CircuitBreakerPolicy,
  cascadeSchema,
  circuitBreakerSchema,
} from "./cascade.ts";
import { type LossWaterfallPolicy, lossWaterfallSchema } from "./loss-waterfall.ts";
import { type Dec, dec, isCanonicalDecimal, ONE, ZERO } from "./money.ts";

const decimalString = z
  .string({ error: 'must be a decimal string, e.g. "0.25"; numbers lose digits' })
  // `abort`: the checks after this one parse the text, which must not run on one that is not a decimal.
  .refine(isCanonicalDecimal, {
    error: "must be a canonical decimal string (no exponent, sign or leading zeros)",
    abort: true,
  });
const nonNegative = decimalString.refine((text) => !text.startsWith("-"), {
  error: "must not be negative",
  abort: true,
});
const rate = nonNegative.refine((text) => dec(text).lessThanOrEqualTo(ONE), {
  error: "must be between 0 and 1",
});
const scale = z.int().min(0).max(18);
const seconds = z
  .int()
  .min(0)
  .max(366 * 24 * 3600);
const assetCode = z
  .string()
  .regex(/^[A-Z0-9][A-Z0-9._-]{0,31}$/, { error: "must be an asset code like BTC" });

const tierSchema = z.strictObject({
  /** The tier applies from this notional (in the policy currency) upwards. */
  notionalFloor: nonNegative,
  maintenanceRate: rate,
  initialRate: rate,
  /** Binance's cumulative maintenance amount. Derived if omitted; checked against the rule if given. */
  maintenanceAmount: nonNegative.optional(),
});

const volatilitySchema = z.strictObject({
  /** Annualised realised volatility at and below which rates are not raised. */
  referenceVolatility: nonNegative.refine((text) => dec(text).greaterThan(ZERO), {
    error: "must be above 0",
  }),
  /** How fast rates rise with volatility above the reference: 1 means proportionally. */
  slope: nonNegative,
  /** The most the rates can be multiplied by. */
  maxMultiplier: decimalString.refine((text) => dec(text).greaterThanOrEqualTo(ONE), {
    error: "must be at least 1",
  }),
});

const assetSchema = z.strictObject({
  /** Decimal places of a quantity of this asset (its lot). */
  quantityScale: scale,
  /** Decimal places of its price. */
  priceScale: scale,
  /** Share of an owned holding's value that does not count as collateral. */
  haircut: rate,
  /** Requirement tiers for an owned (long) holding, by notional. */
  longTiers: z.array(tierSchema).min(1).max(50),
  /** Requirement tiers for a borrowed (short) holding. Omitted: the asset may not be borrowed. */
  shortTiers: z.array(tierSchema).min(1).max(50).optional(),
  volatility: volatilitySchema.optional(),
  /** Liquidated after everything else (IBKR's "liquidate last"). */
  liquidateLast: z.boolean().default(false),
  /** The price sources whose marks count for this asset; marks from any other source are ignored. Omitted: all. */
  sources: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, { error: "must be a price source id" }))
    .min(1)
    .max(20)
    .optional(),
});

/** How an open call is met: see docs/state-machine.md, "How a call is met". */
export const CALL_MET_BY = ["PAYMENT", "EQUITY", "EITHER"] as const;
export type CallMetBy = (typeof CALL_MET_BY)[number];

/** What a liquidation waiting for a call notice recorded undeliverable does: see docs/margin-model.md. */
export const WHEN_NOTICE_UNDELIVERED = ["LIQUIDATE", "HOLD"] as const;
export type WhenNoticeUndelivered = (typeof WHEN_NOTICE_UNDELIVERED)[number];

/** An E.164 country calling code without "+": 1 to 3 digits, never starting with 0 ("1", "44", "420"). */
const countryCallingCode = z.string().regex(/^[1-9][0-9]{0,2}$/, {
  error: 'must be an E.164 country calling code: 1 to 3 digits without "+", not starting with 0, e.g. "44"',
});

const noticesSchema = z.strictObject({
  /**
   * How long delivery of a notice is tried before it is recorded undeliverable and alarmed. Default 600, at
   * most 3600: the notice queue keeps a throttled notice for 500 receives at most 8 s apart (about 4,000 s).
   */
  deliverWithinSeconds: seconds.min(1).max(3600).default(600),
  /**
   * A call notice recorded undeliverable: LIQUIDATE sends a liquidation waiting for it anyway (recorded as sent
   * without notice); HOLD keeps it for an operator. Default LIQUIDATE.
   */
  whenUndelivered: z.enum(WHEN_NOTICE_UNDELIVERED).default("LIQUIDATE"),
  /** SMS only to numbers with one of these country codes (the e-mail still goes). Omitted: any country. */
  smsCountryCodes: z
    .array(countryCallingCode)
    .max(50)
    .superRefine((codes, context) => {
      codes.forEach((code, index) => {
        if (codes.indexOf(code) !== index) {
          context.addIssue({ code: "custom", path: [index], message: `"${code}" is listed twice` });
        }
      });
    })
    .optional(),
});

/** A decimal in a range. A malformed one is reported by decimalString, and not parsed here. */
const inRange = (low: string, high: string, includesLow: boolean) =>
  decimalString.refine(
    (text) =>
      !isCanonicalDecimal(text) ||
      ((includesLow ? dec(text).greaterThanOrEqualTo(dec(low)) : dec(text).greaterThan(dec(low))) &&
        dec(text).lessThan(dec(high))),
    { error: `must be ${includesLow ? "at least" : "above"} ${low} and below ${high}` },
  );
const between = (low: string, high: string) => inRange(low, high, false);

/**
 * Aave v3.3's close factor (docs/liquidation.md, section 2). Present: one request closes at most `factor` of
 * the debt leg while the health factor is above `healthFactorAbove` and both legs reach `minimumLegValue`.
 */
const closeFactorSchema = z.strictObject({
  factor: between("0", "1").default("0.5"),
  healthFactorAbove: nonNegative.default("0.95"),
  minimumLegValue: nonNegative.default("2000"),
});

/** Maker's Dutch auction (docs/liquidation.md, section 4): top = mark × buf, then LINEAR or STEP decrease. */
const auctionCommon = {
  buf: between("0", "2"),
  tailSeconds: seconds.min(1),
  cusp: between("0", "1"),
};
const auctionSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("LINEAR"), ...auctionCommon, tauSeconds: seconds.min(1) }),
  z.strictObject({
    kind: z.literal("STEP"),
    ...auctionCommon,
    stepSeconds: seconds.min(1),
    cut: between("0", "1"),
  }),
]);

const instrumentSchema = z.strictObject({
  /** The asset whose mark prices this perpetual or future. */
  underlying: assetCode,
  quantityScale: scale,
  tiers: z.array(tierSchema).min(1).max(50),
  volatility: volatilitySchema.optional(),
});

export const policySchema = z
  .strictObject({
    policyId: z.string().min(1).max(64),
    version: z.int().min(1),
    /** The account currency: cash, amounts due and losses are in it. Its price is 1. */
    currency: assetCode,
    currencyScale: z.int().min(0).max(8),
    assets: z.record(assetCode, assetSchema),
    instruments: z.record(z.string().regex(/^[A-Z0-9][A-Z0-9._-]{0,47}$/), instrumentSchema).default({}),
    warning: z.strictObject({
      /** WARNING when the margin ratio is below 1 + cushion (IBKR's soft edge: 0.05). */
      cushion: rate,
    }),
    call: z.strictObject({
      /** The call restores the requirement × (1 + restoreBuffer). */
      restoreBuffer: rate,
      /** A call is cured, and a warning cleared, only this far above its line: no flapping. */
      exitBuffer: rate,
      /** ISDA CSA Minimum Transfer Amount: a smaller call is not made. */
      minimumTransferAmount: nonNegative,
      /** ISDA CSA Threshold: the shortfall the lender tolerates without collateral. */
      threshold: nonNegative,
      curePeriodSeconds: seconds.min(1),
      /** Reminders, in seconds after the call was issued, each before the deadline. */
      reminderOffsetsSeconds: z.array(seconds.min(1)).max(10).default([]),
      /** Below this margin ratio liquidation is immediate (after the call notice). */
      hardFloorRatio: rate,
      /**
       * PAYMENT: settled deposits of the amount due meet the call (FINRA/Reg T); EQUITY: adjusted equity at the
       * cure line does; EITHER: whichever comes first. Default EITHER.
       */
      metBy: z.enum(CALL_MET_BY).default("EITHER"),
      /**
       * The hard floor liquidates only when a revaluation at least this long after the first one below it
       * still finds the account there: no torn write, transient state or single bad mark liquidates in the
       * same second. Default 30; 0 liquidates at once.
       */
      hardFloorConfirmSeconds: seconds.default(30),
    }),
    deposits: z.strictObject({
      /** A deposit in flight pauses escalation only if it is at least this amount (Mango). */
      minimumCureAmount: nonNegative,
      /** How long a deposit in flight can hold off a liquidation past the deadline. */
      maxPauseSeconds: seconds,
    }),
    liquidation: z.strictObject({
      /** Limit price = mark × (1 − slippage) for sales, × (1 + slippage) for purchases. */
      limitPriceSlippage: rate,
      /** A remainder worth less than this is closed in full rather than left as dust (Aave: 1,000). */
      dustNotional: nonNegative,
      /** Re-request a liquidation with no final fill after this long, at most maxAttempts times. */
      retrySeconds: seconds.min(1),
      maxAttempts: z.int().min(1).max(20),
      // The planner's rules (docs/liquidation.md). Each is optional; omitted, plans are as before them.
      /** Fee on the notional of each step, kept from the proceeds (or added to the cost). Default 0. */
      feeRate: inRange("0", "1", true).optional(),
      /** A shortfall below this closes each exposure the plan touches in full (Drift: 50). Default: off. */
      closeAllBelowShortfall: nonNegative.optional(),
      /** Aave v3.3's close factor. Omitted: none (100%). */
      closeFactor: closeFactorSchema.optional(),
      /** A position and a holding of its underlying with opposite signs are reduced together. Default false. */
      hedgedPairs: z.boolean().optional(),
      /** Dutch-auction limit prices. Omitted: mark × (1 ∓ limitPriceSlippage). */
      auction: auctionSchema.optional(),
    }),
    prices: z.strictObject({
      /** A mark older than this is stale (Drift: about 60 s). */
      maxAgeSeconds: seconds.min(1),
      /** Sources further than this from their median are dropped; if fewer than minimumSources remain, halt. */
      maxDivergence: rate,
      minimumSources: z.int().min(1).max(20),
      /** After prices recover, no liquidation for this long (Aave's PriceOracleSentinel grace period). */
      haltGraceSeconds: seconds,
      /** A mark stamped more than this far in the future is refused, never fresh. Default 5. */
      maxFutureSkewSeconds: seconds.default(5),
      /** A halt that lasts longer than this raises an operator alarm (escalation stays halted). Default 900. */
      haltAlarmSeconds: seconds.min(1).default(900),
    }),
    /** Delivery of borrower notices. The whole section is optional: omitted, every field takes its default. */
    notices: noticesSchema.prefault({}),
    /**
     * The volatility circuit breaker (cascade.ts, docs/liquidation.md): a move of an asset's prices beyond
     * maxMove within windowSeconds pauses new liquidation requests touching it. Omitted: no breaker.
     */
    circuitBreaker: circuitBreakerSchema.optional(),
    /**
     * Caps on the notional under liquidation per asset and in total within a window (cascade.ts,
     * cascade-ledger.ts, docs/liquidation.md section 10). Omitted, or with no cap: nothing is capped.
     */
    cascade: cascadeSchema.optional(),
    /**
     * Who pays a bankrupt account's shortfall after the insurance fund (loss-waterfall.ts,
     * docs/liquidation.md section 9). Optional as a whole: omitted, afterFund NONE, the rest is bad debt.
     */
    lossWaterfall: lossWaterfallSchema.prefault({}),
  })
  .superRefine((policy, context) => {
    for (const asset of Object.keys(policy.cascade?.assetNotionalCaps ?? {})) {
      if (!(asset in policy.assets)) {
        context.addIssue({
          code: "custom",
          path: ["cascade", "assetNotionalCaps", asset],
          message: "must be an asset of the policy: a cap on an asset it does not list would cap nothing",
        });
      }
    }
    const { afterFund, socialisedBase } = policy.lossWaterfall;
    if (afterFund === "SOCIALISED" && socialisedBase === "POSITIVE_EQUITY") {
      // The base would be every account of the currency, each valued at the loss: the engine reads only the
      // holders of the bankrupt position's instrument (adapters/counterparties.ts).
      context.addIssue({
        code: "custom",
        path: ["lossWaterfall", "socialisedBase"],
        message:
          'must be "OPPOSITE_NOTIONAL" when afterFund is SOCIALISED: the engine does not value every account of the currency for one loss (docs/liquidation.md, section 9)',
      });
    }
    if (dec(policy.call.exitBuffer).greaterThan(dec(policy.call.restoreBuffer))) {
      context.addIssue({
        code: "custom",
        path: ["call", "exitBuffer"],
        message: "must not exceed call.restoreBuffer, or paying the call would not cure it",
      });
    }
    if (!dec(policy.call.hardFloorRatio).lessThan(ONE)) {
      context.addIssue({ code: "custom", path: ["call", "hardFloorRatio"], message: "must be below 1" });
    }
    policy.call.reminderOffsetsSeconds.forEach((offset, index) => {
      if (offset >= policy.call.curePeriodSeconds) {
        context.addIssue({
          code: "custom",
          path: ["call", "reminderOffsetsSeconds", index],
          message: "must be before the deadline (below call.curePeriodSeconds)",
        });
      }
    });
    if (policy.assets[policy.currency]) {
      context.addIssue({
        code: "custom",
        path: ["assets", policy.currency],
        message: "the account currency is cash at price 1 and takes no haircut or requirement; remove it",
      });
    }
    for (const [asset, assetPolicy] of Object.entries(policy.assets)) {
      checkTiers(assetPolicy.longTiers, ["assets", asset, "longTiers"], context);
      if (assetPolicy.shortTiers)
        checkTiers(assetPolicy.shortTiers, ["assets", asset, "shortTiers"], context);
    }
    checkFeeRate(policy, context);
    for (const [instrument, instrumentPolicy] of Object.entries(policy.instruments)) {
      checkTiers(instrumentPolicy.tiers, ["instruments", instrument, "tiers"], context);
      if (!policy.assets[instrumentPolicy.underlying] && instrumentPolicy.underlying !== policy.currency) {
        context.addIssue({
          code: "custom",
          path: ["instruments", instrument, "underlying"],
          message: `asset ${instrumentPolicy.underlying} is not in assets`,
        });
      }
    }
  });

type TierInput = z.infer<typeof tierSchema>;

/**
 * liquidation.feeRate must not exceed what selling one unit frees at the lowest tier: an asset's haircut plus
 * its first long maintenance rate, its first short rate, an instrument's first rate. Otherwise a liquidation
 * could leave the account further from its target than before (Drift keeps its fee below the MMR).
 */
function checkFeeRate(
  policy: {
    liquidation: { feeRate?: string | undefined };
    assets: Record<string, { haircut: string; longTiers: TierInput[]; shortTiers?: TierInput[] | undefined }>;
    instruments: Record<string, { tiers: TierInput[] }>;
  },
  context: z.RefinementCtx,
): void {
  // Malformed decimals are reported by their own fields; this check skips them rather than throw.
  const valid = (text: string | undefined): Dec | null =>
    text !== undefined && isCanonicalDecimal(text) ? dec(text) : null;
  const feeRate = valid(policy.liquidation.feeRate);
  if (!feeRate) return;
  const firstRate = (tiers: readonly TierInput[]) => valid(tiers[0]?.maintenanceRate);
  const freed: Array<[string, Dec | null]> = [];
  for (const [asset, assetPolicy] of Object.entries(policy.assets)) {
    const haircut = valid(assetPolicy.haircut);
    const long = firstRate(assetPolicy.longTiers);
    freed.push([`assets.${asset} long`, haircut && long ? haircut.plus(long) : null]);
    if (assetPolicy.shortTiers) freed.push([`assets.${asset} short`, firstRate(assetPolicy.shortTiers)]);
  }
  for (const [instrument, instrumentPolicy] of Object.entries(policy.instruments)) {
    freed.push([`instruments.${instrument}`, firstRate(instrumentPolicy.tiers)]);
  }
  const [where, least] = freed.find(([, rate]) => rate !== null && feeRate.greaterThan(rate)) ?? [];
  if (where && least) {
    context.addIssue({
      code: "custom",
      path: ["liquidation", "feeRate"],
      message: `must not exceed ${least.toFixed()}, what a sale frees at the first tier of ${where} (haircut + maintenance rate)`,
    });
  }
}

function checkTiers(tiers: TierInput[], path: Array<string | number>, context: z.RefinementCtx): void {
  const derived = cumulativeMaintenanceAmounts(tiers);
  tiers.forEach((tier, index) => {
    const here = [...path, index];
    if (index === 0 && !dec(tier.notionalFloor).isZero()) {
      context.addIssue({
        code: "custom",
        path: [...here, "notionalFloor"],
        message: "the first tier must start at 0",
      });
    }
    if (dec(tier.initialRate).lessThan(dec(tier.maintenanceRate))) {
      context.addIssue({
        code: "custom",
        path: [...here, "initialRate"],
        message: "must be at least maintenanceRate",
      });
    }
    const previous = tiers[index - 1];
    if (previous) {
      if (!dec(tier.notionalFloor).greaterThan(dec(previous.notionalFloor))) {
        context.addIssue({
          code: "custom",
          path: [...here, "notionalFloor"],
          message: "tiers must rise by notional",
        });
      }
      if (dec(tier.maintenanceRate).lessThan(dec(previous.maintenanceRate))) {
        context.addIssue({
          code: "custom",
          path: [...here, "maintenanceRate"],
          message: "must not fall below the previous tier's",
        });
      }
    }
    const stated = tier.maintenanceAmount;
    const expected = derived[index];
    if (stated !== undefined && expected && !dec(stated).equals(expected)) {
      context.addIssue({
        code: "custom",
        path: [...here, "maintenanceAmount"],
        message: `must be ${expected.toFixed()} by Binance's rule: floor × (rate − previous rate) + previous amount`,
      });
    }
  });
}

/** Binance: amount_n = floor_n × (rate_n − rate_(n−1)) + amount_(n−1), amount_1 = 0. Exact. */
export function cumulativeMaintenanceAmounts(
  tiers: ReadonlyArray<Pick<TierInput, "notionalFloor" | "maintenanceRate">>,
): Dec[] {
  const amounts: Dec[] = [];
  tiers.forEach((tier, index) => {
    const previous = tiers[index - 1];
    const previousAmount = amounts[index - 1];
    amounts.push(
      previous && previousAmount
        ? dec(tier.notionalFloor)
            .times(dec(tier.maintenanceRate).minus(dec(previous.maintenanceRate)))
            .plus(previousAmount)
        : ZERO,
    );
  });
  return amounts;
}

export type PolicyDocument = z.input<typeof policySchema>;
export type ParsedPolicy = z.output<typeof policySchema>;

/** One requirement tier, compiled to decimals. */
export interface Tier {
  readonly notionalFloor: Dec;
  readonly maintenanceRate: Dec;
  readonly initialRate: Dec;
  readonly maintenanceAmount: Dec;
  /** Binance's cumulative amount for the initial rates, derived by the same rule. */
  readonly initialAmount: Dec;
}

export interface Volatility {
  readonly referenceVolatility: Dec;
  readonly slope: Dec;
  readonly maxMultiplier: Dec;
}

export interface AssetPolicy {
  readonly quantityScale: number;
  readonly priceScale: number;
  readonly haircut: Dec;
  readonly longTiers: readonly Tier[];
  readonly shortTiers: readonly Tier[] | undefined;
  readonly volatility: Volatility | undefined;
  readonly liquidateLast: boolean;
  /** The accepted price sources, or undefined for any. */
  readonly sources: ReadonlySet<string> | undefined;
}

export interface InstrumentPolicy {
  readonly underlying: string;
  readonly quantityScale: number;
  readonly tiers: readonly Tier[];
  readonly volatility: Volatility | undefined;
}

/** Aave v3.3's close factor, compiled (docs/liquidation.md, section 2). */
export interface CloseFactor {
  readonly factor: Dec;
  readonly healthFactorAbove: Dec;
  readonly minimumLegValue: Dec;
}

/** The policy with every decimal parsed and every tier's amounts derived: what the engine computes with. */
export interface Policy {
  readonly policyId: string;
  readonly version: number;
  readonly currency: string;
  readonly currencyScale: number;
  readonly assets: ReadonlyMap<string, AssetPolicy>;
  readonly instruments: ReadonlyMap<string, InstrumentPolicy>;
  readonly warningCushion: Dec;
  readonly restoreBuffer: Dec;
  readonly exitBuffer: Dec;
  readonly minimumTransferAmount: Dec;
  readonly threshold: Dec;
  readonly curePeriodSeconds: number;
  readonly reminderOffsetsSeconds: readonly number[];
  readonly hardFloorRatio: Dec;
  readonly callMetBy: CallMetBy;
  readonly hardFloorConfirmSeconds: number;
  readonly minimumCureAmount: Dec;
  readonly maxPauseSeconds: number;
  readonly limitPriceSlippage: Dec;
  readonly dustNotional: Dec;
  readonly liquidationRetrySeconds: number;
  readonly liquidationMaxAttempts: number;
  /** liquidation.feeRate: the fee on each step's notional (0 when omitted). */
  readonly liquidationFeeRate: Dec;
  /** liquidation.closeAllBelowShortfall, or null: off. */
  readonly closeAllBelowShortfall: Dec | null;
  /** liquidation.closeFactor, or null: none. */
  readonly closeFactor: CloseFactor | null;
  /** liquidation.hedgedPairs (false when omitted). */
  readonly hedgedPairs: boolean;
  /** liquidation.auction, or null: fixed limit prices. */
  readonly auction: AuctionPolicy | null;
  /** The circuitBreaker section, defaults applied; null: no breaker. */
  readonly circuitBreaker: CircuitBreakerPolicy | null;
  /** The cascade section, defaults applied; undefined: no caps. */
  readonly cascade: CascadePolicy | undefined;
  /** The lossWaterfall section, defaults applied (afterFund NONE when omitted). */
  readonly lossWaterfall: LossWaterfallPolicy;
  readonly priceMaxAgeSeconds: number;
  readonly priceMaxDivergence: Dec;
  readonly priceMinimumSources: number;
  readonly haltGraceSeconds: number;
  readonly priceMaxFutureSkewSeconds: number;
  readonly haltAlarmSeconds: number;
  /** notices.deliverWithinSeconds: how long a notice's delivery is tried before it is recorded undeliverable. */
  readonly noticeDeliverWithinSeconds: number;
  /** notices.whenUndelivered: what a liquidation waiting for an undeliverable call notice does. */
  readonly whenNoticeUndelivered: WhenNoticeUndelivered;
  /** notices.smsCountryCodes: the country codes an SMS may go to, or null for any. */
  readonly smsCountryCodes: readonly string[] | null;
  /** The document as given, for the audit record. */
  readonly document: ParsedPolicy;
}

export interface PolicyIssue {
  /** JSON path of the field, e.g. `$.assets.BTC.longTiers[1].maintenanceRate`. */
  readonly path: string;
  readonly message: string;
}

export class PolicyError extends Error {
  override readonly name = "PolicyError";
  constructor(readonly issues: readonly PolicyIssue[]) {
    super(`invalid policy:\n${issues.map((issue) => `  ${issue.path}: ${issue.message}`).join("\n")}`);
  }
}

/** Formats a zod path as a JSON path: `$.assets.BTC.longTiers[1]`. */
export function jsonPath(path: ReadonlyArray<PropertyKey>, root = "$"): string {
  return path.reduce<string>(
    (text, key) => (typeof key === "number" ? `${text}[${key}]` : `${text}.${String(key)}`),
    root,
  );
}

function compileTiers(tiers: readonly TierInput[]): Tier[] {
  const maintenanceAmounts = cumulativeMaintenanceAmounts(tiers);
  const initialAmounts = cumulativeMaintenanceAmounts(
    tiers.map((tier) => ({ notionalFloor: tier.notionalFloor, maintenanceRate: tier.initialRate })),
  );
  return tiers.map((tier, index) => ({
    notionalFloor: dec(tier.notionalFloor),
    maintenanceRate: dec(tier.maintenanceRate),
    initialRate: dec(tier.initialRate),
    maintenanceAmount: maintenanceAmounts[index] ?? ZERO,
    initialAmount: initialAmounts[index] ?? ZERO,
  }));
}

function compileVolatility(volatility: ParsedPolicy["assets"][string]["volatility"]): Volatility | undefined {
  return volatility
    ? {
        referenceVolatility: dec(volatility.referenceVolatility),
        slope: dec(volatility.slope),
        maxMultiplier: dec(volatility.maxMultiplier),
      }
    : undefined;
}

function compileLiquidationRules(liquidation: ParsedPolicy["liquidation"]) {
  const { closeFactor, auction, closeAllBelowShortfall } = liquidation;
  return {
    liquidationFeeRate: dec(liquidation.feeRate ?? "0"),
    closeAllBelowShortfall: closeAllBelowShortfall === undefined ? null : dec(closeAllBelowShortfall),
    closeFactor: closeFactor
      ? {
          factor: dec(closeFactor.factor),
          healthFactorAbove: dec(closeFactor.healthFactorAbove),
          minimumLegValue: dec(closeFactor.minimumLegValue),
        }
      : null,
    hedgedPairs: liquidation.hedgedPairs ?? false,
    auction: !auction
      ? null
      : auction.kind === "LINEAR"
        ? { ...auction, buf: dec(auction.buf), cusp: dec(auction.cusp) }
        : { ...auction, buf: dec(auction.buf), cusp: dec(auction.cusp), cut: dec(auction.cut) },
  } satisfies Partial<Policy>;
}

/** Validates a policy document and compiles it. Throws PolicyError naming every bad field. */
export function parsePolicy(document: unknown): Policy {
  const parsed = policySchema.safeParse(document);
  if (!parsed.success) {
    throw new PolicyError(
      parsed.error.issues.map((issue) => ({ path: jsonPath(issue.path), message: issue.message })),
    );
  }
  const parsedPolicy = parsed.data;
  return {
    policyId: parsedPolicy.policyId,
    version: parsedPolicy.version,
    currency: parsedPolicy.currency,
    currencyScale: parsedPolicy.currencyScale,
    assets: new Map(
      Object.entries(parsedPolicy.assets).map(([asset, a]) => [
        asset,
        {
          quantityScale: a.quantityScale,
          priceScale: a.priceScale,
          haircut: dec(a.haircut),
          longTiers: compileTiers(a.longTiers),
          shortTiers: a.shortTiers ? compileTiers(a.shortTiers) : undefined,
          volatility: compileVolatility(a.volatility),
          liquidateLast: a.liquidateLast,
          sources: a.sources ? new Set(a.sources) : undefined,
        },
      ]),
    ),
    instruments: new Map(
      Object.entries(parsedPolicy.instruments).map(([instrument, i]) => [
        instrument,
        {
          underlying: i.underlying,
          quantityScale: i.quantityScale,
          tiers: compileTiers(i.tiers),
          volatility: compileVolatility(i.volatility),
        },
      ]),
    ),
    warningCushion: dec(parsedPolicy.warning.cushion),
    restoreBuffer: dec(parsedPolicy.call.restoreBuffer),
    exitBuffer: dec(parsedPolicy.call.exitBuffer),
    minimumTransferAmount: dec(parsedPolicy.call.minimumTransferAmount),
    threshold: dec(parsedPolicy.call.threshold),
    curePeriodSeconds: parsedPolicy.call.curePeriodSeconds,
    reminderOffsetsSeconds: [...parsedPolicy.call.reminderOffsetsSeconds].sort((a, b) => a - b),
    hardFloorRatio: dec(parsedPolicy.call.hardFloorRatio),
    callMetBy: parsedPolicy.call.metBy,
    hardFloorConfirmSeconds: parsedPolicy.call.hardFloorConfirmSeconds,
    minimumCureAmount: dec(parsedPolicy.deposits.minimumCureAmount),
    maxPauseSeconds: parsedPolicy.deposits.maxPauseSeconds,
    limitPriceSlippage: dec(parsedPolicy.liquidation.limitPriceSlippage),
    dustNotional: dec(parsedPolicy.liquidation.dustNotional),
    liquidationRetrySeconds: parsedPolicy.liquidation.retrySeconds,
    liquidationMaxAttempts: parsedPolicy.liquidation.maxAttempts,
    ...compileLiquidationRules(parsedPolicy.liquidation),
    circuitBreaker: parsedPolicy.circuitBreaker ?? null,
    cascade: parsedPolicy.cascade,
    lossWaterfall: parsedPolicy.lossWaterfall,
    priceMaxAgeSeconds: parsedPolicy.prices.maxAgeSeconds,
    priceMaxDivergence: dec(parsedPolicy.prices.maxDivergence),
    priceMinimumSources: parsedPolicy.prices.minimumSources,
    haltGraceSeconds: parsedPolicy.prices.haltGraceSeconds,
    priceMaxFutureSkewSeconds: parsedPolicy.prices.maxFutureSkewSeconds,
    haltAlarmSeconds: parsedPolicy.prices.haltAlarmSeconds,
    noticeDeliverWithinSeconds: parsedPolicy.notices.deliverWithinSeconds,
    whenNoticeUndelivered: parsedPolicy.notices.whenUndelivered,
    smsCountryCodes: parsedPolicy.notices.smsCountryCodes ? [...parsedPolicy.notices.smsCountryCodes] : null,
    document: parsedPolicy,
  };
}

export class PolicySetError extends Error {
  override readonly name = "PolicySetError";
}

/**
 * A deployed policy set: a non-empty array of valid documents with distinct ids, each compiled, by id.
 * `source` names where the set came from in the messages. Throws PolicySetError naming the policy and
 * the field. The functions read their set with it, and the stack checks the set with it at synth.
 */
export function parsePolicySet(
  documents: unknown,
  source: string,
): ReadonlyMap<string, { readonly policy: Policy; readonly document: unknown }> {
  if (!Array.isArray(documents) || documents.length === 0) {
    throw new PolicySetError(`${source} must be a non-empty JSON array of policy documents`);
  }
  const entries = new Map<string, { readonly policy: Policy; readonly document: unknown }>();
  documents.forEach((document: unknown, index) => {
    let policy: Policy;
    try {
      policy = parsePolicy(document);
    } catch (error) {
      if (error instanceof PolicyError) {
        const detail = error.issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ");
        throw new PolicySetError(`policy ${index} in ${source}: ${detail}`);
      }
      throw error;
    }
    if (entries.has(policy.policyId)) {
      throw new PolicySetError(`policy ${policy.policyId} appears twice in ${source}`);
    }
    entries.set(policy.policyId, { policy, document });
  });
  return entries;
}
