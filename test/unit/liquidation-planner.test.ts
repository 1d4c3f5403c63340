/**
 * The liquidation planner (docs/liquidation.md): the least restoring sale net of the fee, Aave v3.3's close
 * factor, Drift's small shortfall closed in full, the dust rule, the order rule with hedged pairs, and its
 * properties. Every expected number is derived here from the formulas, not copied from a run.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type LiquidationPlan,
  type LiquidationStep,
  liquidateExposure,
  planLiquidation,
  restoresTarget,
  restoreTarget,
} from "../../functions/domain/calls.ts";
import { Dec, dec, ONE, quantize, Rounding, ZERO } from "../../functions/domain/money.ts";
import { type Policy, type PolicyDocument, parsePolicySet } from "../../functions/domain/policy.ts";
import { type Account, type Marks, valueAccount } from "../../functions/domain/valuation.ts";
import { account, flatTier, marks, policy, policyDocument } from "../support/domain-builders.ts";

type Liquidation = PolicyDocument["liquidation"];
const BASE_LIQUIDATION = policyDocument().liquidation;

/** A policy document with extra `liquidation` fields (the planner's rules) over the builders' neutral one. */
function withRules(document: Partial<PolicyDocument>, rules: Partial<Liquidation>): Policy {
  return policy({ ...document, liquidation: { ...BASE_LIQUIDATION, ...rules } });
}

const stepName = (step: LiquidationStep): string =>
  step.target.kind === "HOLDING" ? step.target.asset : step.target.instrument;

/** The account after the plan's steps, each at the mark, less its fee: what the planner assumed. */
function afterSteps(acct: Account, steps: readonly LiquidationStep[], m: Marks, pol: Policy): Account {
  return steps.reduce((working, step) => {
    const line = valueAccount(working, m, pol).lines.find(
      (candidate) =>
        candidate.kind === step.target.kind &&
        candidate.name === stepName(step) &&
        !candidate.quantity.isZero(),
    );
    if (!line) throw new Error(`no line for ${stepName(step)}`);
    return liquidateExposure(working, line, step.quantity, pol.liquidationFeeRate);
  }, acct);
}

const restoresAfter = (acct: Account, steps: readonly LiquidationStep[], m: Marks, pol: Policy): boolean =>
  restoresTarget(valueAccount(afterSteps(acct, steps, m, pol), m, pol), pol);

const planFor = (acct: Account, m: Marks, pol: Policy): LiquidationPlan =>
  planLiquidation(acct, valueAccount(acct, m, pol), m, pol);

const notionalOf = (plan: LiquidationPlan): Dec =>
  plan.steps.reduce((total, step) => total.plus(step.quantity.times(step.markPrice)), ZERO);

/** Smallest whole number ≥ x at a scale (the lot): the least restoring quantity of a flat-tier sale. */
const ceilTo = (value: Dec, scale: number): Dec => quantize(value, scale, Rounding.CEIL);

