/**
 * The float screen (functions/domain/screen.ts) against the exact decimal reference: every decision on whole
 * generated books, and adversarial accounts on and around each line. No timings here: see `npm run bench`.
 */
import { describe, expect, it } from "vitest";
import { Band, type GeneratedBook, generateBook } from "../../bench/book.ts";
import { sizeCall } from "../../functions/domain/calls.ts";
import { dec, ONE, Rounding, toFixedString } from "../../functions/domain/money.ts";
import type { Policy } from "../../functions/domain/policy.ts";
import {
  callAmountOf,
  compileAccounts,
  exactDecision,
  MarginState,
  Recheck,
  type ScreenResult,
  STATE_NAMES,
  screenBook,
} from "../../functions/domain/screen.ts";
import {
  type Account,
  type Mark,
  type Marks,
  ratioBelow,
  ValuationError,
  valueAccount,
} from "../../functions/domain/valuation.ts";
import { account, flatTier, marks, policy } from "../support/domain-builders.ts";

/** The reference, written out independently of screen.ts: valueAccount, sizeCall and ratioBelow. */
function reference(subject: Account, prices: Marks, rules: Policy): { state: string; callAmount: string } {
  const valuation = valueAccount(subject, prices, rules);
  const sizing = sizeCall(valuation, rules);
  const state = sizing.inBreach
    ? "BREACH"
    : ratioBelow(valuation, ONE.plus(rules.warningCushion))
      ? "WARNING"
      : "HEALTHY";
  return { state, callAmount: toFixedString(sizing.amount, rules.currencyScale, Rounding.UP) };
}

const decisionOf = (result: ScreenResult, index: number) => ({
  state: STATE_NAMES[result.state[index] ?? 0],
  callAmount: callAmountOf(result, index),
});

/** Every account of the book: the screen's decision against the reference's. Returns the screen result. */
function expectIdenticalDecisions(generated: GeneratedBook): ScreenResult {
  const { book, marks: prices, policy: rules } = generated;
  const result = screenBook(book, prices, rules);
  const differences: string[] = [];
  const states = new Map<string, number>();
  for (let index = 0; index < book.size; index++) {
    const expected = reference(book.account(index), prices, rules);
    const actual = decisionOf(result, index);
    states.set(expected.state, (states.get(expected.state) ?? 0) + 1);
    if (actual.state !== expected.state || actual.callAmount !== expected.callAmount) {
      differences.push(`${index}: screen ${JSON.stringify(actual)}, reference ${JSON.stringify(expected)}`);
    }
  }
  expect(differences.slice(0, 10)).toEqual([]);
  expect(differences).toHaveLength(0);
  // A realistic book has every bucket, and the recheck paths are exercised.
  expect([...states.keys()].sort()).toEqual(["BREACH", "HEALTHY", "WARNING"]);
  expect(result.rechecked.byReason.BREACH).toBeGreaterThan(0);
  expect(result.rechecked.byReason.NEAR_LINE).toBeGreaterThan(0);
  expect(result.rechecked.byReason.TIER_FLOOR).toBeGreaterThan(0);
  expect(result.rechecked.byReason.UNSCREENABLE).toBe(0);
  // Every account in breach was rechecked (its amount is computed in decimals); every account built with a
  // notional exactly on a tier floor was sent to exact for it.
  for (let index = 0; index < book.size; index++) {
    if (result.state[index] === MarginState.BREACH) expect(result.recheck[index]).not.toBe(Recheck.NONE);
    if (generated.bands[index] === Band.TIER_FLOOR) expect(result.recheck[index]).toBe(Recheck.TIER_FLOOR);
  }
  return result;
}

describe("the screen on whole generated books decides exactly as the decimal reference", () => {
  // More accounts exactly on a line or a tier floor than the benchmark's book has, to exercise those paths.
  const mix = { onLine: 0.004, tierFloor: 0.002 };

  it("a mixed book: 50,000 accounts of 1–20 holdings and positions", () => {
    const generated = generateBook({ size: 50_000, seed: 11, lines: "mixed", mix });
    const result = expectIdenticalDecisions(generated);
    expect(result.rechecked.total).toBeLessThan(generated.book.size * 0.05);
  }, 120_000);

  it("50,000 accounts of five lines (the benchmark's book, with more on the lines)", () => {
    const generated = generateBook({ size: 50_000, seed: 2, lines: 5, mix });
    expectIdenticalDecisions(generated);
  }, 120_000);

  it("the same accounts compiled from their decimals decide the same as compiled from their units", () => {
    const generated = generateBook({ size: 5_000, seed: 5, lines: "mixed", mix });
    const fromUnits = screenBook(generated.book, generated.marks, generated.policy);
    const compiled = compileAccounts(generated.accounts(), generated.policy);
    const fromDecimals = screenBook(compiled, generated.marks, generated.policy);
    expect(fromDecimals.rechecked).toEqual(fromUnits.rechecked);
    for (let index = 0; index < generated.book.size; index++) {
      expect(decisionOf(fromDecimals, index)).toEqual(decisionOf(fromUnits, index));
    }
  }, 60_000);
});

