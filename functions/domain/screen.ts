/**
 * A float64 screen over a whole book, with a proven error bound and an exact recheck. docs/float-screen.md
 * has the proof; this comment is the summary.
 *
 * For each account the screen computes, in IEEE double precision, the adjusted equity Â and the maintenance
 * requirement M̂ by the formulas of valuation.ts, together with the magnitude sums Ŝ_A (Σ |each adjusted
 * term|) and Ŝ_M (Σ N·rate + amount over the lines). With L lines and k̂ the warning factor 1 + cushion,
 *
 *   E = (L + 32) · 2^-51 · (Ŝ_A + k̂ · Ŝ_M)
 *
 * bounds the distance between the float value D̂ = Â − k·M̂ and the decimal reference's
 * adjusted − k · maintenance, for k = 1 and for k = 1 + cushion. So when |D̂| > E the sign of D̂ is the sign
 * of the reference's, and `ratioBelow(valuation, k)` is decided without decimals.
 *
 * The rest goes to exact decimals:
 * - every account within the bound of a line (|D̂| ≤ E), with a notional within a relative 2^-48 of a tier
 *   floor, or with an input the screen does not take (a missing mark or policy entry, a value outside
 *   [2^-300, 2^300], carried as NaN so that every comparison fails): valueAccount + sizeCall, the reference
 *   itself;
 * - every account the floats put in breach: its call amount is money, so it is computed in decimals, by
 *   sizeCall on the exact adjusted equity and maintenance. Those two are computed by `exactFigures` with the
 *   very decimal operations valueAccount applies, on the same operands in the same order, with the per-asset
 *   operands (price, 1 − haircut, volatility-scaled tiers) derived once per revaluation instead of once per
 *   line, so they are the same decimals; see docs/float-screen.md, §7.
 *
 * The floats only ever choose between "decided" and "ask the decimals"; they never become money.
 */
import { sizeCall } from "./calls.ts";
import { type Dec, ONE, Rounding, toFixedString, ZERO } from "./money.ts";
import type { Policy, Tier } from "./policy.ts";
import {
  type Account,
  cashOf,
  type Marks,
  ratioBelow,
  scaleTiers,
  tieredRequirement,
  tierIndexFor,
  type Valuation,
  valueAccount,
  volatilityMultiplier,
} from "./valuation.ts";

/** The decision buckets, by code: what the screen and the exact reference must agree on. */
export const MarginState = { HEALTHY: 0, WARNING: 1, BREACH: 2 } as const;
export type MarginState = (typeof MarginState)[keyof typeof MarginState];
export const STATE_NAMES = ["HEALTHY", "WARNING", "BREACH"] as const;

/** Why an account went to exact decimals. */
export const Recheck = {
  NONE: 0,
  /** In breach by the floats: the call amount is money, so it is computed in decimals. */
  BREACH: 1,
  /** |D̂| ≤ E for k = 1 or k = 1 + cushion: too close to a decision line to call in floats. */
  NEAR_LINE: 2,
  /** A notional within the float error of a tier floor. */
  TIER_FLOOR: 3,
  /** NaN somewhere: an input the screen does not take (missing mark or policy entry, out of range). */
  UNSCREENABLE: 4,
} as const;
export type Recheck = (typeof Recheck)[keyof typeof Recheck];
export const RECHECK_NAMES = ["NONE", "BREACH", "NEAR_LINE", "TIER_FLOOR", "UNSCREENABLE"] as const;

/** What a line is: a holding of an asset (owned, or borrowed when `short`), or a position in an instrument. */
export interface LineTarget {
  readonly kind: "HOLDING" | "POSITION";
  /** The asset of a holding, the instrument of a position. */
  readonly name: string;
  /** A borrowed holding or a short position: the quantity is negative. */
  readonly short: boolean;
}

/**
 * A book compiled for the screen: the lines of every account in typed arrays, as doubles of their exact
 * decimals, and the exact account itself on demand for the recheck.
 *
 * Each double is its decimal rounded to a double at most twice (Number of the decimal string; or Number of
 * integer units, then divided by 10^scale): relative error within (1 + u)² − 1, u = 2^-53. Zero-quantity
 * lines and holdings of the policy currency are not lines: the currency is folded into cash, as `cashOf`
 * does. A line's target says whether it is long or short, by the sign of its exact quantity.
 */
