/**
 * Cascade damping: how much may be under liquidation at once, and when new liquidations pause.
 *
 * Caps (Maker Liquidations 2.0's Hole and ilk.hole; Synthetix's limit per window). The notional of the
 * liquidation requests in flight, per asset and in total, may not exceed the policy's caps. A request is in
 * flight from when it was sent until the later of its settlement and the end of its window
 * (`cascade.windowSeconds`): a settled request still counts for the rest of its window, an unsettled one
 * counts until it settles (`usageInWindow`). Given the accounts that want a request now (`admit`):
 *
 *   - Priority: the deepest deficit first (lowest margin ratio), then the larger notional, then the account
 *     id, ascending.
 *   - In priority order, an account goes now when every cap it touches has room for all of its notional, and
 *     no cap it touches is reserved. Otherwise it waits, and every cap it was short of is reserved for it: no
 *     account after it in this decision takes room on that cap. So a waiting account is never passed over by
 *     a lower-priority one that fits only because it is smaller; lower accounts on other caps still go.
 *   - An account whose notional on some cap is larger than the cap itself can never go whole: it waits as
 *     EXCEEDS_CAP and reserves nothing (its plan must be cut to the cap, Maker's partial `dart`).
 *   - An account touching an asset whose breaker is tripped waits as PAUSED and reserves nothing.
 *   - Caps are never exceeded: after the decision, in-flight + admitted ≤ cap on every cap.
 *
 * Volatility circuit breaker (Maker's ClipperMom; Drift's 5× move check). Per asset, the move over the last
 * `circuitBreaker.windowSeconds` of marks is (high − low) / high, in either direction. When it is beyond
 * `maxMove` (low < high × (1 − maxMove), compared by products), the asset's breaker trips: new liquidation
 * requests on that asset pause, while calls, notices and requests already sent go on. It releases once the
 * move has been back within the limit for `coolDownSeconds`, counted from the first evaluation that found it
 * calm (any move beyond the limit restarts the count). Each trip and release is a decision to record as an
 * audit entry and an event (LiquidationPaused, LiquidationResumed).
 */
import { z } from "zod";
import { assert } from "./assert.ts";
import { type Dec, dec, isCanonicalDecimal, ONE, quantize, Rounding, sum, ZERO } from "./money.ts";
import { addSeconds, atOrAfter } from "./time.ts";

const decimalText = z
  .string({ error: 'must be a decimal string, e.g. "0.25"; numbers lose digits' })
  .refine(isCanonicalDecimal, {
    error: "must be a canonical decimal string (no exponent, sign or leading zeros)",
  });
const positiveAmount = decimalText.refine((text) => dec(text).greaterThan(ZERO), {
  error: "must be above 0",
});
const windowSeconds = z
  .int()
  .min(1)
  .max(7 * 24 * 3600);
const assetCode = z
  .string()
  .regex(/^[A-Z0-9][A-Z0-9._-]{0,31}$/, { error: "must be an asset code like BTC" });

/**
 * The policy section `cascade`. Optional as a whole (wire it with `.optional()`): omitted, nothing is capped.
 */
export const cascadeSchema = z.strictObject({
  /** How long a request counts against the caps after it was sent (and until it settles). Default 3600. */
  windowSeconds: windowSeconds.default(3600),
  /** The most notional, in the policy currency, in flight over all assets. Omitted: no total cap. */
  totalNotionalCap: positiveAmount.optional(),
  /** The most notional, in the policy currency, in flight per asset. An asset not listed is not capped. */
  assetNotionalCaps: z.record(assetCode, positiveAmount).default({}),
});
export type CascadePolicy = z.output<typeof cascadeSchema>;

/**
 * The policy section `circuitBreaker`. Optional as a whole (wire it with `.optional()`): omitted, no breaker.
 */
export const circuitBreakerSchema = z.strictObject({
  /** The move (high − low) / high within the window beyond which new liquidations pause. Default "0.4" (ClipperMom: 0.6×). */
  maxMove: decimalText
    .refine((text) => dec(text).greaterThan(ZERO) && dec(text).lessThan(ONE), {
      error: "must be between 0 and 1",
    })
    .default("0.4"),
  /** The window the move is measured over. Default 3600. */
  windowSeconds: windowSeconds.default(3600),
  /** How long the move must stay within the limit before liquidations resume. Default 900. */
  coolDownSeconds: z
    .int()
    .min(0)
    .max(7 * 24 * 3600)
    .default(900),
});
export type CircuitBreakerPolicy = z.output<typeof circuitBreakerSchema>;