// The Reg T account of worked-examples: 200 XYZ with a $10,000 debit, 25% maintenance, whole shares.
// At price P: A = 200·P − 10,000 and M = 0.25·200·P. Each share sold at the mark keeps A (less the fee)
// and lowers M by 0.25·P, so with a fee f the least sale is n ≥ (M − A) / (P·(0.25 − f)).
const XYZ = { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") };
const regT = { assets: { XYZ } };
const bought = account({ cash: "-10000", holdings: { XYZ: "200" } });

describe("the policy's liquidation rules", () => {
  const readJson = (path: string): unknown =>
    JSON.parse(readFileSync(new URL(`../../${path}`, import.meta.url), "utf8"));

  it("leave the shipped policy and the example snapshot as they were, every rule off; the demo's sets only an auction and a fee", () => {
    const snapshot = readJson("docs/snapshots/crypto-called.json") as { policy: unknown };
    const sets = [
      parsePolicySet(readJson("lib/config/policies.json"), "policies.json"),
      parsePolicySet(readJson("lib/config/demo-policies.json"), "demo-policies.json"),
      parsePolicySet([snapshot.policy], "crypto-called.json"),
    ];
    for (const [policyId, { policy: parsed }] of sets.flatMap((set) => [...set])) {
      const demo = policyId === "crypto-demo";
      expect(Object.keys(parsed.document.liquidation).sort(), policyId).toEqual(
        [
          "dustNotional",
          "limitPriceSlippage",
          "maxAttempts",
          "retrySeconds",
          ...(demo ? ["auction", "feeRate"] : []),
        ].sort(),
      );
      // The demo's fee feeds its insurance fund: 0.4%, the most BTC-PERP's first maintenance rate allows.
      expect(parsed.liquidationFeeRate.toFixed(), policyId).toBe(demo ? "0.004" : "0");
      expect([parsed.closeAllBelowShortfall, parsed.closeFactor, parsed.hedgedPairs]).toEqual([
        null,
        null,
        false,
      ]);
      expect(parsed.auction === null, policyId).toBe(!demo);
    }
  });

  it("take Aave's defaults for an empty close factor", () => {
    const parsed = withRules({}, { closeFactor: {} });
    expect(parsed.closeFactor).toEqual({
      factor: dec("0.5"),
      healthFactorAbove: dec("0.95"),
      minimumLegValue: dec("2000"),
    });
  });
});

describe("how much: the least restoring sale", () => {
  it("sells exactly what restores the target, and leaves the account exactly at it", () => {
    const pol = withRules(regT, {});
    const m = marks({ XYZ: "64" });
    const before = valueAccount(bought, m, pol);
    const shares = before.maintenance.minus(before.adjustedEquity).dividedBy(dec("0.25").times(64));
    expect(shares.isInteger()).toBe(true); // 25 shares at $64: the target is met with equality
    const plan = planFor(bought, m, pol);
    expect(plan.steps).toHaveLength(1);
    expect(plan.steps[0]).toMatchObject({ side: "SELL", closesAll: false, limitPrice: dec("62.72") });
    expect(plan.steps[0]?.quantity.equals(shares)).toBe(true);
    const after = valueAccount(afterSteps(bought, plan.steps, m, pol), m, pol);
    expect(after.adjustedEquity.equals(restoreTarget(after, pol))).toBe(true);
    expect(plan.restoresTarget).toBe(true);
    // Exactly as before the rules existed: no fee, close factor or small-shortfall fields on the plan.
    expect(Object.keys(plan)).toEqual(["steps", "restoresTarget"]);
    expect(Object.keys(plan.steps[0] ?? {})).toEqual([
      "target",
      "side",
      "quantity",
      "markPrice",
      "limitPrice",
      "closesAll",
    ]);
  });

  it("includes the fee in what must be sold, and states it per step and in all", () => {
    const fee = dec("0.05");
    const pol = withRules(regT, { feeRate: "0.05" });
    const m = marks({ XYZ: "64" });
    const before = valueAccount(bought, m, pol);
    const shares = ceilTo(
      before.maintenance.minus(before.adjustedEquity).dividedBy(dec("64").times(dec("0.25").minus(fee))),
      0,
    );
    const plan = planFor(bought, m, pol);
    const [sale] = plan.steps;
    expect(sale?.quantity.equals(shares)).toBe(true); // 31.25 → 32 shares, against 25 without the fee
    expect(sale?.fee?.equals(shares.times(64).times(fee))).toBe(true);
    expect(plan.fee?.equals(sale?.fee ?? ZERO)).toBe(true);
    expect(restoresAfter(bought, plan.steps, m, pol)).toBe(true);
    const oneLess = [{ ...(sale as LiquidationStep), quantity: shares.minus(1) }];
    expect(restoresAfter(bought, oneLess, m, pol)).toBe(false);
  });

  it("refuses a fee above what a sale frees at the first tier", () => {
    expect(() => withRules(regT, { feeRate: "0.26" })).toThrow(/liquidation\.feeRate: must not exceed 0\.25/);
  });

  it("closes in full a remainder below the dust notional, and not one at it", () => {
    const m = marks({ XYZ: "52" });
    const plain = planFor(bought, m, withRules(regT, {}));
    const least = plain.steps[0]?.quantity ?? ZERO;
    const remainder = dec("200").minus(least).times(52);
    expect(remainder.greaterThan(0)).toBe(true);
    const atDust = planFor(bought, m, withRules(regT, { dustNotional: remainder.toFixed() }));
    expect(atDust.steps[0]?.quantity.equals(least)).toBe(true);
    const aboveDust = planFor(bought, m, withRules(regT, { dustNotional: remainder.plus("0.01").toFixed() }));
    expect(aboveDust.steps[0]).toMatchObject({ quantity: dec("200"), closesAll: true });
  });

  it("closes a small shortfall in full (Drift), and a larger one partially", () => {
    // Shortfall M − A = 50·P − (200·P − 10,000) = 10,000 − 150·P: 25 at $66.50, 1,000 at $60.
    const pol = withRules(regT, { closeAllBelowShortfall: "50" });
    const small = planFor(bought, marks({ XYZ: "66.5" }), pol);
    expect(dec("10000").minus(dec("150").times("66.5")).lessThan(50)).toBe(true);
    expect(small.closesInFull).toBe(true);
    expect(small.steps).toEqual([expect.objectContaining({ quantity: dec("200"), closesAll: true })]);
    const large = planFor(bought, marks({ XYZ: "60" }), pol);
    expect(large.closesInFull).toBe(false);
    expect(large.steps[0]?.closesAll).toBe(false);
  });
});

describe("Aave v3.3's close factor", () => {
  // 10 ETH (liquidation threshold 82.5%: rate 0.175, haircut 0) against a 15,000 cash loan, restoring to
  // 1.5 × the requirement. Aave's health factor is HF = 10·P·0.825 / 15,000; the engine's
  // (A − M + D) / D is the same number. With HF > 0.95 and both legs ≥ 2,000, one request may close at
  // most 50% of the debt, 7,500 of notional; otherwise 100%.
  const aave = (overrides: Partial<Liquidation> = {}) => {
    const base = policyDocument();
    return policy({
      assets: { ETH: { quantityScale: 4, priceScale: 2, haircut: "0", longTiers: flatTier("0.175", "0.2") } },
      call: { ...base.call, restoreBuffer: "0.5" },
      liquidation: { ...BASE_LIQUIDATION, closeFactor: {}, ...overrides },
    });
  };
  const borrower = account({ cash: "-15000", holdings: { ETH: "10" } });
  const aaveHealth = (eth: string, price: string, debt: string) =>
    dec(eth).times(price).times("0.825").dividedBy(debt);

  it("closes at most 50% of the debt while HF > 0.95 and both legs are ≥ 2,000", () => {
    const pol = aave();
    const m = marks({ ETH: "1745" });
    const health = aaveHealth("10", "1745", "15000"); // 0.95975
    expect(health.greaterThan("0.95")).toBe(true);
    const plan = planFor(borrower, m, pol);
    expect(plan.closeFactor?.healthFactor?.equals(quantize(health, 6, Rounding.FLOOR))).toBe(true);
    expect(plan.closeFactor?.factor.toFixed()).toBe("0.5");
    const cap = dec("15000").times("0.5");
    expect(plan.closeFactor?.maxNotional?.equals(cap)).toBe(true);
    // Restoring would take more than the cap: the plan stops at the cap's last whole lot.
    const unlimited = planFor(borrower, m, aave({ closeFactor: { factor: "0.999999" } }));
    expect(notionalOf(unlimited).greaterThan(cap)).toBe(true);
    expect(plan.steps[0]?.quantity.equals(quantize(cap.dividedBy(1745), 4, Rounding.DOWN))).toBe(true);
    expect(notionalOf(plan).lessThanOrEqualTo(cap)).toBe(true);
    expect(plan.restoresTarget).toBe(false);
    expect(plan.closeFactor?.binding).toBe(true);
  });

  it("closes up to 100% once HF ≤ 0.95", () => {
    const m = marks({ ETH: "1700" });
    expect(aaveHealth("10", "1700", "15000").lessThanOrEqualTo("0.95")).toBe(true); // 0.935
    const plan = planFor(borrower, m, aave());
    expect(plan.closeFactor?.factor.toFixed()).toBe("1");
    expect(plan.closeFactor?.maxNotional).toBeNull();
    expect(notionalOf(plan).greaterThan(dec("7500"))).toBe(true);
    expect(plan.restoresTarget).toBe(true);
  });

  it("closes up to 100% when a leg is below 2,000, at the same HF", () => {
    const small = account({ cash: "-1500", holdings: { ETH: "1" } });
    const m = marks({ ETH: "1745" });
    expect(aaveHealth("1", "1745", "1500").greaterThan("0.95")).toBe(true);
    const plan = planFor(small, m, aave());
    expect(plan.closeFactor).toMatchObject({ factor: ONE, maxNotional: null, binding: false });
    expect(plan.restoresTarget).toBe(true);
  });

  it("is lifted for a small shortfall closed in full", () => {
    const m = marks({ ETH: "1745" });
    const plan = planFor(borrower, m, aave({ closeAllBelowShortfall: "1000000" }));
    expect(plan.closesInFull).toBe(true);
    expect(plan.closeFactor?.factor.toFixed()).toBe("1");
    expect(plan.steps[0]).toMatchObject({ quantity: dec("10"), closesAll: true });
  });
});

describe("in what order: a multi-asset account", () => {
  // Rule 1: derivatives first; rule 2: a hedged pair together; rule 4: riskiest haircut first; rule 5:
  // liquidate-last last. The account is long 1 BTC spot and short 0.6 BTC-PERP (0.6 hedged), long 2
  // ETH-PERP, and holds SOL (haircut 0.3), ETH (0.2) and a liquidate-last stablecoin, against a cash loan.
  // What each unit closed in full adds to A − M (restoreBuffer 0): the pair 0.6 × 50,000 × (0.1 + 0.05 +
  // 0.05) = 6,000; ETH-PERP 6,000 × 0.05 = 300; SOL 10,000 × 0.4 = 4,000; ETH 12,000 × 0.25 = 3,000; the
  // other 0.4 BTC 20,000 × 0.15 = 3,000; USDT 20,000 × 0.04 = 800. A − M = cash + 74,900.
  const asset = (haircut: string, rate: string, liquidateLast = false) => ({
    quantityScale: 4,
    priceScale: 2,
    haircut,
    longTiers: flatTier(rate),
    shortTiers: flatTier(rate),
    liquidateLast,
  });
  const document = {
    assets: {
      BTC: asset("0.1", "0.05"),
      ETH: asset("0.2", "0.05"),
      SOL: asset("0.3", "0.1"),
      USDT: asset("0.02", "0.02", true),
    },
    instruments: {
      "BTC-PERP": { underlying: "BTC", quantityScale: 3, tiers: flatTier("0.05") },
      "ETH-PERP": { underlying: "ETH", quantityScale: 3, tiers: flatTier("0.05") },
    },
  };
  const prices = marks({ BTC: "50000", ETH: "3000", SOL: "100", USDT: "1" });
  const book = account({
    cash: "-87000",
    holdings: { BTC: "1", ETH: "4", SOL: "100", USDT: "20000" },
    positions: [
      { instrument: "BTC-PERP", size: "-0.6", entryPrice: "50000" },
      { instrument: "ETH-PERP", size: "2", entryPrice: "3000" },
    ],
  });

  it("without pairs, closes the perpetual leg of the hedge alone", () => {
    // −12,100 + 1,500 (BTC-PERP alone) + 300 + 4,000 + 3,000 leaves 3,300 for BTC's 7,500 per coin.
    const plan = planFor(book, prices, withRules(document, {}));
    expect(plan.steps.map(stepName)).toEqual(["BTC-PERP", "ETH-PERP", "SOL", "ETH", "BTC"]);
    expect(plan.steps.at(-1)?.quantity.equals(dec("3300").dividedBy("7500"))).toBe(true);
    expect(plan.steps[0]).toMatchObject({ side: "BUY", quantity: dec("0.6"), closesAll: true });
  });

  it("with pairs, reduces the hedge together, then the riskiest collateral, and the liquidate-last asset last", () => {
    const pol = withRules(document, { hedgedPairs: true });
    const plan = planFor(book, prices, pol);
    expect(plan.steps.map(stepName)).toEqual(["BTC-PERP", "BTC", "ETH-PERP", "SOL", "ETH"]);
    const [perp, spot] = plan.steps;
    expect(perp).toMatchObject({ side: "BUY", hedgedWith: { kind: "HOLDING", asset: "BTC" } });
    expect(spot).toMatchObject({ side: "SELL", hedgedWith: { kind: "POSITION", instrument: "BTC-PERP" } });
    expect(perp?.quantity.equals(spot?.quantity ?? ZERO)).toBe(true);
    expect(perp?.closesAll).toBe(true); // the whole hedged 0.6, leaving 0.4 BTC unhedged for rule 4
    expect(plan.steps.slice(0, -1).every((step) => step.closesAll || step.hedgedWith)).toBe(true);
    expect(plan.steps.some((step) => stepName(step) === "USDT")).toBe(false);
    const last = plan.steps.at(-1) as LiquidationStep;
    // −12,100 + 6,000 + 300 + 4,000 leaves 1,800 of ETH's 3,000 for 4 ETH.
    expect(last.quantity.equals(dec("1800").dividedBy("3000").times(4))).toBe(true);
    expect(last.closesAll).toBe(false);
    expect(restoresAfter(book, plan.steps, prices, pol)).toBe(true);
    const oneLotLess = [...plan.steps.slice(0, -1), { ...last, quantity: last.quantity.minus("0.0001") }];
    expect(restoresAfter(book, oneLotLess, prices, pol)).toBe(false);
  });

  it("reaches the liquidate-last asset only when everything else does not restore", () => {
    // A − M = −16,600: everything but USDT frees 16,300; the last 300 of USDT's 800 per 20,000.
    const deeper = { ...book, cash: dec("-91500") };
    const plan = planFor(deeper, prices, withRules(document, { hedgedPairs: true }));
    expect(plan.steps.map(stepName)).toEqual(["BTC-PERP", "BTC", "ETH-PERP", "SOL", "ETH", "BTC", "USDT"]);
    expect(plan.steps.slice(0, -1).every((step) => step.closesAll || step.hedgedWith)).toBe(true);
    expect(plan.steps.at(-1)?.quantity.equals(dec("300").dividedBy("800").times(20000))).toBe(true);
  });
});

// Properties over random accounts and policies: three assets, one perpetual on the first.
const decimal = (units: bigint | number, scale: number): string =>
  new Dec(units.toString())
    .dividedBy(new Dec(10).toPower(scale))
    .toFixed(scale)
    .replace(/^-0(\.0+)?$/, "0");

const bps = (units: number): string => decimal(units, 4);

interface Rules {
  readonly rates: readonly number[];
  readonly haircuts: readonly number[];
  readonly secondTier: readonly [number, number] | null;
  readonly restoreBuffer: number;
  readonly feeShare: number;
  readonly dust: number;
  readonly hedgedPairs: boolean;
  readonly closeAllBelow: number | null;
  readonly closeFactor: { readonly factor: number; readonly above: number; readonly minimum: number } | null;
}

const rulesArbitrary: fc.Arbitrary<Rules> = fc.record({
  rates: fc.array(fc.integer({ min: 50, max: 2_500 }), { minLength: 4, maxLength: 4 }),
  haircuts: fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 3, maxLength: 3 }),
  secondTier: fc.option(
    fc.tuple(fc.integer({ min: 1_000, max: 2_000_000 }), fc.integer({ min: 0, max: 800 })),
  ),
  restoreBuffer: fc.integer({ min: 0, max: 2_000 }),
  feeShare: fc.integer({ min: 0, max: 100 }),
  dust: fc.integer({ min: 0, max: 500_000 }),
  hedgedPairs: fc.boolean(),
  closeAllBelow: fc.option(fc.integer({ min: 0, max: 100_000 })),
  closeFactor: fc.option(
    fc.record({
      factor: fc.integer({ min: 1, max: 99 }),
      above: fc.integer({ min: 0, max: 120 }),
      minimum: fc.integer({ min: 0, max: 50_000 }),
    }),
  ),
});