export interface CompiledBook {
  readonly size: number;
  readonly targets: readonly LineTarget[];
  /** Account i has lines lineStart[i] … lineStart[i + 1] − 1. Length size + 1. */
  readonly lineStart: Uint32Array;
  /** Index into `targets`. */
  readonly lineTarget: Uint16Array;
  /** Holding quantity (negative: borrowed) or position size (negative: short). */
  readonly quantity: Float64Array;
  /** Entry price of a position; 0 for holdings. */
  readonly entryPrice: Float64Array;
  /** Cash in the policy currency, currency holdings included. */
  readonly cash: Float64Array;
  /** The exact inputs of account `index`, for the exact path. */
  account(index: number): Account;
}

/** 2^-300 and 2^300: the screen takes no input outside these magnitudes (docs/float-screen.md, §2). */
const MIN_MAGNITUDE = 2 ** -300;
const MAX_MAGNITUDE = 2 ** 300;
/** Relative half-width of the "too close to a tier floor" window: 2^-48 = 32u. */
const FLOOR_WINDOW = 2 ** -48;
/** The bound's coefficient is (L + 32) of these (docs/float-screen.md, §5). */
const BOUND_UNIT = 2 ** -51;

/** The double the screen uses for `x`: itself, or NaN when it is outside the range the proof covers. */
export function screenable(x: number): number {
  const magnitude = Math.abs(x);
  return x === 0 || (magnitude >= MIN_MAGNITUDE && magnitude <= MAX_MAGNITUDE) ? x : Number.NaN;
}

/** A decimal as the nearest double (Number of its plain string), or NaN when out of range. */
export function decimalToDouble(value: Dec): number {
  return screenable(Number(value.toFixed()));
}

const POWERS_OF_TEN = Array.from({ length: 23 }, (_, exponent) => 10 ** exponent);

/** units / 10^scale as a double: Number(units) and one division, each correctly rounded. Scale ≤ 22. */
export function unitsToDouble(units: bigint, scale: number): number {
  const power = POWERS_OF_TEN[scale];
  if (power === undefined) throw new RangeError(`scale ${scale} is above 22`);
  return screenable(Number(units) / power);
}

const MAX_TARGETS = 0x10000;

/** Compiles accounts given as decimals (the engine's own objects) for the screen. */
export function compileAccounts(accounts: readonly Account[], policy: Policy): CompiledBook {
  const targets: LineTarget[] = [];
  const targetIndex = new Map<string, number>();
  const indexOf = (kind: LineTarget["kind"], name: string, short: boolean): number => {
    const key = `${kind} ${short ? "-" : "+"} ${name}`;
    let index = targetIndex.get(key);
    if (index === undefined) {
      index = targets.length;
      if (index >= MAX_TARGETS) throw new RangeError(`more than ${MAX_TARGETS} line targets in a book`);
      targets.push({ kind, name, short });
      targetIndex.set(key, index);
    }
    return index;
  };
  let lineCount = 0;
  for (const account of accounts) lineCount += account.holdings.length + account.positions.length;
  const lineStart = new Uint32Array(accounts.length + 1);
  const lineTarget = new Uint16Array(lineCount);
  const quantity = new Float64Array(lineCount);
  const entryPrice = new Float64Array(lineCount);
  const cash = new Float64Array(accounts.length);
  let line = 0;
  accounts.forEach((account, index) => {
    lineStart[index] = line;
    // The same fold as valueAccount: currency holdings into cash, zero holdings dropped.
    const folded = cashOf(account, policy);
    cash[index] = decimalToDouble(folded.cash);
    for (const holding of folded.holdings) {
      lineTarget[line] = indexOf("HOLDING", holding.asset, holding.quantity.isNegative());
      quantity[line] = decimalToDouble(holding.quantity);
      line++;
    }
    for (const position of account.positions) {
      if (position.size.isZero()) continue;
      lineTarget[line] = indexOf("POSITION", position.instrument, position.size.isNegative());
      quantity[line] = decimalToDouble(position.size);
      entryPrice[line] = decimalToDouble(position.entryPrice);
      line++;
    }
  });
  lineStart[accounts.length] = line;
  return {
    size: accounts.length,
    targets,
    lineStart,
    lineTarget: lineTarget.subarray(0, line),
    quantity: quantity.subarray(0, line),
    entryPrice: entryPrice.subarray(0, line),
    cash,
    account: (index) => {
      const account = accounts[index];
      if (!account) throw new RangeError(`no account ${index} in a book of ${accounts.length}`);
      return account;
    },
  };
}