describe("adversarial accounts on the lines go to the exact path and agree", () => {
  // Haircut-free, flat 25% maintenance. FINE has quantities to 18 places: one tick is 10^-18 of a share,
  // far below what a double resolves next to 100 shares.
  const rules = policy({
    warning: { cushion: "0.10" },
    call: {
      restoreBuffer: "0.05",
      exitBuffer: "0",
      minimumTransferAmount: "0",
      threshold: "0",
      curePeriodSeconds: 86_400,
      reminderOffsetsSeconds: [],
      hardFloorRatio: "0.5",
    },
    assets: {
      XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") },
      FINE: {
        quantityScale: 18,
        priceScale: 2,
        haircut: "0",
        longTiers: flatTier("0.25", "0.5"),
        shortTiers: flatTier("0.30", "0.5"),
      },
      TIER: {
        quantityScale: 18,
        priceScale: 2,
        haircut: "0.10",
        longTiers: [
          { notionalFloor: "0", maintenanceRate: "0.05", initialRate: "0.10" },
          { notionalFloor: "10000", maintenanceRate: "0.10", initialRate: "0.20" },
          { notionalFloor: "50000", maintenanceRate: "0.20", initialRate: "0.40" },
        ],
      },
      VOL: {
        quantityScale: 8,
        priceScale: 2,
        haircut: "0.20",
        longTiers: [
          { notionalFloor: "0", maintenanceRate: "0.10", initialRate: "0.20" },
          { notionalFloor: "100000", maintenanceRate: "0.15", initialRate: "0.30" },
        ],
        volatility: { referenceVolatility: "0.50", slope: "1", maxMultiplier: "3" },
      },
    },
    instruments: {
      "TIER-PERP": {
        underlying: "TIER",
        quantityScale: 3,
        tiers: [
          { notionalFloor: "0", maintenanceRate: "0.01", initialRate: "0.02" },
          { notionalFloor: "50000", maintenanceRate: "0.02", initialRate: "0.04" },
        ],
      },
    },
  });
  const prices: Map<string, Mark> = marks({ XYZ: "100", FINE: "100", TIER: "100", VOL: "1234.56" });
  prices.set("VOL", { price: dec("1234.56"), realizedVolatility: dec("0.8137") });

  // 100 FINE at 100: value 10,000, requirement 2,500, adjusted = cash + 10,000.
  // Ratio exactly 1 at cash −7,500; exactly 1.10 (the warning line) at cash −7,250.
  const cases: Array<{ name: string; subject: Account; path: number; state: string; amount?: string }> = [
    {
      name: "ratio exactly 1: not in breach (the ratio is not below 1), in the warning zone",
      subject: account({ cash: "-7500", holdings: { FINE: "100" } }),
      path: Recheck.NEAR_LINE,
      state: "WARNING",
    },
    {
      name: "ratio one 10^-18 share above 1",
      subject: account({ cash: "-7500", holdings: { FINE: "100.000000000000000001" } }),
      path: Recheck.NEAR_LINE,
      state: "WARNING",
    },
    {
      name: "ratio one 10^-18 share below 1: in breach, a call of one cent (rounded up)",
      subject: account({ cash: "-7500", holdings: { FINE: "99.999999999999999999" } }),
      path: Recheck.NEAR_LINE,
      state: "BREACH",
      amount: "125.01",
    },
    {
      name: "ratio one cent below 1: decided in floats, the amount in decimals",
      subject: account({ cash: "-7500.01", holdings: { FINE: "100" } }),
      path: Recheck.BREACH,
      state: "BREACH",
      amount: "125.01",
    },
    {
      name: "ratio one cent above 1: decided in floats alone",
      subject: account({ cash: "-7499.99", holdings: { FINE: "100" } }),
      path: Recheck.NONE,
      state: "WARNING",
    },
    {
      name: "ratio exactly 1 + cushion: healthy",
      subject: account({ cash: "-7250", holdings: { FINE: "100" } }),
      path: Recheck.NEAR_LINE,
      state: "HEALTHY",
    },
    {
      name: "one 10^-18 share below 1 + cushion: warning",
      subject: account({ cash: "-7250", holdings: { FINE: "99.999999999999999999" } }),
      path: Recheck.NEAR_LINE,
      state: "WARNING",
    },
    {
      name: "one 10^-18 share above 1 + cushion: healthy",
      subject: account({ cash: "-7250", holdings: { FINE: "100.000000000000000001" } }),
      path: Recheck.NEAR_LINE,
      state: "HEALTHY",
    },
    {
      name: "ratio exactly 1 with a borrowed holding and a cash surplus",
      // −100 FINE: value −10,000, requirement 3,000; adjusted = cash − 10,000 = 3,000.
      subject: account({ cash: "13000", holdings: { FINE: "-100" } }),
      path: Recheck.NEAR_LINE,
      state: "WARNING",
    },
    {
      name: "notional exactly on a tier floor (10,000)",
      subject: account({ cash: "-8000", holdings: { TIER: "100" } }),
      path: Recheck.TIER_FLOOR,
      state: "HEALTHY",
    },
    {
      name: "notional one 10^-18 unit below a tier floor",
      subject: account({ cash: "-8000", holdings: { TIER: "99.999999999999999999" } }),
      path: Recheck.TIER_FLOOR,
      state: "HEALTHY",
    },
    {
      name: "notional one 10^-18 unit above a tier floor, in breach",
      // adjusted = 9,000 + cash; requirement 10,000 × 0.10 − 500 = 500: breach below cash −8,500.
      subject: account({ cash: "-8600", holdings: { TIER: "100.000000000000000001" } }),
      path: Recheck.TIER_FLOOR,
      state: "BREACH",
      // target 1.05 × 500.00000000000000001, less 400.00000000000000009: 124.99999999999999992…, up to 125.00.
      amount: "125.00",
    },
    {
      name: "a perpetual's notional exactly on its tier floor (50,000)",
      subject: account({ positions: [{ instrument: "TIER-PERP", size: "-500", entryPrice: "99.5" }] }),
      path: Recheck.TIER_FLOOR,
      state: "BREACH",
    },
    {
      name: "no lines and no cash: nothing to decide in floats, healthy",
      subject: account({}),
      path: Recheck.NEAR_LINE,
      state: "HEALTHY",
    },
    {
      name: "no lines and a cash debt: no requirement, negative adjusted equity: breach",
      subject: account({ cash: "-100" }),
      path: Recheck.BREACH,
      state: "BREACH",
      amount: "100.00",
    },
    {
      name: "a currency holding is cash; zero lines are no lines",
      subject: account({
        cash: "-7000",
        holdings: { USD: "-500", FINE: "100", XYZ: "0" },
        positions: [{ instrument: "TIER-PERP", size: "0", entryPrice: "1" }],
      }),
      path: Recheck.NEAR_LINE,
      state: "WARNING",
    },
    {
      name: "volatility-scaled haircut and tiers, decided in floats",
      subject: account({ cash: "-50000", holdings: { VOL: "100", XYZ: "3" } }),
      path: Recheck.NONE,
      state: "HEALTHY",
    },
    {
      name: "huge and tiny magnitudes together",
      subject: account({
        cash: "-1000000000000000000000",
        holdings: { FINE: "20000000000000000000.000000000000000001", XYZ: "1" },
      }),
      path: Recheck.NONE,
      state: "HEALTHY",
    },
  ];

  const compiled = compileAccounts(
    cases.map((entry) => entry.subject),
    rules,
  );
  const result = screenBook(compiled, prices, rules);

  it.each(cases.map((entry, index) => [entry.name, entry, index] as const))("%s", (_name, entry, index) => {
    const expected = reference(entry.subject, prices, rules);
    expect(expected.state).toBe(entry.state);
    if (entry.amount !== undefined) expect(expected.callAmount).toBe(entry.amount);
    expect(decisionOf(result, index)).toEqual(expected);
    expect(result.recheck[index]).toBe(entry.path);
    expect(exactDecision(entry.subject, prices, rules)).toEqual({
      state: STATE_NAMES.indexOf(expected.state as (typeof STATE_NAMES)[number]),
      callAmount: expected.callAmount,
    });
  });

  it("exact ties in decimals that doubles do not represent: every one goes to exact and agrees", () => {
    // Haircut 0.15, rate 0.075, prices in cents, quantities to 4 places: in doubles the tie is off by a few
    // ulps either way, so only the bound keeps the floats from deciding it.
    const ugly = policy({
      ...rules.document,
      assets: {
        ...rules.document.assets,
        UGLY: {
          quantityScale: 4,
          priceScale: 2,
          haircut: "0.15",
          longTiers: flatTier("0.075", "0.15"),
          shortTiers: flatTier("0.135", "0.2"),
        },
      },
      instruments: {
        "UGLY-PERP": {
          underlying: "UGLY",
          quantityScale: 3,
          tiers: [
            { notionalFloor: "0", maintenanceRate: "0.013", initialRate: "0.026" },
            { notionalFloor: "5000000", maintenanceRate: "0.027", initialRate: "0.054" },
          ],
        },
      },
    });
    const uglyMarks: Map<string, Mark> = marks({ XYZ: "100", UGLY: "12.37", FINE: "0.1" });
    let seed = 12_345; // Park–Miller: deterministic, and its high bits are fine for small draws
    const next = (modulus: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return Math.floor((seed / 2_147_483_647) * modulus);
    };
    const NUDGES = ["0", "0", "0.00000000000000000001", "-0.00000000000000000001"].concat([
      "0.000000000001",
      "-0.000000000001",
      "0.000000001",
      "-0.000000001",
    ]);
    const subjects: Account[] = [];
    const onTheLine: boolean[] = [];
    for (let index = 0; index < 400; index++) {
      const holdings: Record<string, string> = {
        UGLY: `${next(2) ? "-" : ""}${1 + next(5000)}.${String(next(10_000)).padStart(4, "0")}`,
      };
      if (next(2)) holdings.FINE = `${1 + next(900)}.${String(next(1000)).padStart(3, "0")}`;
      const positions = next(2)
        ? [
            {
              instrument: "UGLY-PERP",
              size: `${next(2) ? "-" : ""}${1 + next(300)}.${next(10)}`,
              entryPrice: "11.93",
            },
          ]
        : [];
      const unfunded = valueAccount(account({ holdings, positions }), uglyMarks, ugly);
      const k = next(2) ? ONE : ONE.plus(ugly.warningCushion);
      const tie = unfunded.maintenance.times(k).minus(unfunded.adjustedEquity);
      // On the line, 10^-20 either side (far inside any double's reach), or 10^-12 and 10^-9 either side
      // (about the size of the float error: decided by the floats or not, the decision must agree).
      const nudge = NUDGES[next(NUDGES.length)] ?? "0";
      subjects.push(account({ cash: tie.plus(dec(nudge)).toFixed(), holdings, positions }, `tie-${index}`));
      onTheLine.push(nudge.replace(/[-0.]/g, "") === "" || nudge.endsWith("00000000000000000001"));
    }
    const screened = screenBook(compileAccounts(subjects, ugly), uglyMarks, ugly);
    const states = new Set<string>();
    subjects.forEach((subject, index) => {
      const expected = reference(subject, uglyMarks, ugly);
      states.add(expected.state);
      expect(decisionOf(screened, index)).toEqual(expected);
      if (onTheLine[index]) expect(screened.recheck[index]).toBe(Recheck.NEAR_LINE);
    });
    expect(onTheLine.filter(Boolean).length).toBeGreaterThan(100);
    expect([...states].sort()).toEqual(["BREACH", "HEALTHY", "WARNING"]);
  });

  it("below the minimum transfer amount: in breach with no call, as the reference says", () => {
    const strict = policy({
      ...rules.document,
      call: { ...rules.document.call, minimumTransferAmount: "500" },
    });
    const subject = account({ cash: "-7600", holdings: { FINE: "100" } });
    const screened = screenBook(compileAccounts([subject], strict), prices, strict);
    expect(reference(subject, prices, strict)).toEqual({ state: "BREACH", callAmount: "0.00" });
    expect(decisionOf(screened, 0)).toEqual({ state: "BREACH", callAmount: "0.00" });
  });

  it("throws what valueAccount throws: a missing mark, a borrowed asset that may not be borrowed", () => {
    const missing = account({ holdings: { XYZ: "1", FINE: "1" } });
    const withoutFine = marks({ XYZ: "100" });
    expect(() => valueAccount(missing, withoutFine, rules)).toThrow(ValuationError);
    expect(() => screenBook(compileAccounts([missing], rules), withoutFine, rules)).toThrow(ValuationError);
    const borrowed = account({ cash: "1000", holdings: { XYZ: "-1" } });
    expect(() => valueAccount(borrowed, prices, rules)).toThrow(ValuationError);
    expect(() => screenBook(compileAccounts([borrowed], rules), prices, rules)).toThrow(ValuationError);
    const result = screenBook(
      compileAccounts([account({ holdings: { XYZ: "1" } })], rules),
      withoutFine,
      rules,
    );
    expect(result.recheck[0]).toBe(Recheck.NONE);
  });
});