/** A policy from the rules: the fee is a share of the lowest first-tier rate, so the policy accepts it. */
function policyFrom(rules: Rules, withCloseFactor: boolean): Policy {
  const tiers = (rate: number) => {
    const first = { notionalFloor: "0", maintenanceRate: bps(rate), initialRate: bps(rate) };
    if (!rules.secondTier) return [first];
    const [floor, step] = rules.secondTier;
    const second = Math.min(10_000, rate + step);
    return [first, { notionalFloor: String(floor), maintenanceRate: bps(second), initialRate: bps(second) }];
  };
  const [aaa = 100, bbb = 100, ccc = 100, perp = 100] = rules.rates;
  const asset = (rate: number, haircut: number) => ({
    quantityScale: 4,
    priceScale: 2,
    haircut: bps(haircut),
    longTiers: tiers(rate),
    shortTiers: tiers(rate),
  });
  const fee = Math.floor((Math.min(aaa, bbb, ccc, perp) * rules.feeShare) / 100);
  const base = policyDocument();
  const closeFactor = withCloseFactor ? rules.closeFactor : null;
  return policy({
    assets: {
      AAA: asset(aaa, rules.haircuts[0] ?? 0),
      BBB: asset(bbb, rules.haircuts[1] ?? 0),
      CCC: asset(ccc, rules.haircuts[2] ?? 0),
    },
    instruments: { "AAA-PERP": { underlying: "AAA", quantityScale: 3, tiers: tiers(perp) } },
    call: { ...base.call, restoreBuffer: bps(rules.restoreBuffer) },
    liquidation: {
      ...BASE_LIQUIDATION,
      dustNotional: decimal(rules.dust, 2),
      feeRate: bps(fee),
      hedgedPairs: rules.hedgedPairs,
      ...(rules.closeAllBelow === null ? {} : { closeAllBelowShortfall: decimal(rules.closeAllBelow, 2) }),
      ...(closeFactor
        ? {
            closeFactor: {
              factor: decimal(closeFactor.factor, 2),
              healthFactorAbove: decimal(closeFactor.above, 2),
              minimumLegValue: String(closeFactor.minimum),
            },
          }
        : {}),
    },
  });
}