/** The decimal operands of one asset or instrument at one revaluation, as valuation.ts derives them. */
interface ExactOperands {
  readonly price: Dec;
  /** 1 − haircut (after the volatility multiplier); holdings only. */
  readonly keep: Dec;
  readonly longTiers: readonly Tier[];
  /** Undefined: the asset may not be borrowed. */
  readonly shortTiers: readonly Tier[] | undefined;
}

function positivePrice(marks: Marks, asset: string) {
  const mark = marks.get(asset);
  return mark?.price.greaterThan(ZERO) ? mark : undefined;
}

/**
 * The operands of a holding of `asset`, exactly as holdingLine derives them (multiplier, capped haircut,
 * scaled tiers); undefined when holdingLine would throw (no policy entry or no positive mark).
 */
function assetOperands(asset: string, marks: Marks, policy: Policy): ExactOperands | undefined {
  const assetPolicy = policy.assets.get(asset);
  const mark = positivePrice(marks, asset);
  if (!assetPolicy || !mark) return undefined;
  const multiplier = volatilityMultiplier(assetPolicy.volatility, mark.realizedVolatility);
  const scaledHaircut = assetPolicy.haircut.times(multiplier);
  const haircut = scaledHaircut.greaterThan(ONE) ? ONE : scaledHaircut;
  return {
    price: mark.price,
    keep: ONE.minus(haircut),
    longTiers: scaleTiers(assetPolicy.longTiers, multiplier),
    shortTiers: assetPolicy.shortTiers ? scaleTiers(assetPolicy.shortTiers, multiplier) : undefined,
  };
}

/** The operands of a position in `name`, exactly as positionLine derives them. */
function instrumentOperands(name: string, marks: Marks, policy: Policy): ExactOperands | undefined {
  const instrument = policy.instruments.get(name);
  const mark = instrument ? positivePrice(marks, instrument.underlying) : undefined;
  if (!instrument || !mark) return undefined;
  const tiers = scaleTiers(
    instrument.tiers,
    volatilityMultiplier(instrument.volatility, mark.realizedVolatility),
  );
  return { price: mark.price, keep: ONE, longTiers: tiers, shortTiers: tiers };
}

/**
 * The policy and the marks of one revaluation, as doubles by line target: the price, 1 − haircut for an
 * owned holding (1 otherwise), and the tier table (after the volatility multiplier, exactly as valuation.ts
 * derives it, then converted). Table 0 is a poison table (NaN rate): a borrowed holding of an asset that may
 * not be borrowed, or anything missing, lands there and goes to exact.
 */
export interface ScreenTables {
  readonly targetPrice: Float64Array;
  readonly targetKeep: Float64Array;
  readonly targetTable: Int32Array;
  readonly tableStart: Int32Array;
  readonly tableEnd: Int32Array;
  readonly tierRate: Float64Array;
  readonly tierAmount: Float64Array;
  /** F̂, the floor as a double (for a float-only evaluation; the screen uses the window below). */
  readonly tierFloor: Float64Array;
  /** F̂·(1 − 2^-48) and F̂·(1 + 2^-48): a notional between them is too close to the floor to call. */
  readonly tierFloorLow: Float64Array;
  readonly tierFloorHigh: Float64Array;
  /** 1 + cushion as a double. */
  readonly warningFactor: number;
}