/** The key of the total cap in a cap list; every other key is an asset. */
export const TOTAL_CAP = "TOTAL";
/** The most price samples one breaker evaluation reads, and the most candidates one admission decides. */
export const MAX_SAMPLES = 100_000;
export const MAX_CANDIDATES = 100_000;

export interface LiquidationCandidate {
  readonly accountId: string;
  /** Adjusted equity / maintenance: the lower, the deeper the deficit, the earlier it goes. */
  readonly marginRatio: Dec;
  /** The request's notional per asset, in the policy currency (|quantity| × mark of each step, by the asset that prices it). */
  readonly notionalByAsset: ReadonlyMap<string, Dec>;
}

export interface CascadeUsage {
  readonly total: Dec;
  readonly byAsset: ReadonlyMap<string, Dec>;
}

export interface InFlightRequest {
  readonly requestedAt: string;
  /** When its liquidation settled; null while it has not. */
  readonly settledAt: string | null;
  readonly notionalByAsset: ReadonlyMap<string, Dec>;
}

export type WaitReason = "PAUSED" | "EXCEEDS_CAP" | "CAP_FULL" | "BEHIND_HIGHER_PRIORITY";

export interface Waiting {
  readonly accountId: string;
  readonly reason: WaitReason;
  /** The caps (asset codes or TOTAL) it lacked room on; for PAUSED, the paused assets; for EXCEEDS_CAP, the caps it exceeds. */
  readonly caps: readonly string[];
  /** The caps reserved by a higher-priority account that it touches. */
  readonly behindOn: readonly string[];
  /** 1-based place in the priority order of all candidates: what "visible as waiting" shows. */
  readonly priority: number;
}

export interface Admission {
  readonly admitted: ReadonlyArray<{ readonly accountId: string; readonly priority: number }>;
  readonly waiting: readonly Waiting[];
  /** In flight after the admitted requests are sent. */
  readonly usageAfter: CascadeUsage;
}

/**
 * The notional in flight now: requests sent within the window, and those not yet settled. A request stamped
 * after `now` counts too: it was admitted on another writer's clock, a little ahead of this one, and a cap
 * decided on one clock must count what another admitted.
 */
export function usageInWindow(
  requests: readonly InFlightRequest[],
  now: string,
  windowSecondsValue: number,
): CascadeUsage {
  const windowStart = addSeconds(now, -windowSecondsValue);
  const counted = requests.filter((r) => r.settledAt === null || !atOrAfter(windowStart, r.requestedAt));
  const byAsset = new Map<string, Dec>();
  for (const request of counted) addNotional(byAsset, request.notionalByAsset);
  return { total: sum(byAsset.values()), byAsset };
}

/** Candidates in priority order: lowest margin ratio, then larger notional, then account id. */
export function byPriority(candidates: readonly LiquidationCandidate[]): LiquidationCandidate[] {
  return [...candidates].sort(
    (a, b) =>
      a.marginRatio.comparedTo(b.marginRatio) ||
      notionalOf(b).comparedTo(notionalOf(a)) ||
      (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0),
  );
}

