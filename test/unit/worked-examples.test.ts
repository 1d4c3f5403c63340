/**
 * Worked examples from the anchors in ../shared/DOMAIN.md. Each number can be checked by hand; the comment
 * above each says where it comes from.
 */
import { describe, expect, it } from "vitest";
import { cureOptions, sizeCall } from "../../functions/domain/calls.ts";
import { dec } from "../../functions/domain/money.ts";
import { triggerPrices } from "../../functions/domain/triggers.ts";
import { marginRatio, ratioBelow, valueAccount } from "../../functions/domain/valuation.ts";
import { account, flatTier, marks, policy } from "../support/domain-builders.ts";

describe("FINRA Rule 4210 / Regulation T: long stock bought on 50% margin, 25% maintenance", () => {
  // Reg T: initial margin 50%. Buy 200 shares at $100 = $20,000 with $10,000 of the customer's own money
  // and a $10,000 debit (a cash loan). FINRA 4210: maintenance is 25% of the market value of long stock.
  // The maintenance call triggers when equity < 25% × market value:
  //   200·P − 10,000 < 0.25 · 200·P  ⇔  P < 10,000 / (0.75 · 200) = 66.666…
  // At $60: market value 12,000, equity 2,000, requirement 3,000: a call of $1,000.
  // The sale that meets it: every $1 of stock sold releases $0.25 of requirement, so $1,000 / 0.25 = $4,000
  // of stock, 66.67 shares, 67 whole shares (the DOMAIN.md rule "sell deficit ÷ requirement rate").
  const regT = policy({
    assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.50") } },
  });
  const bought = account({ cash: "-10000", holdings: { XYZ: "200" } });

  it("starts at exactly the 50% initial requirement", () => {
    const valuation = valueAccount(bought, marks({ XYZ: "100" }), regT);
    expect(valuation.equity.toFixed()).toBe("10000");
    expect(valuation.initial.toFixed()).toBe("10000");
    expect(valuation.maintenance.toFixed()).toBe("5000");
    expect(marginRatio(valuation)?.toFixed()).toBe("2");
  });

  it("triggers the maintenance call below $66.67, and says so as the breach price", () => {
    const [xyz] = triggerPrices(bought, marks({ XYZ: "100" }), regT);
    expect(xyz?.breachDown?.toFixed(2)).toBe("66.66");
    expect(ratioBelow(valueAccount(bought, marks({ XYZ: "66.67" }), regT), dec("1"))).toBe(false);
    expect(ratioBelow(valueAccount(bought, marks({ XYZ: "66.66" }), regT), dec("1"))).toBe(true);
  });

  it("calls $1,000 at $60, curable by depositing $1,000 or selling 67 shares", () => {
    const atSixty = marks({ XYZ: "60" });
    const valuation = valueAccount(bought, atSixty, regT);
    expect(valuation.equity.toFixed()).toBe("2000");
    expect(valuation.maintenance.toFixed()).toBe("3000");
    expect(sizeCall(valuation, regT).amount.toFixed(2)).toBe("1000.00");
    const options = cureOptions(bought, valuation, atSixty, regT);
    expect(options).toContainEqual({ kind: "DEPOSIT", amount: dec("1000"), currency: "USD" });
    const sale = options.find((option) => option.kind === "REDUCE");
    expect(sale).toMatchObject({ side: "SELL", target: { kind: "HOLDING", asset: "XYZ" } });
    expect(sale?.kind === "REDUCE" && sale.quantity.toFixed()).toBe("67");
  });
});

