/**
 * A seeded, deterministic book of margin accounts for the benchmark and the screen's tests.
 *
 * - A policy with 26 assets (majors and alts with volatility-scaled tiers, equities, stablecoins) and 9
 *   perpetuals with Binance-like tier tables, and one mark per asset.
 * - Accounts with 1–20 lines ("mixed", skewed to few) or a fixed count: owned crypto, equities and
 *   stablecoins, borrowed (short) holdings, long and short perpetuals with entry prices; cash is whatever
 *   puts the account at its target margin ratio, so most accounts carry a cash loan.
 * - A realistic share of accounts near the lines: in breach, in the warning zone, just above it; and a few
 *   adversarial ones: exactly on a line (ratio exactly 1 or 1 + cushion, or one cent either side), and
 *   lines whose notional is exactly a tier floor. Those are the ones the screen must send to exact.
 *
 * Every value is held exactly, as integer units at its scale (a quantity at its asset's quantity scale, an
 * entry price at its underlying's price scale, cash at the currency scale); `account(i)` turns them into
 * canonical decimal strings and decimals only when asked. Account i depends only on (seed, i), so a small
 * book is a prefix of a large one with the same seed.
 */
import { type Dec, dec } from "../functions/domain/money.ts";
import { type Policy, type PolicyDocument, parsePolicy } from "../functions/domain/policy.ts";
import {
  type CompiledBook,
  type LineTarget,
  prepareScreen,
  unitsToDouble,
} from "../functions/domain/screen.ts";
import {
  type Account,
  type Holding,
  type Mark,
  type Position,
  valueAccount,
} from "../functions/domain/valuation.ts";
import { floatValues } from "./float64.ts";

const LINE_HOLDING = 0;
const LINE_POSITION = 1;

type TierRow = readonly [floor: string, maintenanceRate: string, initialRate: string];

const MAJOR_LONG: readonly TierRow[] = [
  ["0", "0.05", "0.10"],
  ["250000", "0.075", "0.15"],
  ["1000000", "0.10", "0.20"],
  ["5000000", "0.15", "0.30"],
];
const MAJOR_SHORT: readonly TierRow[] = [
  ["0", "0.10", "0.15"],
  ["500000", "0.15", "0.25"],
];
const ALT_LONG: readonly TierRow[] = [
  ["0", "0.10", "0.20"],
  ["100000", "0.15", "0.30"],
  ["500000", "0.25", "0.50"],
];
const ALT_SHORT: readonly TierRow[] = [["0", "0.20", "0.30"]];
const EQUITY_LONG: readonly TierRow[] = [
  ["0", "0.25", "0.50"],
  ["500000", "0.30", "0.50"],
  ["2000000", "0.40", "0.60"],
];
const EQUITY_SHORT: readonly TierRow[] = [
  ["0", "0.30", "0.50"],
  ["500000", "0.40", "0.60"],
];
const STABLE: readonly TierRow[] = [["0", "0.01", "0.02"]];
const MAJOR_PERP: readonly TierRow[] = [
  ["0", "0.004", "0.008"],
  ["50000", "0.005", "0.01"],
  ["250000", "0.01", "0.02"],
  ["1000000", "0.025", "0.05"],
  ["10000000", "0.05", "0.10"],
];
const ALT_PERP: readonly TierRow[] = [
  ["0", "0.01", "0.02"],
  ["50000", "0.025", "0.05"],
  ["250000", "0.05", "0.10"],
  ["1000000", "0.10", "0.20"],
];

interface VolatilitySpec {
  readonly referenceVolatility: string;
  readonly slope: string;
  readonly maxMultiplier: string;
}

type AssetClass = "crypto" | "equity" | "stable";

interface AssetSpec {
  readonly code: string;
  readonly assetClass: AssetClass;
  readonly quantityScale: number;
  readonly priceScale: number;
  /** The mark. */
  readonly price: string;
  readonly haircut: string;
  readonly long: readonly TierRow[];
  readonly short?: readonly TierRow[];
  readonly volatility?: VolatilitySpec;
  readonly realizedVolatility?: string;
  /** Round price, no volatility multiplier, haircut in cents: usable for exact ties. */
  readonly nice?: boolean;
}

interface InstrumentSpec {
  readonly code: string;
  readonly underlying: string;
  readonly quantityScale: number;
  readonly tiers: readonly TierRow[];
  readonly volatility?: VolatilitySpec;
  readonly nice?: boolean;
}