/** Decides which candidates' requests go now and which wait (see the header for the rule). */
export function admit(
  candidates: readonly LiquidationCandidate[],
  policy: CascadePolicy | undefined,
  inFlight: CascadeUsage,
  pausedAssets: ReadonlySet<string>,
): Admission {
  assert(candidates.length <= MAX_CANDIDATES, `at most ${MAX_CANDIDATES} candidates per decision`);
  assert(new Set(candidates.map((c) => c.accountId)).size === candidates.length, "one candidate per account");
  const caps = capsOf(policy);
  const used = new Map<string, Dec>([[TOTAL_CAP, inFlight.total], ...inFlight.byAsset]);
  const reserved = new Set<string>();
  const admitted: Array<{ accountId: string; priority: number }> = [];
  const waiting: Waiting[] = [];
  byPriority(candidates).forEach((candidate, index) => {
    const priority = index + 1;
    const paused = [...candidate.notionalByAsset.keys()].filter((asset) => pausedAssets.has(asset)).sort();
    if (paused.length > 0) {
      waiting.push({
        accountId: candidate.accountId,
        reason: "PAUSED",
        caps: paused,
        behindOn: [],
        priority,
      });
      return;
    }
    const needs = needsOf(candidate, caps);
    const exceeds = needs
      .filter(([cap, need]) => need.greaterThan(caps.get(cap) ?? need))
      .map(([cap]) => cap);
    if (exceeds.length > 0) {
      waiting.push({
        accountId: candidate.accountId,
        reason: "EXCEEDS_CAP",
        caps: exceeds,
        behindOn: [],
        priority,
      });
      return;
    }
    const short = needs
      .filter(([cap, need]) => (used.get(cap) ?? ZERO).plus(need).greaterThan(caps.get(cap) ?? ZERO))
      .map(([cap]) => cap);
    const behindOn = needs.map(([cap]) => cap).filter((cap) => reserved.has(cap));
    if (short.length === 0 && behindOn.length === 0) {
      for (const [cap, need] of needs) used.set(cap, (used.get(cap) ?? ZERO).plus(need));
      admitted.push({ accountId: candidate.accountId, priority });
      return;
    }
    for (const cap of short) reserved.add(cap);
    const reason = short.length > 0 ? "CAP_FULL" : "BEHIND_HIGHER_PRIORITY";
    waiting.push({ accountId: candidate.accountId, reason, caps: short, behindOn, priority });
  });
  const admittedIds = new Set(admitted.map((a) => a.accountId));
  const byAsset = new Map(inFlight.byAsset);
  let total = inFlight.total;
  for (const candidate of candidates) {
    if (!admittedIds.has(candidate.accountId)) continue;
    addNotional(byAsset, candidate.notionalByAsset);
    total = total.plus(notionalOf(candidate));
  }
  const usageAfter = { total, byAsset };
  for (const [cap, limit] of caps) {
    const after = cap === TOTAL_CAP ? usageAfter.total : (byAsset.get(cap) ?? ZERO);
    const before = cap === TOTAL_CAP ? inFlight.total : (inFlight.byAsset.get(cap) ?? ZERO);
    assert(after.lessThanOrEqualTo(limit) || after.equals(before), `the ${cap} cap is never exceeded`);
  }
  return { admitted, waiting, usageAfter };
}

/** The caps of a policy section, by key (TOTAL or an asset). Empty when the section is omitted. */
export function capsOf(policy: CascadePolicy | undefined): ReadonlyMap<string, Dec> {
  const caps = new Map<string, Dec>();
  if (!policy) return caps;
  if (policy.totalNotionalCap !== undefined) caps.set(TOTAL_CAP, dec(policy.totalNotionalCap));
  for (const [asset, cap] of Object.entries(policy.assetNotionalCaps)) caps.set(asset, dec(cap));
  return caps;
}

