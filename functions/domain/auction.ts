/**
 * Dutch-auction limit prices for liquidation steps (Maker Liquidations 2.0: clip.sol for the reset rule,
 * abaci.sol for the price curves). See docs/liquidation.md, section 4.
 *
 * A sale starts at top = mark × buf and its limit falls with the elapsed seconds e of the current cycle:
 *
 *   LINEAR  f(e) = (tau − e) / tau, 0 from tau on        (abaci LinearDecrease)
 *   STEP    f(e) = cut^⌊e / step⌋                         (abaci StairstepExponentialDecrease)
 *   SELL    limit(e) = FLOOR(top × f(e))
 *   BUY     limit(e) = CEIL(2 × mark − top × f(e))        (the mirror: as far above the mark as a sale is below)
 *
 * A cycle ends (clip.sol `redo`) at the first whole second e with e > tail, or with the limit past the cusp
 * line: for a sale limit(e) < cusp × top, for a buy limit(e) > 2 × mark − cusp × top. The next cycle starts
 * again from top. The cusp test uses the rounded limit, so no price an execution system is given is ever
 * past the cusp line. Pure: no clock; the caller gives the elapsed seconds.
 */
import { type Dec, ONE, quantize, Rounding, ZERO } from "./money.ts";

/** The `liquidation.auction` policy, compiled. */
export type AuctionPolicy =
  | {
      readonly kind: "LINEAR";
      readonly buf: Dec;
      readonly tauSeconds: number;
      readonly tailSeconds: number;
      readonly cusp: Dec;
    }
  | {
      readonly kind: "STEP";
      readonly buf: Dec;
      readonly stepSeconds: number;
      readonly cut: Dec;
      readonly tailSeconds: number;
      readonly cusp: Dec;
    };

/** A schedule before its cycle length is derived. */
type ScheduleBase = AuctionPolicy & {
  readonly side: "SELL" | "BUY";
  /** ISO-8601 UTC instant of e = 0. Absent: the request's `recordedAt`. */
  readonly startsAt?: string;
  /** The mark the schedule was computed from. */
  readonly markPrice: Dec;
  /** mark × buf, exact (Maker's `top`). */
  readonly top: Dec;
  /** Decimal places of the limit prices (the asset's priceScale). */
  readonly priceScale: number;
};

/** The schedule one liquidation step carries, so that an execution system can follow it. */
export type AuctionSchedule = ScheduleBase & {
  /** The schedule restarts from top every this many seconds (derived: the first reset, at least 1). */
  readonly cycleSeconds: number;
};

/** The price where the schedule resets, before rounding: cusp × top for a sale, its mirror for a buy. */
export function cuspLine(schedule: ScheduleBase): Dec {
  const sellLine = schedule.top.times(schedule.cusp);
  return schedule.side === "SELL" ? sellLine : schedule.markPrice.times(2).minus(sellLine);
}

/** The decay factor f(e) within a cycle, exact (`cut^k` at 60 significant digits). */
function decay(policy: AuctionPolicy, elapsedSeconds: number): Dec {
  if (policy.kind === "LINEAR") {
    if (elapsedSeconds >= policy.tauSeconds) return ZERO;
    return ONE.minus(ONE.times(elapsedSeconds).dividedBy(policy.tauSeconds));
  }
  return policy.cut.toPower(Math.floor(elapsedSeconds / policy.stepSeconds));
}

/** The limit at e seconds into a cycle, ignoring resets: FLOOR for a sale, CEIL for a buy, at the price scale. */
function limitWithinCycle(schedule: ScheduleBase, elapsedSeconds: number): Dec {
  const sale = schedule.top.times(decay(schedule, elapsedSeconds));
  return schedule.side === "SELL"
    ? quantize(sale, schedule.priceScale, Rounding.FLOOR)
    : quantize(schedule.markPrice.times(2).minus(sale), schedule.priceScale, Rounding.CEIL);
}

function resets(schedule: ScheduleBase, elapsedSeconds: number): boolean {
  if (elapsedSeconds > schedule.tailSeconds) return true;
  const limit = limitWithinCycle(schedule, elapsedSeconds);
  const line = cuspLine(schedule);
  return schedule.side === "SELL" ? limit.lessThan(line) : limit.greaterThan(line);
}

/**
 * The first whole second at which the schedule resets, at least 1. The limit is monotone in e, so the
 * reset test is too, and a binary search over [0, tail + 1] finds it in at most ~25 evaluations. A start
 * already past the cusp (a price scale too coarse for the mark) gives a cycle of 1 s: the limit stays at
 * the start.
 */
function firstResetSeconds(schedule: ScheduleBase): number {
  let low = 0; // does not reset (checked below)
  let high = schedule.tailSeconds + 1; // resets: e > tail
  if (resets(schedule, low)) return 1;
  for (let iteration = 0; iteration < 64 && high - low > 1; iteration++) {
    const middle = Math.floor((low + high) / 2);
    if (resets(schedule, middle)) high = middle;
    else low = middle;
  }
  return high;
}

/** The schedule of one step from the policy, the step's side and mark, and the asset's price scale. */
export function auctionSchedule(
  policy: AuctionPolicy,
  side: "SELL" | "BUY",
  markPrice: Dec,
  priceScale: number,
  startsAt?: string,
): AuctionSchedule {
  if (!markPrice.greaterThan(ZERO)) throw new Error("invariant: an auction needs a positive mark");
  const base = {
    ...policy,
    side,
    ...(startsAt === undefined ? {} : { startsAt }),
    markPrice,
    top: markPrice.times(policy.buf),
    priceScale,
  };
  return { ...base, cycleSeconds: firstResetSeconds(base) };
}

export interface AuctionPrice {
  /** The limit price at that moment, at the price scale. */
  readonly limitPrice: Dec;
  /** 0 for the first cycle, then one more per reset. */
  readonly cycle: number;
  /** Seconds into the current cycle. */
  readonly cycleElapsedSeconds: number;
}

/** The limit price `elapsedSeconds` (a whole number ≥ 0) after the schedule's start, resets included. */
export function auctionPrice(schedule: AuctionSchedule, elapsedSeconds: number): AuctionPrice {
  if (!Number.isSafeInteger(elapsedSeconds) || elapsedSeconds < 0) {
    throw new Error(`elapsedSeconds must be a whole number of seconds ≥ 0, not ${elapsedSeconds}`);
  }
  if (!Number.isSafeInteger(schedule.cycleSeconds) || schedule.cycleSeconds < 1) {
    throw new Error(`invariant: cycleSeconds must be ≥ 1, not ${schedule.cycleSeconds}`);
  }
  const cycle = Math.floor(elapsedSeconds / schedule.cycleSeconds);
  const cycleElapsedSeconds = elapsedSeconds - cycle * schedule.cycleSeconds;
  return { limitPrice: limitWithinCycle(schedule, cycleElapsedSeconds), cycle, cycleElapsedSeconds };
}