describe("Aave v3 health factor: HF = Σ collateral × liquidation threshold / debt", () => {
  // 10 ETH of collateral, liquidation threshold 82.5%, 15,000 USDC borrowed. At $2,000:
  //   HF = 10 · 2,000 · 0.825 / 15,000 = 1.1.
  // The same test in this engine: maintenance rate 1 − LT = 0.175 on the collateral, none on the debt:
  //   ratio = (20,000 − 15,000) / (0.175 · 20,000) = 1.4286 … and HF < 1 ⇔ ratio < 1.
  // Both cross 1 where 10 · P · 0.825 = 15,000, P = 1,818.1818…
  const aave = policy({
    currency: "USDC",
    assets: { ETH: { quantityScale: 8, priceScale: 2, haircut: "0", longTiers: flatTier("0.175") } },
  });
  const position = account({ cash: "-15000", holdings: { ETH: "10" } });
  const healthFactor = (price: string) =>
    dec("10").times(dec(price)).times(dec("0.825")).dividedBy(dec("15000"));

  it("gives HF 1.1 and ratio 1.428571 at $2,000", () => {
    const valuation = valueAccount(position, marks({ ETH: "2000" }), aave);
    expect(healthFactor("2000").toFixed()).toBe("1.1");
    expect(marginRatio(valuation)?.toFixed()).toBe("1.428571");
  });

  it("agrees with the health factor on every price whether the account is in breach", () => {
    for (const price of ["2500", "1900", "1818.19", "1818.18", "1818.1818", "1500", "1000"]) {
      const valuation = valueAccount(position, marks({ ETH: price }), aave);
      expect(ratioBelow(valuation, dec("1")), price).toBe(healthFactor(price).lessThan(1));
    }
  });

  it("puts the breach price where the health factor reaches 1", () => {
    const [eth] = triggerPrices(position, marks({ ETH: "2000" }), aave);
    expect(eth?.breachDown?.toFixed(2)).toBe("1818.18");
  });
});

describe("Binance USDⓈ-M tiered maintenance and the cross-margin liquidation price", () => {
  // Binance BTCUSDT brackets (notional floor, maintenance margin rate); the maintenance amount follows
  //   amount_n = floor_n × (rate_n − rate_(n−1)) + amount_(n−1):
  //   0: 0.4% → 0;  50,000: 0.5% → 50;  250,000: 1% → 1,300;  1,000,000: 2.5% → 16,300;  10,000,000: 5% → 266,300.
  const tiers = [
    { notionalFloor: "0", maintenanceRate: "0.004", initialRate: "0.008" },
    { notionalFloor: "50000", maintenanceRate: "0.005", initialRate: "0.01", maintenanceAmount: "50" },
    { notionalFloor: "250000", maintenanceRate: "0.01", initialRate: "0.02", maintenanceAmount: "1300" },
    { notionalFloor: "1000000", maintenanceRate: "0.025", initialRate: "0.05", maintenanceAmount: "16300" },
    { notionalFloor: "10000000", maintenanceRate: "0.05", initialRate: "0.1", maintenanceAmount: "266300" },
  ];
  const binance = policy({
    currency: "USDT",
    assets: { BTC: { quantityScale: 3, priceScale: 2, haircut: "0", longTiers: flatTier("1") } },
    instruments: { BTCUSDT: { underlying: "BTC", quantityScale: 3, tiers } },
  });

  it("derives the maintenance amounts, and rejects a stated amount that breaks the rule", () => {
    const wrong = structuredClone(tiers);
    if (wrong[2]) wrong[2].maintenanceAmount = "1250";
    expect(() =>
      policy({
        currency: "USDT",
        assets: { BTC: { quantityScale: 3, priceScale: 2, haircut: "0", longTiers: flatTier("1") } },
        instruments: { BTCUSDT: { underlying: "BTC", quantityScale: 3, tiers: wrong } },
      }),
    ).toThrow(/\$\.instruments\.BTCUSDT\.tiers\[2\]\.maintenanceAmount: must be 1300/);
  });

  it("charges N × rate − amount: 400,000 notional → 400,000 × 1% − 1,300 = 2,700", () => {
    const long = account({
      cash: "10000",
      positions: [{ instrument: "BTCUSDT", size: "10", entryPrice: "40000" }],
    });
    const valuation = valueAccount(long, marks({ BTC: "40000" }), binance);
    expect(valuation.maintenance.toFixed()).toBe("2700");
    expect(valuation.equity.toFixed()).toBe("10000");
  });

  it("reproduces LP = (WB − TMM1 + UPNL1 + cum − s·Q·EP) / (Q·MMR − s·Q) in the entry tier", () => {
    // WB 10,000, long 10 BTC at 40,000, tier 3 (1%, cum 1,300):
    //   LP = (10,000 + 1,300 − 400,000) / (10 × 0.01 − 10) = 39,262.6262…; notional 392,626: still tier 3.
    const long = account({
      cash: "10000",
      positions: [{ instrument: "BTCUSDT", size: "10", entryPrice: "40000" }],
    });
    const [btc] = triggerPrices(long, marks({ BTC: "40000" }), binance);
    expect(btc?.breachDown?.toFixed(2)).toBe("39262.62");
    expect(btc?.breachUp).toBeNull();
  });

  it("recomputes with the next tier when the LP lands in another one, as Binance prescribes", () => {
    // WB 30,000, long 6 BTC at 45,000 (270,000: tier 3). Tier-3 LP = (30,000 + 1,300 − 270,000) / (0.06 − 6)
    // = 40,185.18…, whose notional 241,111 is in tier 2; with tier 2 (0.5%, cum 50):
    //   LP = (30,000 + 50 − 270,000) / (0.03 − 6) = 40,192.6298…; notional 241,155.78: tier 2, consistent.
    const long = account({
      cash: "30000",
      positions: [{ instrument: "BTCUSDT", size: "6", entryPrice: "45000" }],
    });
    const [btc] = triggerPrices(long, marks({ BTC: "45000" }), binance);
    expect(btc?.breachDown?.toFixed(2)).toBe("40192.62");
  });

  it("gives a short its liquidation price above the mark: s = −1", () => {
    // WB 10,000, short 10 BTC at 40,000: LP = (10,000 + 1,300 + 400,000) / (0.1 + 10) = 411,300 / 10.1
    // = 40,722.7722…, rounded up to the tick: the first price at which the short is in breach.
    const short = account({
      cash: "10000",
      positions: [{ instrument: "BTCUSDT", size: "-10", entryPrice: "40000" }],
    });
    const [btc] = triggerPrices(short, marks({ BTC: "40000" }), binance);
    expect(btc?.breachUp?.toFixed(2)).toBe("40722.78");
    expect(btc?.breachDown).toBeNull();
  });
});