/** The caps a candidate touches, with what it needs on each: its capped assets' notional, and its total. */
function needsOf(candidate: LiquidationCandidate, caps: ReadonlyMap<string, Dec>): Array<[string, Dec]> {
  const needs: Array<[string, Dec]> = [];
  for (const [asset, notional] of candidate.notionalByAsset) {
    assert(!notional.isNegative(), `${candidate.accountId}'s ${asset} notional is not negative`);
    if (caps.has(asset) && notional.greaterThan(ZERO)) needs.push([asset, notional]);
  }
  if (caps.has(TOTAL_CAP)) needs.push([TOTAL_CAP, notionalOf(candidate)]);
  return needs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function notionalOf(candidate: LiquidationCandidate): Dec {
  return sum(candidate.notionalByAsset.values());
}

function addNotional(into: Map<string, Dec>, notionalByAsset: ReadonlyMap<string, Dec>): void {
  for (const [asset, notional] of notionalByAsset) into.set(asset, (into.get(asset) ?? ZERO).plus(notional));
}

// ── The circuit breaker ────────────────────────────────────────────────────────────────────────────────

export interface PriceSample {
  /** ISO-8601 UTC. */
  readonly at: string;
  readonly price: Dec;
}

export interface BreakerState {
  readonly asset: string;
  readonly status: "ACTIVE" | "PAUSED";
  /** When the current pause began; null while ACTIVE. */
  readonly pausedAt: string | null;
  /** While PAUSED: the first evaluation that found the move within the limit since the last trip; else null. */
  readonly calmSince: string | null;
}

export interface WindowMove {
  readonly high: Dec;
  readonly low: Dec;
  /** (high − low) / high, rounded up to 6 places (display; the trip compares products). */
  readonly move: Dec;
  readonly beyondLimit: boolean;
  readonly samples: number;
}

export type BreakerDecision =
  | {
      readonly kind: "PAUSE";
      readonly asset: string;
      readonly at: string;
      readonly move: WindowMove;
      readonly maxMove: Dec;
      readonly windowSeconds: number;
    }
  | {
      readonly kind: "RESUME";
      readonly asset: string;
      readonly at: string;
      readonly pausedAt: string;
      readonly calmSince: string;
      readonly move: WindowMove | null;
      readonly coolDownSeconds: number;
    };

export function breakerActive(asset: string): BreakerState {
  return { asset, status: "ACTIVE", pausedAt: null, calmSince: null };
}

/** The move of the marks sampled in [now − window, now]; null with no sample there. */
export function windowMove(
  samples: readonly PriceSample[],
  now: string,
  windowSecondsValue: number,
  maxMove: Dec,
): WindowMove | null {
  assert(samples.length <= MAX_SAMPLES, `at most ${MAX_SAMPLES} samples per evaluation`);
  const start = addSeconds(now, -windowSecondsValue);
  const prices = samples.filter((s) => atOrAfter(s.at, start) && atOrAfter(now, s.at)).map((s) => s.price);
  if (prices.length === 0) return null;
  assert(
    prices.every((p) => p.greaterThan(ZERO)),
    "every sampled price is above 0",
  );
  const high = prices.reduce((a, b) => (b.greaterThan(a) ? b : a));
  const low = prices.reduce((a, b) => (b.lessThan(a) ? b : a));
  return {
    high,
    low,
    move: quantize(high.minus(low).dividedBy(high), 6, Rounding.UP),
    beyondLimit: low.lessThan(high.times(ONE.minus(maxMove))),
    samples: prices.length,
  };
}

/**
 * One evaluation of an asset's breaker at `now`: trips (PAUSE) on a move beyond the limit, releases (RESUME)
 * after the cool-down. A sample-less window counts as calm. Returns the next state and at most one decision.
 */
export function evaluateBreaker(
  state: BreakerState,
  samples: readonly PriceSample[],
  now: string,
  policy: CircuitBreakerPolicy,
): {
  readonly state: BreakerState;
  readonly decision: BreakerDecision | null;
  readonly move: WindowMove | null;
} {
  const maxMove = dec(policy.maxMove);
  const move = windowMove(samples, now, policy.windowSeconds, maxMove);
  const beyond = move?.beyondLimit ?? false;
  if (state.status === "ACTIVE") {
    if (!beyond || !move) return { state, decision: null, move };
    const decision = {
      kind: "PAUSE",
      asset: state.asset,
      at: now,
      move,
      maxMove,
      windowSeconds: policy.windowSeconds,
    } as const;
    return { state: { ...state, status: "PAUSED", pausedAt: now, calmSince: null }, decision, move };
  }
  assert(state.pausedAt !== null, `a paused ${state.asset} breaker knows when it paused`);
  if (beyond) return { state: { ...state, calmSince: null }, decision: null, move };
  const calmSince = state.calmSince ?? now;
  if (!atOrAfter(now, addSeconds(calmSince, policy.coolDownSeconds))) {
    return { state: { ...state, calmSince }, decision: null, move };
  }
  const decision = {
    kind: "RESUME",
    asset: state.asset,
    at: now,
    pausedAt: state.pausedAt,
    calmSince,
    move,
    coolDownSeconds: policy.coolDownSeconds,
  } as const;
  return { state: breakerActive(state.asset), decision, move };
}

/** The assets whose new liquidation requests are paused. */
export function pausedAssets(states: Iterable<BreakerState>): ReadonlySet<string> {
  const paused = new Set<string>();
  for (const state of states) if (state.status === "PAUSED") paused.add(state.asset);
  return paused;
}
