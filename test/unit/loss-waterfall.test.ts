/**
 * The loss waterfall: ADL ranking (BitMEX's published example and scores derived here), deleveraging at the
 * bankruptcy price, socialised charges by largest remainder, and the properties: fund cover + ADL or
 * socialised charges + bad debt = the shortfall exactly; charges add up and are pro rata within one unit.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AdlCandidate,
  adlScore,
  adlStanding,
  compareScores,
  deleverage,
  rankAdl,
} from "../../functions/domain/adl.ts";
import type { FundHead } from "../../functions/domain/insurance-fund.ts";
import {
  allocateProRata,
  type BankruptPosition,
  type Counterparty,
  LOSS_AFTER_FUND,
  lossWaterfallSchema,
  runWaterfall,
  SOCIALISED_BASES,
  WaterfallError,
  type WaterfallInput,
} from "../../functions/domain/loss-waterfall.ts";
import { Dec, dec, quantize, Rounding, ZERO } from "../../functions/domain/money.ts";

const AT = "2026-11-25T12:41:09.000Z";
const fund = (balance: string): FundHead => ({ currency: "USD", scale: 2, balance: dec(balance), seq: 7 });
const candidate = (accountId: string, size: string, entryPrice: string, equity: string): AdlCandidate => ({
  accountId,
  instrument: "BTC-PERP",
  size: dec(size),
  entryPrice: dec(entryPrice),
  equity: dec(equity),
});
const counterparty = (accountId: string, size: string, entryPrice: string, equity: string): Counterparty => ({
  accountId,
  equity: dec(equity),
  position: size === "0" ? null : { instrument: "BTC-PERP", size: dec(size), entryPrice: dec(entryPrice) },
});

/** A long of 10 BTC-PERP marked at 40,000 whose equity is 0 at 40,250: a shortfall of 10 × 250 = 2,500.00. */
const BANKRUPT_LONG: BankruptPosition = {
  instrument: "BTC-PERP",
  side: "LONG",
  quantity: dec("10"),
  quantityScale: 3,
  markPrice: dec("40000"),
  bankruptcyPrice: dec("40250"),
};

function input(
  overrides: Partial<WaterfallInput> & { balance?: string; shortfall?: string },
): WaterfallInput {
  const { balance = "1000.00", shortfall = "2500.00", ...rest } = overrides;
  return {
    bankruptcy: { accountId: "BANKRUPT", shortfall: dec(shortfall), position: BANKRUPT_LONG },
    fund: fund(balance),
    policy: lossWaterfallSchema.parse({ afterFund: "ADL" }),
    counterparties: [],
    flowId: "BANKRUPT:v4:loss:fund",
    sourceReference: "BANKRUPT:v4:loss",
    recordedAt: AT,
    ...rest,
  };
}

describe("ADL ranking", () => {
  it("reproduces BitMEX's published example: percentiles by quantity, 20/40/60/80/80/100%", () => {
    // Prepare: six longs at mark 600, entry 300 (PnL% = 1), so score = leverage = 600·q / equity, chosen
    // as BitMEX's 3, 6, 1, 4, 5, 2: account 2 holds 10 with equity 1,000 (6,000 / 1,000 = 6), and so on.
    const longs = [
      candidate("1", "10", "300", "2000"),
      candidate("2", "10", "300", "1000"),
      candidate("3", "20", "300", "12000"),
      candidate("4", "30", "300", "4500"),
      candidate("5", "20", "300", "2400"),
      candidate("6", "10", "300", "3000"),
    ];

    // Act
    const ranking = rankAdl(longs, "BTC-PERP", "LONG", dec("600"));

    // Assess: cumulative quantity 10, 30, 60, 70, 80, 100 of 100.
    expect(
      ranking.map((s) => [s.accountId, s.score.toFixed(), s.percentile.toFixed(), s.quintile, s.lights]),
    ).toEqual([
      ["2", "6", "0.1", 1, 5],
      ["5", "5", "0.3", 2, 4],
      ["4", "4", "0.6", 3, 3],
      ["1", "3", "0.7", 4, 2],
      ["6", "2", "0.8", 4, 2],
      ["3", "1", "1", 5, 1],
    ]);
    // BitMEX: a short of 20 bankrupt at 650 closes all 10 of account 2 and 10 of account 5's 20.
    const { instructions } = deleverage(ranking, dec("20"), dec("650"));
    expect(
      instructions.map((i) => [
        i.accountId,
        i.side,
        i.quantity.toFixed(),
        i.price.toFixed(),
        i.closesAll,
        i.rank,
      ]),
    ).toEqual([
      ["2", "SELL", "10", "650", true, 1],
      ["5", "SELL", "10", "650", false, 2],
    ]);
  });

  it("scores from the account's own data: PnL% × leverage in profit, PnL% ÷ leverage at a loss", () => {
    const mark = dec("80");
    // Long 1 from 50, equity 20: PnL% = 30/50 = 0.6, leverage = 80/20 = 4, score 2.4.
    const profit = adlScore(candidate("p", "1", "50", "20"), mark);
    // Long 2 from 100, equity 40: PnL% = −40/200 = −0.2, leverage = 160/40 = 4, score −0.05.
    const loss = adlScore(candidate("l", "2", "100", "40"), mark);
    // Short 1 from 100, equity 40: PnL% = 20/100 = 0.2, leverage = 80/40 = 2, score 0.4.
    const short = adlScore(candidate("s", "-1", "100", "40"), mark);
    const value = (score: typeof profit) =>
      score ? score.numerator.dividedBy(score.denominator).toFixed() : null;
    expect([value(profit), value(loss), value(short)]).toEqual(["2.4", "-0.05", "0.4"]);
    expect(adlScore(candidate("bankrupt", "1", "50", "0"), mark)).toBeNull();
  });

  it("answers one account's rank: its standing is the one in the whole ranking", () => {
    const shorts = [candidate("a", "-4", "42000", "20000"), candidate("b", "-5", "41000", "50000")];
    expect(adlStanding("b", shorts, "BTC-PERP", dec("40000"))).toMatchObject({ rank: 2, lights: 1 });
    expect(adlStanding("nobody", shorts, "BTC-PERP", dec("40000"))).toBeNull();
  });
});