const crypto = (
  code: string,
  quantityScale: number,
  priceScale: number,
  price: string,
  haircut: string,
  major: boolean,
  shortable: boolean,
  extra: Partial<AssetSpec> = {},
): AssetSpec => ({
  code,
  assetClass: "crypto",
  quantityScale,
  priceScale,
  price,
  haircut,
  long: major ? MAJOR_LONG : ALT_LONG,
  ...(shortable ? { short: major ? MAJOR_SHORT : ALT_SHORT } : {}),
  ...extra,
});

const equity = (code: string, price: string, extra: Partial<AssetSpec> = {}): AssetSpec => ({
  code,
  assetClass: "equity",
  quantityScale: 4,
  priceScale: 2,
  price,
  haircut: "0",
  long: EQUITY_LONG,
  short: EQUITY_SHORT,
  ...extra,
});

const stable = (code: string, price: string, haircut: string, nice = false): AssetSpec => ({
  code,
  assetClass: "stable",
  quantityScale: 6,
  priceScale: 4,
  price,
  haircut,
  long: STABLE,
  nice,
});

const ASSETS: readonly AssetSpec[] = [
  crypto("BTC", 8, 2, "64250.37", "0.10", true, true, {
    volatility: { referenceVolatility: "0.55", slope: "1", maxMultiplier: "2" },
    realizedVolatility: "0.70",
  }),
  crypto("ETH", 8, 2, "2500.00", "0.15", true, true, { nice: true }),
  crypto("SOL", 6, 4, "148.2537", "0.25", false, true, {
    volatility: { referenceVolatility: "0.80", slope: "0.5", maxMultiplier: "1.5" },
    realizedVolatility: "0.95",
  }),
  crypto("BNB", 6, 2, "585.43", "0.20", false, true),
  crypto("XRP", 2, 5, "0.52341", "0.30", false, true),
  crypto("ADA", 2, 5, "0.38127", "0.30", false, false),
  crypto("DOGE", 2, 6, "0.123457", "0.35", false, false),
  crypto("AVAX", 4, 4, "27.3519", "0.30", false, true),
  crypto("LINK", 4, 4, "13.9107", "0.30", false, true),
  crypto("DOT", 4, 4, "6.1203", "0.30", false, false),
  crypto("LTC", 6, 2, "72.00", "0.25", false, true, { nice: true }),
  equity("AAPL", "187.50", { nice: true }),
  equity("MSFT", "412.50", { nice: true }),
  equity("NVDA", "121.37"),
  equity("AMZN", "178.21"),
  equity("GOOGL", "164.83"),
  equity("META", "505.12"),
  equity("TSLA", "248.57", {
    volatility: { referenceVolatility: "0.40", slope: "1", maxMultiplier: "2" },
    realizedVolatility: "0.58",
  }),
  equity("SPY", "531.25", { nice: true }),
  equity("QQQ", "455.61"),
  equity("JPM", "200.00", { nice: true }),
  equity("XOM", "113.43"),
  equity("KO", "62.50", { nice: true }),
  stable("USDC", "1.0000", "0.02", true),
  stable("USDT", "0.9997", "0.03"),
  stable("DAI", "0.9999", "0.05"),
];

const INSTRUMENTS: readonly InstrumentSpec[] = [
  {
    code: "BTC-PERP",
    underlying: "BTC",
    quantityScale: 3,
    tiers: MAJOR_PERP,
    volatility: { referenceVolatility: "0.55", slope: "0.5", maxMultiplier: "1.5" },
  },
  { code: "ETH-PERP", underlying: "ETH", quantityScale: 3, tiers: MAJOR_PERP, nice: true },
  { code: "SOL-PERP", underlying: "SOL", quantityScale: 1, tiers: ALT_PERP },
  { code: "BNB-PERP", underlying: "BNB", quantityScale: 2, tiers: ALT_PERP },
  { code: "XRP-PERP", underlying: "XRP", quantityScale: 0, tiers: ALT_PERP },
  { code: "DOGE-PERP", underlying: "DOGE", quantityScale: 0, tiers: ALT_PERP },
  { code: "AVAX-PERP", underlying: "AVAX", quantityScale: 1, tiers: ALT_PERP },
  { code: "LINK-PERP", underlying: "LINK", quantityScale: 1, tiers: ALT_PERP },
  { code: "LTC-PERP", underlying: "LTC", quantityScale: 2, tiers: ALT_PERP, nice: true },
];