const accountArbitrary: fc.Arbitrary<Account> = fc
  .record({
    cash: fc.bigInt({ min: -50_000_000n, max: 50_000_000n }),
    holdings: fc.array(
      fc.tuple(fc.constantFrom("AAA", "BBB", "CCC"), fc.bigInt({ min: -2_000_000n, max: 5_000_000n })),
      {
        maxLength: 3,
      },
    ),
    perp: fc.option(
      fc.tuple(fc.bigInt({ min: -50_000n, max: 50_000n }), fc.integer({ min: 1_000, max: 50_000 })),
    ),
  })
  .map(({ cash, holdings, perp }) =>
    account({
      cash: decimal(cash, 2),
      holdings: Object.fromEntries(holdings.map(([asset, units]) => [asset, decimal(units, 4)])),
      positions: perp
        ? [{ instrument: "AAA-PERP", size: decimal(perp[0], 3), entryPrice: String(perp[1]) }]
        : [],
    }),
  );

const marksArbitrary = fc
  .tuple(...["AAA", "BBB", "CCC"].map(() => fc.integer({ min: 100, max: 5_000_000 })))
  .map(([a = 100, b = 100, c = 100]) =>
    marks({ AAA: decimal(a, 2), BBB: decimal(b, 2), CCC: decimal(c, 2) }),
  );