/** Builds the tables for one revaluation. Cheap: a few decimal operations per asset and tier. */
export function prepareScreen(
  book: Pick<CompiledBook, "targets">,
  marks: Marks,
  policy: Policy,
): ScreenTables {
  const starts: number[] = [0];
  const ends: number[] = [1];
  const rates: number[] = [Number.NaN];
  const amounts: number[] = [Number.NaN];
  const floors: number[] = [Number.NaN];
  const lows: number[] = [Number.NaN];
  const highs: number[] = [Number.NaN];
  const tableOf = new Map<readonly Tier[], number>();
  const addTable = (tiers: readonly Tier[] | undefined): number => {
    if (!tiers || tiers.length === 0) return 0;
    const known = tableOf.get(tiers);
    if (known !== undefined) return known;
    const table = starts.length;
    starts.push(rates.length);
    for (const tier of tiers) {
      const floor = decimalToDouble(tier.notionalFloor);
      rates.push(decimalToDouble(tier.maintenanceRate));
      amounts.push(decimalToDouble(tier.maintenanceAmount));
      floors.push(floor);
      lows.push(floor * (1 - FLOOR_WINDOW));
      highs.push(floor * (1 + FLOOR_WINDOW));
    }
    ends.push(rates.length);
    tableOf.set(tiers, table);
    return table;
  };
  const operands = new Map<string, ExactOperands | undefined>();
  const operandsOf = (target: LineTarget): ExactOperands | undefined => {
    const key = `${target.kind} ${target.name}`;
    if (!operands.has(key)) {
      operands.set(
        key,
        target.kind === "HOLDING"
          ? assetOperands(target.name, marks, policy)
          : instrumentOperands(target.name, marks, policy),
      );
    }
    return operands.get(key);
  };

  const count = book.targets.length;
  const targetPrice = new Float64Array(count).fill(Number.NaN);
  const targetKeep = new Float64Array(count).fill(Number.NaN);
  const targetTable = new Int32Array(count);
  book.targets.forEach((target, index) => {
    const exact = operandsOf(target);
    if (!exact) return;
    targetPrice[index] = decimalToDouble(exact.price);
    targetKeep[index] = target.kind === "HOLDING" && !target.short ? decimalToDouble(exact.keep) : 1;
    targetTable[index] = addTable(target.short ? exact.shortTiers : exact.longTiers);
  });

  return {
    targetPrice,
    targetKeep,
    targetTable,
    tableStart: Int32Array.from(starts),
    tableEnd: Int32Array.from(ends),
    tierRate: Float64Array.from(rates),
    tierAmount: Float64Array.from(amounts),
    tierFloor: Float64Array.from(floors),
    tierFloorLow: Float64Array.from(lows),
    tierFloorHigh: Float64Array.from(highs),
    warningFactor: decimalToDouble(ONE.plus(policy.warningCushion)),
  };
}

/** One account's decision: its bucket and the call amount at the currency scale ("0.00" when none). */
export interface Decision {
  readonly state: MarginState;
  readonly callAmount: string;
}

function decide(
  figures: Pick<Valuation, "adjustedEquity" | "maintenance">,
  sizing: { readonly inBreach: boolean; readonly amount: Dec },
  policy: Policy,
  warningFactor: Dec,
): Decision {
  const state = sizing.inBreach
    ? MarginState.BREACH
    : ratioBelow(figures, warningFactor)
      ? MarginState.WARNING
      : MarginState.HEALTHY;
  return { state, callAmount: toFixedString(sizing.amount, policy.currencyScale, Rounding.UP) };
}

/**
 * The exact decision, by the decimal reference: BREACH when `sizeCall(...).inBreach`, WARNING when not in
 * breach but the ratio is below 1 + cushion, HEALTHY otherwise; the call amount is `sizeCall(...).amount`.
 */
export function exactDecision(account: Account, marks: Marks, policy: Policy, warningFactor?: Dec): Decision {
  const valuation = valueAccount(account, marks, policy);
  return decide(
    valuation,
    sizeCall(valuation, policy),
    policy,
    warningFactor ?? ONE.plus(policy.warningCushion),
  );
}

/**
 * tieredRequirement(tiers, notional).maintenance, without its initial requirement: the same tier (by
 * tierIndexFor) and the same expression, notional × rate − amount.
 */
function tieredMaintenance(tiers: readonly Tier[], notional: Dec): Dec {
  const tier = tiers[tierIndexFor(tiers, notional)];
  if (!tier) return tieredRequirement(tiers, notional).maintenance; // an empty table: let it throw
  return notional.times(tier.maintenanceRate).minus(tier.maintenanceAmount);
}

/**
 * Adjusted equity and maintenance of one account, equal to valueAccount's: the same decimal operations on the
 * same operands, in the same order (cash from cashOf; then for each holding and then each position,
 * value = q × P, its contribution value × (1 − haircut), value, or size × (P − entry); the requirement
 * tieredRequirement's on |value|; summed from cash and from zero). Only the per-asset operands are derived
 * once per revaluation, by the same functions. Undefined when valueAccount would throw.
 */