describe("the waterfall, worked", () => {
  // Shorts at mark 40,000. s1: −4 from 42,000, equity 20,000: PnL% 8,000/168,000, leverage 8 → 0.381.
  // s2: −5 from 41,000, equity 50,000: PnL% 5,000/205,000, leverage 4 → 0.0976. s3: −3 from 39,000,
  // equity 60,000: PnL% −3,000/117,000, leverage 2 → −0.0128. A long and the bankrupt account are ignored.
  const SHORTS = [
    counterparty("s3", "-3", "39000", "60000"),
    counterparty("s1", "-4", "42000", "20000"),
    counterparty("s2", "-5", "41000", "50000"),
    counterparty("long", "2", "30000", "90000"),
    counterparty("BANKRUPT", "10", "41000", "-2500"),
  ];

  it("fund first, then ADL of the fewest lots at the bankruptcy price: 1,000 + 6 × 250 = 2,500", () => {
    // Act
    const result = runWaterfall(input({ counterparties: SHORTS }));

    // Assess: R = 1,500.00; 1,500 / 250 = 6 lots, from s1 (4, all) then s2 (2 of 5).
    expect(result.fundCover.toFixed(2)).toBe("1000.00");
    expect(result.fundFlow).toMatchObject({ seq: 8, cause: "BANKRUPTCY_COVER", accountId: "BANKRUPT" });
    expect(result.fundFlow.balanceAfter.toFixed(2)).toBe("0.00");
    const rows = result.adl?.instructions.map((i) => [
      i.accountId,
      i.side,
      `${i.quantity}`,
      `${i.price}`,
      i.closesAll,
    ]);
    expect(rows).toEqual([
      ["s1", "BUY", "4", "40250", true],
      ["s2", "BUY", "2", "40250", false],
    ]);
    expect(result.adl?.cover.toFixed(2)).toBe("1500.00");
    expect(result.badDebt.isZero()).toBe(true);
  });

  it("leaves as bad debt what the opposite side cannot close: 3 lots cover 750.00 of 1,500.00", () => {
    const result = runWaterfall(input({ counterparties: [counterparty("s3", "-3", "39000", "60000")] }));
    expect(result.adl?.quantityNeeded.toFixed()).toBe("6");
    expect(result.adl?.quantityClosed.toFixed()).toBe("3");
    expect([result.adl?.cover.toFixed(2), result.badDebt.toFixed(2)]).toEqual(["750.00", "750.00"]);
  });

  it("rounds the ADL quantity up to a whole lot, and covers exactly what the fund left", () => {
    // R = 2,500.00 − 1,000.10 = 1,499.90; 1,499.90 / 250 = 5.9996, up to 3 places: 6.000.
    const result = runWaterfall(input({ balance: "1000.10", counterparties: SHORTS }));
    expect(result.adl?.quantityNeeded.toFixed()).toBe("6");
    expect([result.fundCover.toFixed(2), result.adl?.cover.toFixed(2), result.badDebt.toFixed(2)]).toEqual([
      "1000.10",
      "1499.90",
      "0.00",
    ]);
  });

  it("needs no ADL when the fund covers it all", () => {
    const result = runWaterfall(input({ balance: "5000.00", counterparties: SHORTS }));
    const outcome = [result.fundCover, result.fundFlow.balanceAfter, result.badDebt].map((v) => v.toFixed(2));
    expect([...outcome, result.adl]).toEqual(["2500.00", "2500.00", "0.00", null]);
  });

  it("socialises by positive equity, the last cent to the largest remainder: 100.00 over 1:1:1", () => {
    const policy = lossWaterfallSchema.parse({ afterFund: "SOCIALISED" });
    const equities = [
      counterparty("c", "0", "0", "1000"),
      counterparty("a", "0", "0", "1000"),
      counterparty("b", "0", "0", "1000"),
    ];
    const result = runWaterfall(
      input({ balance: "0", shortfall: "100.00", policy, counterparties: equities }),
    );
    expect(result.socialised?.charges.map((c) => [c.accountId, c.amount.toFixed(2)])).toEqual([
      ["c", "33.33"],
      ["a", "33.34"],
      ["b", "33.33"],
    ]);
    expect(result.badDebt.isZero()).toBe(true);
  });

  it("socialises by opposite notional: 1,500.00 over 160,000 : 200,000 is 666.67 and 833.33", () => {
    // 1,500 × 4/9 = 666.666…, 1,500 × 5/9 = 833.333…: floors 666.66 + 833.33, the cent left to s1 (0.666 > 0.333).
    const policy = lossWaterfallSchema.parse({
      afterFund: "SOCIALISED",
      socialisedBase: "OPPOSITE_NOTIONAL",
    });
    const result = runWaterfall(
      input({ policy, counterparties: SHORTS.filter((c) => c.accountId !== "s3") }),
    );
    expect(result.socialised?.charges.map((c) => [c.accountId, c.amount.toFixed(2)])).toEqual([
      ["s1", "666.67"],
      ["s2", "833.33"],
    ]);
  });

  it("charges no more than the base holds, and the rest is bad debt", () => {
    const policy = lossWaterfallSchema.parse({ afterFund: "SOCIALISED" });
    const result = runWaterfall(
      input({
        balance: "0",
        shortfall: "100.00",
        policy,
        counterparties: [counterparty("a", "0", "0", "40.005")],
      }),
    );
    expect([result.socialised?.cover.toFixed(2), result.badDebt.toFixed(2)]).toEqual(["40.00", "60.00"]);
  });

  it("with NONE (the default), what the fund leaves is bad debt", () => {
    const result = runWaterfall(input({ policy: lossWaterfallSchema.parse({}), counterparties: SHORTS }));
    expect([result.adl, result.socialised, result.badDebt.toFixed(2)]).toEqual([null, null, "1500.00"]);
  });

  it("refuses a bankruptcy price on the wrong side of the mark", () => {
    const bankruptcy = {
      accountId: "X",
      shortfall: dec("1.00"),
      position: { ...BANKRUPT_LONG, bankruptcyPrice: dec("39000") },
    };
    expect(() => runWaterfall(input({ bankruptcy }))).toThrow(WaterfallError);
  });
});