/** Every exposure closed in full at the mark, with the fee. */
function closedOut(acct: Account, m: Marks, pol: Policy): Account {
  return valueAccount(acct, m, pol).lines.reduce(
    (working, line) => liquidateExposure(working, line, line.quantity.abs(), pol.liquidationFeeRate),
    acct,
  );
}

/**
 * The account with its cash set so that it is below its target by `share`% of what closing everything
 * would free (at least a cent): most plans then restore, and some cannot.
 */
function nearTarget(acct: Account, m: Marks, pol: Policy, share: number): Account {
  const zeroCash = { ...acct, cash: ZERO };
  const overTarget = (valuation: ReturnType<typeof valueAccount>) =>
    valuation.adjustedEquity.minus(restoreTarget(valuation, pol));
  const now = overTarget(valueAccount(zeroCash, m, pol));
  const freed = overTarget(valueAccount(closedOut(zeroCash, m, pol), m, pol)).minus(now);
  const deficit = quantize(freed.times(share).dividedBy(100), 2, Rounding.UP).plus("0.01");
  return { ...acct, cash: quantize(now.negated().minus(deficit), 2, Rounding.FLOOR) };
}

const lotOf = (step: LiquidationStep): Dec => (step.target.kind === "HOLDING" ? dec("0.0001") : dec("0.001"));