const CURRENCY = "USD";
const CURRENCY_SCALE = 2;

const tiers = (rows: readonly TierRow[]) =>
  rows.map(([notionalFloor, maintenanceRate, initialRate]) => ({
    notionalFloor,
    maintenanceRate,
    initialRate,
  }));

/** The book's policy document: IBKR-like 5% warning cushion, a 10% restore buffer, a $50 MTA. */
export function bookPolicyDocument(): PolicyDocument {
  return {
    policyId: "bench-book",
    version: 1,
    currency: CURRENCY,
    currencyScale: CURRENCY_SCALE,
    assets: Object.fromEntries(
      ASSETS.map((asset) => [
        asset.code,
        {
          quantityScale: asset.quantityScale,
          priceScale: asset.priceScale,
          haircut: asset.haircut,
          longTiers: tiers(asset.long),
          ...(asset.short ? { shortTiers: tiers(asset.short) } : {}),
          ...(asset.volatility ? { volatility: asset.volatility } : {}),
        },
      ]),
    ),
    instruments: Object.fromEntries(
      INSTRUMENTS.map((instrument) => [
        instrument.code,
        {
          underlying: instrument.underlying,
          quantityScale: instrument.quantityScale,
          tiers: tiers(instrument.tiers),
          ...(instrument.volatility ? { volatility: instrument.volatility } : {}),
        },
      ]),
    ),
    warning: { cushion: "0.05" },
    call: {
      restoreBuffer: "0.10",
      exitBuffer: "0.02",
      minimumTransferAmount: "50",
      threshold: "0",
      curePeriodSeconds: 86_400,
      reminderOffsetsSeconds: [3_600],
      hardFloorRatio: "0.5",
    },
    deposits: { minimumCureAmount: "100", maxPauseSeconds: 3_600 },
    liquidation: { limitPriceSlippage: "0.02", dustNotional: "10", retrySeconds: 300, maxAttempts: 3 },
    prices: { maxAgeSeconds: 60, maxDivergence: "0.05", minimumSources: 1, haltGraceSeconds: 300 },
  };
}

/** The marks of the book: one per asset, with realised volatility where the policy scales by it. */
export function bookMarks(): Map<string, Mark> {
  return new Map(
    ASSETS.map((asset) => [
      asset.code,
      asset.realizedVolatility === undefined
        ? { price: dec(asset.price) }
        : { price: dec(asset.price), realizedVolatility: dec(asset.realizedVolatility) },
    ]),
  );
}

/** Where an account's cash puts it. */
export const Band = {
  /** Margin ratio 1.15 … ~14. */
  HEALTHY: 0,
  /** Just above the warning line: 1.05 … 1.15. */
  ABOVE_WARNING: 1,
  /** In the warning zone: 1 … 1.05. */
  WARNING: 2,
  /** In breach: 0.3 … 1. */
  BREACH: 3,
  /** Exactly on a line (1 or 1 + cushion) or one cent either side: the screen cannot decide these. */
  ON_LINE: 4,
  /** One line's notional is exactly a tier floor. */
  TIER_FLOOR: 5,
} as const;
export const BAND_NAMES = ["HEALTHY", "ABOVE_WARNING", "WARNING", "BREACH", "ON_LINE", "TIER_FLOOR"] as const;

/** Shares of accounts by band; the rest are HEALTHY. */
export interface BandMix {
  readonly aboveWarning: number;
  readonly warning: number;
  readonly breach: number;
  readonly onLine: number;
  readonly tierFloor: number;
}

/**
 * About 8 in 1,000 accounts in breach, 3% in the warning zone and 4% just above it: a book in a nervous
 * market. 1.5 in 1,000 sit exactly on a line or a tier floor: adversarial, far more than a real book has
 * (the tests ask for more still).
 */
export const DEFAULT_MIX: BandMix = {
  aboveWarning: 0.04,
  warning: 0.03,
  breach: 0.008,
  onLine: 0.001,
  tierFloor: 0.0005,
};

export interface BookOptions {
  readonly size: number;
  readonly seed?: number;
  /** "mixed": 1–20 lines per account, skewed to few (mean about 7); a number: exactly that many. */
  readonly lines?: "mixed" | number;
  readonly mix?: Partial<BandMix>;
}