describe("ISDA CSA: threshold and minimum transfer amount", () => {
  // ISDA 1994 CSA Paragraph 3: Delivery Amount = Credit Support Amount − Value of collateral held, where
  // the Credit Support Amount is the exposure less the Threshold, and a transfer is only demanded when it
  // is at least the Minimum Transfer Amount. Here: requirement 5,000,000 (10% of a 50,000,000 book),
  // Threshold 1,000,000, MTA 250,000.
  const csa = policy({
    assets: { BOOK: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.10") } },
    call: {
      restoreBuffer: "0",
      exitBuffer: "0",
      minimumTransferAmount: "250000",
      threshold: "1000000",
      curePeriodSeconds: 86_400,
      reminderOffsetsSeconds: [],
      hardFloorRatio: "0.1",
    },
  });

  it("makes no call when the shortfall less the threshold is 180,000, under the MTA", () => {
    const valuation = valueAccount(
      account({ cash: "-46180000", holdings: { BOOK: "50000000" } }),
      marks({ BOOK: "1" }),
      csa,
    );
    const sizing = sizeCall(valuation, csa);
    expect(valuation.excess.toFixed()).toBe("-1180000");
    expect(sizing.shortfall.toFixed()).toBe("180000");
    expect(sizing).toMatchObject({ inBreach: true, belowMinimumTransfer: true });
    expect(sizing.amount.toFixed()).toBe("0");
  });

  it("calls the whole 320,000 once it reaches the MTA", () => {
    const valuation = valueAccount(
      account({ cash: "-46320000", holdings: { BOOK: "50000000" } }),
      marks({ BOOK: "1" }),
      csa,
    );
    expect(sizeCall(valuation, csa).amount.toFixed(2)).toBe("320000.00");
  });
});