function exactFigures(
  account: Account,
  operands: (kind: LineTarget["kind"], name: string) => ExactOperands | undefined,
  policy: Policy,
): { adjustedEquity: Dec; maintenance: Dec } | undefined {
  const { cash, holdings } = cashOf(account, policy);
  let adjustedEquity = cash;
  let maintenance = ZERO;
  for (const holding of holdings) {
    const exact = operands("HOLDING", holding.asset);
    const isLong = !holding.quantity.isNegative();
    const tiers = isLong ? exact?.longTiers : exact?.shortTiers;
    if (!exact || !tiers) return undefined;
    const value = holding.quantity.times(exact.price);
    adjustedEquity = adjustedEquity.plus(isLong ? value.times(exact.keep) : value);
    maintenance = maintenance.plus(tieredMaintenance(tiers, value.abs()));
  }
  for (const position of account.positions) {
    if (position.size.isZero()) continue;
    const exact = operands("POSITION", position.instrument);
    if (!exact) return undefined;
    const notional = position.size.times(exact.price);
    adjustedEquity = adjustedEquity.plus(position.size.times(exact.price.minus(position.entryPrice)));
    maintenance = maintenance.plus(tieredMaintenance(exact.longTiers, notional.abs()));
  }
  return { adjustedEquity, maintenance };
}

/** The parts of a Valuation that sizeCall does not read, for sizing from exactFigures. */
const UNUSED_BY_SIZE_CALL = {
  accountId: "",
  cash: ZERO,
  equity: ZERO,
  collateralGross: ZERO,
  collateralHaircut: ZERO,
  initial: ZERO,
  excess: ZERO,
  grossExposure: ZERO,
  pendingDeposits: ZERO,
  lines: [],
} as const satisfies Omit<Valuation, "adjustedEquity" | "maintenance">;

export interface ScreenResult {
  /** MarginState by account. */
  readonly state: Uint8Array;
  /** Recheck reason by account (Recheck.NONE: decided by the floats alone). */
  readonly recheck: Uint8Array;
  /** Call amounts of the accounts in breach (including "0.00" below the minimum transfer amount). */
  readonly callAmounts: ReadonlyMap<number, string>;
  /** The amount of an account not in breach: zero at the currency scale. */
  readonly noCall: string;
  /** Accounts decided in decimals, by reason. */
  readonly rechecked: {
    readonly total: number;
    readonly byReason: Readonly<Record<(typeof RECHECK_NAMES)[number], number>>;
  };
}

export function callAmountOf(result: ScreenResult, index: number): string {
  return result.callAmounts.get(index) ?? result.noCall;
}

/**
 * Screens a whole book at one set of marks. Every decision equals `exactDecision` of the same account
 * (docs/float-screen.md). Throws what valueAccount throws for an account it cannot value. `tables`, if
 * given, must have been prepared from the same book, marks and policy.
 */
export function screenBook(
  book: CompiledBook,
  marks: Marks,
  policy: Policy,
  tables: ScreenTables = prepareScreen(book, marks, policy),
): ScreenResult {
  const size = book.size;
  const state = new Uint8Array(size);
  const recheck = new Uint8Array(size);
  const pending = floatPass(book, tables, state, recheck);

  const warningFactor = ONE.plus(policy.warningCushion);
  const assetCache = new Map<string, ExactOperands | undefined>();
  const instrumentCache = new Map<string, ExactOperands | undefined>();
  const operands = (kind: LineTarget["kind"], name: string): ExactOperands | undefined => {
    const cache = kind === "HOLDING" ? assetCache : instrumentCache;
    let found = cache.get(name);
    if (found === undefined && !cache.has(name)) {
      found =
        kind === "HOLDING" ? assetOperands(name, marks, policy) : instrumentOperands(name, marks, policy);
      cache.set(name, found);
    }
    return found;
  };
  const callAmounts = new Map<number, string>();
  const byReason = { NONE: size - pending.length, BREACH: 0, NEAR_LINE: 0, TIER_FLOOR: 0, UNSCREENABLE: 0 };
  for (const index of pending) {
    const reason = recheck[index] ?? Recheck.UNSCREENABLE;
    byReason[RECHECK_NAMES[reason] ?? "UNSCREENABLE"]++;
    const account = book.account(index);
    let decision: Decision;
    const figures = reason === Recheck.BREACH ? exactFigures(account, operands, policy) : undefined;
    if (figures) {
      decision = decide(
        figures,
        sizeCall({ ...UNUSED_BY_SIZE_CALL, ...figures }, policy),
        policy,
        warningFactor,
      );
      if (decision.state !== MarginState.BREACH) {
        throw new Error(`screen invariant: account ${index} in breach by the bound, not in decimals`);
      }
    } else {
      decision = exactDecision(account, marks, policy, warningFactor);
    }
    state[index] = decision.state;
    if (decision.state === MarginState.BREACH) callAmounts.set(index, decision.callAmount);
  }
  return {
    state,
    recheck,
    callAmounts,
    noCall: toFixedString(ZERO, policy.currencyScale, Rounding.UP),
    rechecked: { total: pending.length, byReason },
  };
}

