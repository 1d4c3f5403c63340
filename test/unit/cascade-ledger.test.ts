/**
 * The cascade caps one account at a time (cascade-ledger.ts): whatever the order in which accounts ask, and
 * whatever settles in between, the notional in flight never exceeds a cap; an account waiting on a cap is
 * never passed on it by one of lower priority; and the ledger's encoding round-trips exactly.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeLedger, encodeLedger } from "../../functions/adapters/cascade-ledger-store.ts";
import { admit, byPriority, cascadeSchema, usageInWindow } from "../../functions/domain/cascade.ts";
import {
  admitOne,
  type CascadeLedger,
  EMPTY_LEDGER,
  live,
  refreshNeeded,
  settleRequest,
} from "../../functions/domain/cascade-ledger.ts";
import { dec, sum } from "../../functions/domain/money.ts";
import { addSeconds } from "../../functions/domain/time.ts";

const T0 = "2026-11-25T12:00:00.000Z";
const cascade = cascadeSchema.parse({
  windowSeconds: 600,
  totalNotionalCap: "100",
  assetNotionalCaps: { BTC: "60" },
});

const ask = fc.record({
  account: fc.integer({ min: 1, max: 8 }),
  ratio: fc.integer({ min: -50, max: 99 }),
  btc: fc.integer({ min: 0, max: 70 }),
  eth: fc.integer({ min: 0, max: 70 }),
  settle: fc.boolean(),
  later: fc.integer({ min: 0, max: 400 }),
});

describe("the cascade ledger", () => {
  it("never lets the notional in flight exceed a cap, nor a lower priority pass a waiting account on its cap", () => {
    const outcomes = { admitted: 0, waited: 0 };
    fc.assert(
      fc.property(fc.array(ask, { minLength: 1, maxLength: 60 }), (asks) => {
        let ledger: CascadeLedger = EMPTY_LEDGER;
        let clock = 0;
        const calls = new Map<string, number>();
        let admitted = 0;
        let waited = 0;
        for (const next of asks) {
          clock += next.later;
          const now = addSeconds(T0, clock);
          const accountId = `A${next.account}`;
          const open = ledger.inFlight.find((r) => r.accountId === accountId && r.settledAt === null);
          if (open && next.settle) {
            ledger = { ...(settleRequest(ledger, open.callId, now) ?? ledger), version: ledger.version + 1 };
            continue;
          }
          if (open) continue; // its call is in flight: it asks nothing
          const callNumber = (calls.get(accountId) ?? 0) + 1;
          const notionalByAsset = new Map(
            [
              ["BTC", dec(String(next.btc))],
              ["ETH", dec(String(next.eth))],
            ].filter(([, value]) => !dec(String(value)).isZero()) as Array<[string, ReturnType<typeof dec>]>,
          );
          if (notionalByAsset.size === 0) continue;
          const candidate = {
            accountId,
            marginRatio: dec(String(next.ratio)).dividedBy(100),
            notionalByAsset,
          };
          const verdict = admitOne(ledger, candidate, `${accountId}:call:${callNumber}`, cascade, now);
          const usage = usageInWindow(
            live(verdict.ledger, cascade, now).inFlight,
            now,
            cascade.windowSeconds,
          );
          expect(usage.total.lessThanOrEqualTo(dec("100"))).toBe(true);
          expect((usage.byAsset.get("BTC") ?? dec("0")).lessThanOrEqualTo(dec("60"))).toBe(true);
          if (verdict.admitted) {
            admitted += 1;
            calls.set(accountId, callNumber);
            // The waiting accounts of higher priority keep their room: those of them that fit the room before
            // (taken in priority order) still fit with the asker's request counted.
            const higher = byPriority([
              ...live(ledger, cascade, now).waiting.filter((w) => w.accountId !== accountId),
              candidate,
            ]);
            const above = higher.slice(
              0,
              higher.findIndex((c) => c.accountId === accountId),
            );
            const before = usageInWindow(live(ledger, cascade, now).inFlight, now, cascade.windowSeconds);
            const kept = admit(above, cascade, before, new Set()).admitted.map((a) => a.accountId);
            const keptNotional = above.filter((c) => kept.includes(c.accountId));
            const total = usage.total.plus(sum(keptNotional.flatMap((c) => [...c.notionalByAsset.values()])));
            const btc = (usage.byAsset.get("BTC") ?? dec("0")).plus(
              sum(keptNotional.map((c) => c.notionalByAsset.get("BTC") ?? dec("0"))),
            );
            expect(total.lessThanOrEqualTo(dec("100")) && btc.lessThanOrEqualTo(dec("60"))).toBe(true);
          } else {
            waited += 1;
            expect(verdict.ledger.waiting.some((w) => w.accountId === accountId)).toBe(true);
          }
          ledger = { ...verdict.ledger, version: ledger.version + 1 };
        }
        outcomes.admitted += admitted;
        outcomes.waited += waited;
      }),
      { numRuns: 300 },
    );
    // Not vacuous: the runs both admitted and held requests back.
    expect(outcomes.admitted).toBeGreaterThan(100);
    expect(outcomes.waited).toBeGreaterThan(100);
  });

  it("admits when there is room, and makes the next wait when there is not", () => {
    const btc = (value: string) => new Map([["BTC", dec(value)]]);
    const first = admitOne(
      EMPTY_LEDGER,
      { accountId: "A", marginRatio: dec("0.4"), notionalByAsset: btc("50") },
      "A:call:1",
      cascade,
      T0,
    );
    expect(first.admitted).toBe(true);
    const second = admitOne(
      first.ledger,
      { accountId: "B", marginRatio: dec("0.1"), notionalByAsset: btc("20") },
      "B:call:1",
      cascade,
      T0,
    );
    expect(second).toMatchObject({
      admitted: false,
      wait: { reason: "CAP_FULL", caps: ["BTC"], priority: 1, of: 1 },
    });
    // C is smaller and would fit BTC's 10 left, but B waits on BTC with a higher priority: C waits behind it.
    const third = admitOne(
      second.ledger,
      { accountId: "C", marginRatio: dec("0.3"), notionalByAsset: btc("10") },
      "C:call:1",
      cascade,
      T0,
    );
    expect(third).toMatchObject({
      admitted: false,
      wait: { reason: "BEHIND_HIGHER_PRIORITY", behindOn: ["BTC"], priority: 2, of: 2 },
    });
    // Larger than the BTC cap itself: it can never go whole.
    const huge = admitOne(
      EMPTY_LEDGER,
      { accountId: "D", marginRatio: dec("0"), notionalByAsset: btc("61") },
      "D:call:1",
      cascade,
      T0,
    );
    expect(huge).toMatchObject({ admitted: false, wait: { reason: "EXCEEDS_CAP", caps: ["BTC"] } });
    // A settles; 600 s after it was sent it no longer counts, and B goes.
    const settled = settleRequest(third.ledger, "A:call:1", addSeconds(T0, 10));
    expect(settled).not.toBeNull();
    const later = admitOne(
      settled ?? EMPTY_LEDGER,
      { accountId: "B", marginRatio: dec("0.1"), notionalByAsset: btc("20") },
      "B:call:1",
      cascade,
      addSeconds(T0, 601),
    );
    expect(later.admitted).toBe(true);
    expect(later.ledger.waiting.map((w) => w.accountId)).toEqual(["C"]);
  });

  it("counts a request admitted on a clock ahead of this one (two writers' clocks differ)", () => {
    const btc = (value: string) => new Map([["BTC", dec(value)]]);
    const total = cascadeSchema.parse({ windowSeconds: 600, totalNotionalCap: "100" });
    const ahead = admitOne(
      EMPTY_LEDGER,
      { accountId: "A", marginRatio: dec("0.4"), notionalByAsset: btc("80") },
      "A:call:1",
      total,
      "2026-11-25T12:00:00.050Z",
    );
    expect(ahead.admitted).toBe(true);
    const behind = admitOne(
      ahead.ledger,
      { accountId: "B", marginRatio: dec("0.4"), notionalByAsset: btc("80") },
      "B:call:1",
      total,
      T0,
    );
    expect(behind).toMatchObject({ admitted: false, wait: { reason: "CAP_FULL", caps: ["TOTAL"] } });
  });

  it("changes nothing for a call whose first request is in flight already (a step decided on a stale state)", () => {
    const btc = (value: string) => new Map([["BTC", dec(value)]]);
    const sent = admitOne(
      EMPTY_LEDGER,
      { accountId: "X", marginRatio: dec("0.2"), notionalByAsset: btc("50") },
      "X:call:1",
      cascade,
      T0,
    );
    const ledger = { ...sent.ledger, version: 1 };
    const stale = admitOne(
      ledger,
      { accountId: "X", marginRatio: dec("0.3"), notionalByAsset: btc("50") },
      "X:call:1",
      cascade,
      addSeconds(T0, 5),
    );
    expect(stale).toEqual({ admitted: true, ledger });
  });

  it("rewrites a waiting account's place only when it changed or is getting old", () => {
    const btc = (value: string) => new Map([["BTC", dec(value)]]);
    const full = admitOne(
      EMPTY_LEDGER,
      { accountId: "A", marginRatio: dec("0.4"), notionalByAsset: btc("55") },
      "A:call:1",
      cascade,
      T0,
    );
    const first = admitOne(
      full.ledger,
      { accountId: "B", marginRatio: dec("0.1"), notionalByAsset: btc("20") },
      "B:call:1",
      cascade,
      T0,
    );
    const again = (seconds: number, ratio = "0.1") =>
      admitOne(
        first.ledger,
        { accountId: "B", marginRatio: dec(ratio), notionalByAsset: btc("20") },
        "B:call:1",
        cascade,
        addSeconds(T0, seconds),
      );
    expect(refreshNeeded(first.ledger, again(60).ledger, "B", addSeconds(T0, 60))).toBe(false);
    expect(refreshNeeded(first.ledger, again(301).ledger, "B", addSeconds(T0, 301))).toBe(true);
    expect(refreshNeeded(first.ledger, again(60, "0.05").ledger, "B", addSeconds(T0, 60))).toBe(true);
  });

  it("stores the ledger exactly", () => {
    const verdict = admitOne(
      EMPTY_LEDGER,
      {
        accountId: "A",
        marginRatio: dec("-0.123456"),
        notionalByAsset: new Map([["BTC", dec("12.3456789")]]),
      },
      "A:call:1",
      cascade,
      T0,
    );
    const waiting = admitOne(
      verdict.ledger,
      { accountId: "B", marginRatio: dec("0.5"), notionalByAsset: new Map([["BTC", dec("59")]]) },
      "B:call:1",
      cascade,
      T0,
    );
    const round = decodeLedger(3, encodeLedger(waiting.ledger));
    expect(round.version).toBe(3);
    expect(round.inFlight.map((r) => [r.callId, r.notionalByAsset.get("BTC")?.toFixed()])).toEqual([
      ["A:call:1", "12.3456789"],
    ]);
    expect(round.waiting.map((w) => [w.accountId, w.marginRatio.toFixed(), w.since])).toEqual([
      ["B", "0.5", T0],
    ]);
  });
});