const units = (max: number) => fc.integer({ min: 0, max });
const money = (n: number) => new Dec(String(n)).dividedBy(100);

const counterpartiesArbitrary = fc.uniqueArray(
  fc.record({
    id: fc.integer({ min: 0, max: 30 }),
    size: fc.integer({ min: -50, max: 50 }),
    entry: fc.integer({ min: 1, max: 200 }),
    equity: fc.integer({ min: -1000, max: 100_000 }),
  }),
  { selector: (c) => c.id, maxLength: 12 },
);

describe("properties", () => {
  it("fund cover + ADL or socialised charges + bad debt = the shortfall, exactly, at the currency scale", () => {
    fc.assert(
      fc.property(
        units(1_000_000).map((n) => n + 1),
        units(2_000_000),
        fc.constantFrom(...LOSS_AFTER_FUND),
        fc.constantFrom(...SOCIALISED_BASES),
        fc.record({
          quantity: fc.integer({ min: 1, max: 100 }),
          mark: fc.integer({ min: 1, max: 200 }),
          gap: fc.integer({ min: 1, max: 50 }),
          long: fc.boolean(),
        }),
        counterpartiesArbitrary,
        (shortfallUnits, balanceUnits, afterFund, socialisedBase, bankrupt, others) => {
          const mark = new Dec(String(bankrupt.mark)).dividedBy(10);
          const gap = new Dec(String(bankrupt.gap)).dividedBy(100);
          const side = bankrupt.long || mark.lessThanOrEqualTo(gap) ? "LONG" : "SHORT";
          const position: BankruptPosition = {
            instrument: "BTC-PERP",
            side,
            quantity: new Dec(String(bankrupt.quantity)).dividedBy(10),
            quantityScale: 1,
            markPrice: mark,
            bankruptcyPrice: side === "LONG" ? mark.plus(gap) : mark.minus(gap),
          };
          const counterparties = others.map((o) =>
            counterparty(
              `c${o.id}`,
              new Dec(String(o.size)).dividedBy(10).toFixed(),
              String(o.entry),
              String(o.equity),
            ),
          );
          const result = runWaterfall(
            input({
              balance: money(balanceUnits).toFixed(2),
              bankruptcy: { accountId: "BANKRUPT", shortfall: money(shortfallUnits), position },
              policy: { afterFund, socialisedBase },
              counterparties,
            }),
          );
          const covered = result.adl?.cover ?? result.socialised?.cover ?? ZERO;
          expect(result.fundCover.plus(covered).plus(result.badDebt).equals(result.shortfall)).toBe(true);
          expect(result.fundCover.equals(Dec.min(money(balanceUnits), result.shortfall))).toBe(true);
          for (const part of [result.fundCover, covered, result.badDebt]) {
            expect(part.isNegative() || part.decimalPlaces() > 2).toBe(false);
          }
          if (result.adl) {
            const ranking = rankAdl(
              counterparties.flatMap((c) =>
                c.position ? [{ ...c.position, accountId: c.accountId, equity: c.equity }] : [],
              ),
              "BTC-PERP",
              side === "LONG" ? "SHORT" : "LONG",
              mark,
            );
            // The instructions are the top of the ranking, at the bankruptcy price, never beyond the position.
            expect(result.adl.instructions.map((i) => i.accountId)).toEqual(
              ranking.slice(0, result.adl.instructions.length).map((s) => s.accountId),
            );
            expect(result.adl.instructions.every((i) => i.price.equals(position.bankruptcyPrice))).toBe(true);
            expect(result.adl.quantityClosed.lessThanOrEqualTo(position.quantity)).toBe(true);
            const value = quantize(result.adl.quantityClosed.times(gap), 2, Rounding.DOWN);
            const left = result.shortfall.minus(result.fundCover);
            expect(result.adl.cover.equals(Dec.min(value, left))).toBe(true);
          }
        },
      ),
    );
  });

  it("socialised charges add up to the amount exactly, each within one unit of its pro-rata share", () => {
    fc.assert(
      fc.property(
        units(10_000_000),
        fc.uniqueArray(
          fc.record({
            key: fc.string({ minLength: 1, maxLength: 4 }),
            weight: fc.integer({ min: 0, max: 10_000_000 }),
            places: fc.integer({ min: 0, max: 4 }),
          }),
          { selector: (w) => w.key, minLength: 1, maxLength: 20 },
        ),
        (amountUnits, drawn) => {
          const weights = drawn.map((w) => ({
            key: w.key,
            weight: new Dec(String(w.weight)).dividedBy(new Dec(10).toPower(w.places)),
          }));
          const total = weights.reduce((sum, w) => sum.plus(w.weight), ZERO);
          fc.pre(total.greaterThan(ZERO));
          const amount = money(amountUnits);
          const shares = allocateProRata(amount, weights, 2);
          expect(shares.reduce((sum, s) => sum.plus(s.amount), ZERO).equals(amount)).toBe(true);
          shares.forEach((share, index) => {
            const weight = weights[index]?.weight ?? ZERO;
            // |share − amount × weight / total| < 0.01, compared by products: no division.
            const error = share.amount.times(total).minus(amount.times(weight)).abs();
            expect(error.lessThan(dec("0.01").times(total))).toBe(true);
            expect(share.key).toBe(weights[index]?.key);
          });
        },
      ),
    );
  });

  it("ranks by the exact score, highest first, and each account's standing matches the whole ranking", () => {
    fc.assert(
      fc.property(counterpartiesArbitrary, fc.integer({ min: 1, max: 300 }), (others, markUnits) => {
        const candidates = others
          .filter((o) => o.size !== 0)
          .map((o) => candidate(`c${o.id}`, String(o.size), String(o.entry), String(o.equity)));
        const mark = new Dec(String(markUnits));
        for (const side of ["LONG", "SHORT"] as const) {
          const ranking = rankAdl(candidates, "BTC-PERP", side, mark);
          const byId = new Map(candidates.map((c) => [c.accountId, c]));
          for (let i = 1; i < ranking.length; i += 1) {
            const higher = adlScore(byId.get(ranking[i - 1]?.accountId ?? "") as AdlCandidate, mark);
            const lower = adlScore(byId.get(ranking[i]?.accountId ?? "") as AdlCandidate, mark);
            if (higher && lower) expect(compareScores(higher, lower)).toBeGreaterThanOrEqual(0);
          }
          for (const standing of ranking) {
            expect(adlStanding(standing.accountId, candidates, "BTC-PERP", mark)).toEqual(standing);
          }
        }
      }),
    );
  });
});