/**
 * The float pass alone, for a caller with an exact path of its own (the sweep's pages,
 * adapters/bulk-revalue.ts): an account with `recheck[i] === Recheck.NONE` is decided, and `state[i]` is
 * `exactDecision`'s state (the theorem of docs/float-screen.md, §6); every other account needs the decimals
 * and its `state` means nothing. No decimal is computed here.
 */
export function screenFloats(
  book: CompiledBook,
  tables: ScreenTables,
): { readonly state: Uint8Array; readonly recheck: Uint8Array } {
  const state = new Uint8Array(book.size);
  const recheck = new Uint8Array(book.size);
  floatPass(book, tables, state, recheck);
  return { state, recheck };
}

/**
 * The float pass: decides what the bound allows, records the rest in `recheck` and returns their indices.
 * One monomorphic loop over typed arrays; no allocation per account. The term of a line is
 * q·(P − e)·keep: for a holding e = 0 (so P − e = P exactly) and keep is 1 − haircut (owned) or 1
 * (borrowed); for a position keep = 1. Its magnitude is |q|·(P + |e|)·keep.
 */
function floatPass(
  book: CompiledBook,
  tables: ScreenTables,
  state: Uint8Array,
  recheck: Uint8Array,
): number[] {
  const { lineStart, lineTarget, quantity, entryPrice, cash } = book;
  const { targetPrice, targetKeep, targetTable, tableStart, tableEnd } = tables;
  const { tierRate, tierAmount, tierFloorLow, tierFloorHigh, warningFactor } = tables;
  const pending: number[] = [];
  let end = lineStart[0] as number;
  for (let account = 0; account < book.size; account++) {
    const start = end;
    end = lineStart[account + 1] as number;
    const c = cash[account] as number;
    let adjusted = c;
    let adjustedMagnitude = Math.abs(c);
    let maintenance = 0;
    let maintenanceMagnitude = 0;
    let nearFloor = false;
    for (let line = start; line < end; line++) {
      const target = lineTarget[line] as number;
      const q = quantity[line] as number;
      const entry = entryPrice[line] as number;
      const price = targetPrice[target] as number;
      const keep = targetKeep[target] as number;
      const size = Math.abs(q);
      adjusted += q * (price - entry) * keep;
      adjustedMagnitude += size * (price + Math.abs(entry)) * keep;
      const notional = size * price;
      const table = targetTable[target] as number;
      let tier = tableStart[table] as number;
      const last = tableEnd[table] as number;
      for (let next = tier + 1; next < last; next++) {
        if (notional >= (tierFloorHigh[next] as number)) tier = next;
        else {
          if (!(notional < (tierFloorLow[next] as number))) nearFloor = true;
          break;
        }
      }
      const byRate = notional * (tierRate[tier] as number);
      const amount = tierAmount[tier] as number;
      maintenance += byRate - amount;
      maintenanceMagnitude += byRate + amount;
    }
    const bound =
      (end - start + 32) * BOUND_UNIT * (adjustedMagnitude + warningFactor * maintenanceMagnitude);
    const belowOne = adjusted - maintenance;
    let reason: Recheck = Recheck.NONE;
    if (nearFloor) reason = Recheck.TIER_FLOOR;
    else if (Number.isNaN(bound)) reason = Recheck.UNSCREENABLE;
    else if (!(Math.abs(belowOne) > bound)) reason = Recheck.NEAR_LINE;
    else if (belowOne < 0) reason = Recheck.BREACH;
    else {
      const belowWarning = adjusted - warningFactor * maintenance;
      if (!(Math.abs(belowWarning) > bound)) reason = Recheck.NEAR_LINE;
      else state[account] = belowWarning < 0 ? MarginState.WARNING : MarginState.HEALTHY;
    }
    if (reason !== Recheck.NONE) {
      recheck[account] = reason;
      pending.push(account);
    }
  }
  return pending;
}