const SHARE = fc.integer({ min: 0, max: 130 });

describe("planner properties", () => {
  it("restores the target whenever closing everything does, and its last partial step is minimal to one lot", () => {
    fc.assert(
      fc.property(accountArbitrary, rulesArbitrary, marksArbitrary, SHARE, (drawn, rules, m, share) => {
        const pol = policyFrom(rules, false);
        const acct = nearTarget(drawn, m, pol, share);
        const valuation = valueAccount(acct, m, pol);
        fc.pre(valuation.adjustedEquity.lessThan(restoreTarget(valuation, pol)));
        const plan = planLiquidation(acct, valuation, m, pol);
        const closingAllRestores = restoresTarget(valueAccount(closedOut(acct, m, pol), m, pol), pol);
        expect(plan.restoresTarget).toBe(closingAllRestores);
        expect(restoresAfter(acct, plan.steps, m, pol)).toBe(plan.restoresTarget);
        const last = plan.steps.at(-1);
        if (!plan.restoresTarget || plan.closesInFull || !last || last.closesAll) return;
        const partner = last.hedgedWith ? plan.steps.at(-2) : undefined;
        if (partner && !partner.quantity.equals(last.quantity)) return; // a leg closed in full as dust
        const lot = partner ? dec("0.001") : lotOf(last);
        const fewer = plan.steps.map((step, index) =>
          step === last || (partner && index === plan.steps.length - 2)
            ? { ...step, quantity: step.quantity.minus(lot) }
            : step,
        );
        expect(restoresAfter(acct, fewer, m, pol)).toBe(false);
      }),
      { numRuns: 250 },
    );
  });

  it("never closes more notional than the close factor allows, and applies it exactly when Aave would", () => {
    fc.assert(
      fc.property(accountArbitrary, rulesArbitrary, marksArbitrary, SHARE, (drawn, rules, m, share) => {
        fc.pre(rules.closeFactor !== null);
        const pol = policyFrom(rules, true);
        const acct = nearTarget(drawn, m, pol, share);
        const valuation = valueAccount(acct, m, pol);
        fc.pre(valuation.adjustedEquity.lessThan(restoreTarget(valuation, pol)));
        const plan = planLiquidation(acct, valuation, m, pol);
        const decision = plan.closeFactor;
        if (!decision || !pol.closeFactor) throw new Error("the close factor is set");
        if (decision.maxNotional !== null) {
          expect(notionalOf(plan).lessThanOrEqualTo(decision.maxNotional)).toBe(true);
          expect(decision.maxNotional.equals(pol.closeFactor.factor.times(decision.debt))).toBe(true);
        }
        // The legs and the health factor, from the lines: D owes, C owns, a position's notional in both.
        let debt = Dec.max(ZERO, valuation.cash.negated());
        let collateral = Dec.max(ZERO, valuation.cash);
        for (const line of valuation.lines) {
          const isPosition = line.kind === "POSITION";
          if (isPosition || line.value.isNegative()) debt = debt.plus(line.value.abs());
          if (isPosition || line.value.greaterThan(0)) collateral = collateral.plus(line.value.abs());
        }
        const health = debt.isZero()
          ? null
          : valuation.adjustedEquity.minus(valuation.maintenance).plus(debt).dividedBy(debt);
        const qualifies =
          !plan.closesInFull &&
          health !== null &&
          health.greaterThan(pol.closeFactor.healthFactorAbove) &&
          debt.greaterThanOrEqualTo(pol.closeFactor.minimumLegValue) &&
          collateral.greaterThanOrEqualTo(pol.closeFactor.minimumLegValue);
        const fellBack = qualifies && decision.maxNotional === null; // less than one lot: made without it
        expect(decision.factor.equals(qualifies && !fellBack ? pol.closeFactor.factor : ONE)).toBe(true);
        if (fellBack) expect(planFor(acct, m, policyFrom(rules, false)).steps).toEqual(plan.steps);
      }),
      { numRuns: 250 },
    );
  });
});