export interface GeneratedBook {
  readonly policy: Policy;
  readonly marks: ReadonlyMap<string, Mark>;
  /** The compiled book; `book.account(i)` builds account i's decimals from its canonical strings. */
  readonly book: CompiledBook;
  /** Band by account. */
  readonly bands: Uint8Array;
  readonly lineCount: number;
  /** All accounts as decimals (for the decimal reference; allocates every Decimal). */
  accounts(from?: number, to?: number): Account[];
}

/** A decimal string from integer units at a scale: (12345n, 2) is "123.45", (-5n, 3) is "-0.005". */
export function unitsToString(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString();
  if (scale === 0) return negative ? `-${digits}` : digits;
  const padded = digits.padStart(scale + 1, "0");
  const text = `${padded.slice(0, -scale)}.${padded.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** mulberry32, seeded per account, so that account i depends on (seed, i) only. */
class Random {
  private state: number;

  constructor(seed: number, index: number) {
    let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    this.state = (h ^ (h >>> 16)) >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  between(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  below(count: number): number {
    return Math.floor(this.next() * count);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.below(items.length)];
    if (item === undefined) throw new Error("pick from nothing");
    return item;
  }
}

const gcd = (a: bigint, b: bigint): bigint => {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
};

const POW10 = Array.from({ length: 23 }, (_, exponent) => 10n ** BigInt(exponent));
const pow10 = (scale: number): bigint => {
  const power = POW10[scale];
  if (power === undefined) throw new RangeError(`scale ${scale}`);
  return power;
};

/** One line before it is written into the arrays. */
interface DraftLine {
  readonly kind: typeof LINE_HOLDING | typeof LINE_POSITION;
  readonly ref: number;
  readonly units: bigint;
  readonly entryUnits: bigint;
}

/** Generates a book. Deterministic in (seed, size, lines, mix). */
export function generateBook(options: BookOptions): GeneratedBook {
  const size = options.size;
  const seed = options.seed ?? 1;
  const linesOption = options.lines ?? "mixed";
  const mix = { ...DEFAULT_MIX, ...options.mix };
  const policy = parsePolicy(bookPolicyDocument());
  const marks = bookMarks();
  const warningFactor = dec("1").plus(policy.warningCushion);

  const assets = ASSETS.map((asset) => asset.code);
  const instruments = INSTRUMENTS.map((instrument) => instrument.code);
  const assetIndex = new Map(assets.map((code, index) => [code, index]));
  // Line targets: asset a long at 2a, borrowed at 2a + 1; then instrument i long/short at 2(A + i) (+ 1).
  const targets: LineTarget[] = [
    ...assets.flatMap((name) => [false, true].map((short) => ({ kind: "HOLDING" as const, name, short }))),
    ...instruments.flatMap((name) =>
      [false, true].map((short) => ({ kind: "POSITION" as const, name, short })),
    ),
  ];
  const assetPrice = ASSETS.map((asset) => Number(asset.price));
  const assetPriceUnits = ASSETS.map((asset) => BigInt(asset.price.replace(".", "")));
  const instrumentUnderlying = INSTRUMENTS.map((instrument) => {
    const index = assetIndex.get(instrument.underlying);
    if (index === undefined) throw new Error(`no asset ${instrument.underlying}`);
    return index;
  });
  const quantityScaleOf = (kind: number, ref: number): number =>
    (kind === LINE_HOLDING ? ASSETS[ref]?.quantityScale : INSTRUMENTS[ref]?.quantityScale) ?? 0;
  const priceScaleOfInstrument = INSTRUMENTS.map(
    (_, ref) => ASSETS[instrumentUnderlying[ref] ?? 0]?.priceScale ?? 0,
  );

  const byClass = (assetClass: AssetClass) =>
    ASSETS.flatMap((asset, index) => (asset.assetClass === assetClass ? [index] : []));
  const cryptoAssets = byClass("crypto");
  const equityAssets = byClass("equity");
  const stableAssets = byClass("stable");
  const shortable = ASSETS.flatMap((asset, index) => (asset.short ? [index] : []));
  const niceLong = ASSETS.flatMap((asset, index) => (asset.nice ? [index] : []));
  const niceShort = ASSETS.flatMap((asset, index) => (asset.nice && asset.short ? [index] : []));
  const nicePerps = INSTRUMENTS.flatMap((instrument, index) => (instrument.nice ? [index] : []));

  const maxLines = linesOption === "mixed" ? 20 : linesOption;
  const capacity = size * maxLines;
  const lineStart = new Uint32Array(size + 1);
  const lineKind = new Uint8Array(capacity);
  const lineRef = new Uint16Array(capacity);
  const lineTarget = new Uint16Array(capacity);
  const quantityUnits = new BigInt64Array(capacity);
  const entryUnits = new BigInt64Array(capacity);
  const quantity = new Float64Array(capacity);
  const entryPrice = new Float64Array(capacity);
  const cashUnits = new BigInt64Array(size);
  const cash = new Float64Array(size);
  const bands = new Uint8Array(size);
  const targetRatio = new Float64Array(size);

  const accountId = (index: number): string => `acct-${index.toString().padStart(7, "0")}`;
  const buildAccount = (index: number, lines: readonly DraftLine[], cashText: string): Account => ({
    accountId: accountId(index),
    cash: dec(cashText),
    holdings: lines
      .filter((line) => line.kind === LINE_HOLDING)
      .map((line) => ({
        asset: assets[line.ref] ?? "?",
        quantity: dec(unitsToString(line.units, quantityScaleOf(LINE_HOLDING, line.ref))),
      })),
    positions: lines
      .filter((line) => line.kind === LINE_POSITION)
      .map((line) => ({
        instrument: instruments[line.ref] ?? "?",
        size: dec(unitsToString(line.units, quantityScaleOf(LINE_POSITION, line.ref))),
        entryPrice: dec(unitsToString(line.entryUnits, priceScaleOfInstrument[line.ref] ?? 0)),
      })),
    pendingDeposits: [],
  });

  /** Whole units of an asset (at price units Pu, scale ps) whose value is a multiple of $1,000. */
  const wholeUnitsForThousands = (priceUnits: bigint, priceScale: number): bigint => {
    const modulus = 1000n * pow10(priceScale);
    return modulus / gcd(priceUnits, modulus);
  };

  /** A line worth about `notional`, of a random kind, not already in `used`. */
  const randomLine = (random: Random, notional: number, used: Set<number>): DraftLine => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const roll = random.next();
      if (roll < 0.7) {
        const isShort = roll >= 0.55;
        const pool = isShort
          ? shortable
          : roll < 0.2
            ? cryptoAssets
            : roll < 0.45
              ? equityAssets
              : stableAssets;
        const ref = random.pick(pool);
        if (used.has(ref)) continue;
        used.add(ref);
        const spec = ASSETS[ref];
        const units = Math.max(
          1,
          Math.round((notional / (assetPrice[ref] ?? 1)) * 10 ** (spec?.quantityScale ?? 0)),
        );
        return { kind: LINE_HOLDING, ref, units: BigInt(isShort ? -units : units), entryUnits: 0n };
      }
      const ref = random.below(INSTRUMENTS.length);
      if (used.has(1000 + ref)) continue;
      used.add(1000 + ref);
      const underlying = instrumentUnderlying[ref] ?? 0;
      const price = assetPrice[underlying] ?? 1;
      const scale = INSTRUMENTS[ref]?.quantityScale ?? 0;
      const units = Math.max(1, Math.round((notional / price) * 10 ** scale));
      const priceScale = priceScaleOfInstrument[ref] ?? 0;
      const entry = Math.max(1, Math.round(price * random.between(0.75, 1.25) * 10 ** priceScale));
      return {
        kind: LINE_POSITION,
        ref,
        units: BigInt(random.next() < 0.5 ? -units : units),
        entryUnits: BigInt(entry),
      };
    }
    throw new Error("could not draw a new line");
  };

  /** A line whose every contribution is a whole multiple of $1,000 (so ties land on cents exactly). */
  const niceLine = (random: Random, notional: number, used: Set<number>): DraftLine => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const roll = random.next();
      if (roll < 0.75) {
        const ref = random.pick(roll < 0.6 ? niceLong : niceShort);
        if (used.has(ref)) continue;
        used.add(ref);
        const spec = ASSETS[ref];
        const priceUnits = assetPriceUnits[ref] ?? 1n;
        const step = wholeUnitsForThousands(priceUnits, spec?.priceScale ?? 0);
        const steps = BigInt(Math.max(1, Math.round(notional / ((assetPrice[ref] ?? 1) * Number(step)))));
        const units = step * steps * pow10(spec?.quantityScale ?? 0);
        return { kind: LINE_HOLDING, ref, units: roll < 0.6 ? units : -units, entryUnits: 0n };
      }
      const ref = random.pick(nicePerps);
      if (used.has(1000 + ref)) continue;
      used.add(1000 + ref);
      const underlying = instrumentUnderlying[ref] ?? 0;
      const priceScale = priceScaleOfInstrument[ref] ?? 0;
      const priceUnits = assetPriceUnits[underlying] ?? 1n;
      const step = wholeUnitsForThousands(priceUnits, priceScale);
      const steps = BigInt(
        Math.max(1, Math.round(notional / ((assetPrice[underlying] ?? 1) * Number(step)))),
      );
      // Entry prices whose product with the size is also a multiple of $1,000.
      const modulus = 1000n * pow10(priceScale);
      const entryStep = modulus / gcd(step, modulus);
      const offset = BigInt(Math.round(random.between(-0.2, 0.2) * Number(priceUnits / entryStep)));
      const entry = priceUnits + offset * entryStep;
      const units = step * steps * pow10(INSTRUMENTS[ref]?.quantityScale ?? 0);
      return {
        kind: LINE_POSITION,
        ref,
        units: random.next() < 0.5 ? -units : units,
        entryUnits: entry > 0n ? entry : priceUnits,
      };
    }
    throw new Error("could not draw a new nice line");
  };

  /** A line whose notional is exactly a tier floor. */
  const floorLine = (random: Random, used: Set<number>): DraftLine => {
    const eth = assetIndex.get("ETH") ?? 0;
    const jpm = assetIndex.get("JPM") ?? 0;
    const ethPerp = instruments.indexOf("ETH-PERP");
    const choice = random.below(4);
    if (choice === 0) {
      used.add(eth);
      const whole = random.pick([100n, 400n, 2000n]); // 250,000 / 1,000,000 / 5,000,000 at 2,500
      return { kind: LINE_HOLDING, ref: eth, units: whole * pow10(8), entryUnits: 0n };
    }
    if (choice === 1) {
      used.add(jpm);
      const whole = random.pick([2500n, 10000n, -2500n]); // 500,000 / 2,000,000 at 200 (long and short)
      return { kind: LINE_HOLDING, ref: jpm, units: whole * pow10(4), entryUnits: 0n };
    }
    used.add(1000 + ethPerp);
    const whole = random.pick([20n, 100n, 400n, 4000n]); // 50,000 … 10,000,000 at 2,500
    const entry = BigInt(Math.round(random.between(2000, 3000) * 100));
    return {
      kind: LINE_POSITION,
      ref: ethPerp,
      units: (random.next() < 0.5 ? -whole : whole) * pow10(3),
      entryUnits: entry,
    };
  };

  const nonTieBand = (roll: number): number => {
    if (roll < mix.breach) return Band.BREACH;
    if (roll < mix.breach + mix.warning) return Band.WARNING;
    if (roll < mix.breach + mix.warning + mix.aboveWarning) return Band.ABOVE_WARNING;
    return Band.HEALTHY;
  };
  const ratioFor = (band: number, random: Random): number => {
    switch (band) {
      case Band.BREACH:
        return random.between(0.3, 1);
      case Band.WARNING:
        return random.between(1, 1.05);
      case Band.ABOVE_WARNING:
        return random.between(1.05, 1.15);
      default:
        return 1.15 * 10 ** random.between(0, 1.1);
    }
  };

  let line = 0;
  const writeLine = (draft: DraftLine): void => {
    lineKind[line] = draft.kind;
    lineRef[line] = draft.ref;
    const slot = draft.kind === LINE_HOLDING ? draft.ref : assets.length + draft.ref;
    lineTarget[line] = 2 * slot + (draft.units < 0n ? 1 : 0);
    quantityUnits[line] = draft.units;
    entryUnits[line] = draft.entryUnits;
    const scale = quantityScaleOf(draft.kind, draft.ref);
    quantity[line] = unitsToDouble(draft.units, scale);
    entryPrice[line] =
      draft.kind === LINE_POSITION
        ? unitsToDouble(draft.entryUnits, priceScaleOfInstrument[draft.ref] ?? 0)
        : 0;
    line++;
  };
  const setCash = (index: number, units: bigint): void => {
    cashUnits[index] = units;
    cash[index] = unitsToDouble(units, CURRENCY_SCALE);
  };

  for (let index = 0; index < size; index++) {
    lineStart[index] = line;
    const random = new Random(seed, index);
    const count =
      linesOption === "mixed" ? 1 + Math.floor(19.999 * random.next() ** 2) : Math.max(1, linesOption);
    const scale = 10 ** random.between(3, 6.3);
    const notional = () => scale * 10 ** random.between(-1, 0.4);
    const roll = random.next();
    const used = new Set<number>();
    if (roll < mix.onLine) {
      bands[index] = Band.ON_LINE;
      // Exactly on a line, or one cent either side: cash = k·M − X (+ 0.01 or − 0.01).
      // The nice universe has ten names: a tie account has at most eight lines.
      const drafts = Array.from({ length: Math.min(count, 8) }, () => niceLine(random, notional(), used));
      const valuation = valueAccount(buildAccount(index, drafts, "0"), marks, policy);
      const onWarning = random.next() < 0.5;
      const target = valuation.maintenance.times(onWarning ? warningFactor : dec("1"));
      const exact = target.minus(valuation.adjustedEquity);
      if (exact.decimalPlaces() > CURRENCY_SCALE)
        throw new Error(`account ${index}: a tie off the cent grid`);
      const nudge = random.pick(["0", "0", "0.01", "-0.01"]);
      const cashValue: Dec = exact.plus(dec(nudge));
      for (const draft of drafts) writeLine(draft);
      setCash(index, BigInt(cashValue.toFixed(CURRENCY_SCALE).replace(".", "")));
      continue;
    }
    const drafts: DraftLine[] = [];
    if (roll < mix.onLine + mix.tierFloor) {
      bands[index] = Band.TIER_FLOOR;
      drafts.push(floorLine(random, used));
    }
    while (drafts.length < count) drafts.push(randomLine(random, notional(), used));
    for (const draft of drafts) writeLine(draft);
    const band = nonTieBand(random.next());
    if (bands[index] !== Band.TIER_FLOOR) bands[index] = band;
    targetRatio[index] = ratioFor(band, random);
  }
  lineStart[size] = line;

  const book: CompiledBook = {
    size,
    targets,
    lineStart,
    lineTarget: lineTarget.subarray(0, line),
    quantity: quantity.subarray(0, line),
    entryPrice: entryPrice.subarray(0, line),
    cash,
    account: (index) => {
      if (!(index >= 0 && index < size)) throw new RangeError(`no account ${index} in a book of ${size}`);
      const holdings: Holding[] = [];
      const positions: Position[] = [];
      const from = lineStart[index] ?? 0;
      const to = lineStart[index + 1] ?? from;
      for (let at = from; at < to; at++) {
        const ref = lineRef[at] ?? 0;
        const units = quantityUnits[at] ?? 0n;
        if (lineKind[at] === LINE_HOLDING) {
          holdings.push({
            asset: assets[ref] ?? "?",
            quantity: dec(unitsToString(units, quantityScaleOf(LINE_HOLDING, ref))),
          });
        } else {
          positions.push({
            instrument: instruments[ref] ?? "?",
            size: dec(unitsToString(units, quantityScaleOf(LINE_POSITION, ref))),
            entryPrice: dec(unitsToString(entryUnits[at] ?? 0n, priceScaleOfInstrument[ref] ?? 0)),
          });
        }
      }
      return {
        accountId: accountId(index),
        cash: dec(unitsToString(cashUnits[index] ?? 0n, CURRENCY_SCALE)),
        holdings,
        positions,
        pendingDeposits: [],
      };
    },
  };

  // Cash for the target ratios, aimed in floats (cash = r·M − X): only where the account lands matters.
  const adjusted = new Float64Array(size);
  const maintenance = new Float64Array(size);
  const zeroCash = new Float64Array(size);
  floatValues({ ...book, cash: zeroCash }, prepareScreen(book, marks, policy), adjusted, maintenance);
  const unitsPerCurrency = 10 ** CURRENCY_SCALE;
  for (let index = 0; index < size; index++) {
    if (bands[index] === Band.ON_LINE) continue;
    const ratio = targetRatio[index] ?? 2;
    const wanted = ratio * (maintenance[index] ?? 0) - (adjusted[index] ?? 0);
    setCash(index, BigInt(Math.round(wanted * unitsPerCurrency)));
  }

  return {
    policy,
    marks,
    book,
    bands,
    lineCount: line,
    accounts: (from = 0, to = size) => {
      const out: Account[] = [];
      for (let index = from; index < to; index++) out.push(book.account(index));
      return out;
    },
  };
}
