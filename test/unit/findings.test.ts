/**
 * The demo's findings on small hand-made records: exact counts, latencies and invariant checks from the
 * effects each step recorded on its first audit entry, the outbox and the events, never from audit prose.
 * The demo run itself (test/integration/demo.test.ts) only shows the checks hold on one long run; these
 * show each check counts what it says, including the records that fooled the old prose-matching check.
 */
import { describe, expect, it } from "vitest";
import {
  callBeforeEveryLiquidation,
  callToNoticeMs,
  exhaustedLiquidations,
  findingsOf,
  haltedLiquidations,
  haltWindows,
  latencyStats,
  lossTaken,
  percentile,
  type RecordedRow,
  statusCounts,
  tickToCallMs,
  timelineOf,
} from "../../functions/local/demo/findings.ts";
import { fundProgressText, groupThousands, lossWaterfallOf } from "../../functions/local/demo/waterfall.ts";

const seqOf = (version: number, index: number) =>
  `v${String(version).padStart(12, "0")}#${String(index).padStart(3, "0")}`;

/**
 * The audit entries of one engine step: the first carries the step's non-AUDIT effects as JSON, and every
 * entry the price status the step saw, as the engine records them.
 */
function step(
  accountId: string,
  version: number,
  priceStatus: string,
  effects: Record<string, unknown>[],
  entries: Array<Record<string, unknown>> = [{}],
): RecordedRow[] {
  return entries.map((entry, index) => ({
    accountId,
    seq: seqOf(version, index),
    version,
    from: "CALLED",
    to: "CALLED",
    reason: "",
    at: "2026-03-02T14:00:00.000Z",
    figures: { priceStatus, policy: "crypto-demo@1" },
    ...(index === 0 ? { effects: JSON.stringify(effects) } : {}),
    ...entry,
  }));
}

const callNotice = (accountId: string, call: number) => ({
  kind: "NOTIFY",
  notice: "CALL",
  notificationId: `${accountId}:v${call}:0:call`,
  accountId,
  callId: `${accountId}:call:${call}`,
});

const liquidation = (accountId: string, call: number, attempt: number, reason = "DEADLINE") => ({
  kind: "REQUEST_LIQUIDATION",
  requestId: `${accountId}:call:${call}:liquidation:${attempt}`,
  accountId,
  callId: `${accountId}:call:${call}`,
  callNotificationId: `${accountId}:v${call}:0:call`,
  attempt,
  reason,
});

describe("haltedLiquidations", () => {
  it("counts the REQUEST_LIQUIDATION effects of steps whose prices were not OK, first requests and retries", () => {
    const audit = [
      ...step("ACC-1", 2, "OK", [liquidation("ACC-1", 1, 1)]),
      ...step("ACC-2", 4, "STALE", [liquidation("ACC-2", 1, 2, "RETRY")]),
      ...step("ACC-3", 3, "DIVERGENT", [
        { kind: "NOTIFY", notice: "LIQUIDATION_NOTICE" },
        liquidation("ACC-3", 1, 1),
        liquidation("ACC-3", 1, 2, "RETRY"),
      ]),
    ];
    expect(haltedLiquidations(audit)).toBe(3);
  });

  it("does not count an exhausted liquidation flagged during a halt, whose reason says 'attempt'", () => {
    const exhausted = step(
      "ACC-ETH-HALT",
      7,
      "STALE",
      [],
      [
        {
          from: "LIQUIDATING",
          to: "LIQUIDATING",
          reason: "liquidation exhausted: no fill after attempt 3 of 3; an operator must act",
          alarm: "LIQUIDATION_EXHAUSTED",
        },
      ],
    );
    // A later entry of a halted step says "attempt" too, and carries no effects.
    const retried = step(
      "ACC-9",
      5,
      "STALE",
      [],
      [{}, { from: "LIQUIDATING", to: "LIQUIDATING", reason: "no final fill after 120 s: attempt 2" }],
    );
    expect(haltedLiquidations([...exhausted, ...retried])).toBe(0);
    expect(
      haltedLiquidations([...exhausted, ...step("ACC-4", 2, "STALE", [liquidation("ACC-4", 1, 1)])]),
    ).toBe(1);
  });

  it("counts nothing in entries without recorded effects, whatever their prose", () => {
    const prose = step("ACC-1", 2, "STALE", [], [{}, { reason: "call not met by the deadline: attempt 1" }]);
    expect(haltedLiquidations(prose.slice(1))).toBe(0);
    expect(haltedLiquidations([])).toBe(0);
  });
});

describe("exhaustedLiquidations", () => {
  it("counts the audit entries raising the LIQUIDATION_EXHAUSTED alarm, not the ones whose text says so", () => {
    const audit = [
      ...step("ACC-1", 6, "OK", [], [{ alarm: "LIQUIDATION_EXHAUSTED", reason: "no fill" }]),
      ...step("ACC-2", 6, "STALE", [], [{ alarm: "LIQUIDATION_EXHAUSTED", reason: "liquidation exhausted" }]),
      ...step("ACC-3", 6, "OK", [], [{ reason: "liquidation exhausted: no fill after attempt 3 of 3" }]),
      ...step("ACC-4", 6, "OK", [], [{ alarm: "LONG_HALT", reason: "liquidation exhausted" }]),
    ];
    expect(exhaustedLiquidations(audit)).toBe(2);
  });
});

describe("callBeforeEveryLiquidation", () => {
  it("holds when each request's call notice was recorded in an earlier step or earlier in the same step", () => {
    const audit = [
      // Recorded out of order: the check orders each account's steps by seq.
      ...step("ACC-1", 5, "OK", [liquidation("ACC-1", 1, 1)]),
      ...step("ACC-1", 2, "OK", [callNotice("ACC-1", 1)]),
      ...step("ACC-2", 3, "OK", [callNotice("ACC-2", 1), liquidation("ACC-2", 1, 1, "HARD_FLOOR")]),
      ...step("ACC-3", 2, "OK", [callNotice("ACC-3", 1)]),
    ];
    expect(callBeforeEveryLiquidation(audit)).toBe(true);
    expect(callBeforeEveryLiquidation([])).toBe(true);
  });

  it("fails a request with no call notice recorded, even if the audit says CALLED", () => {
    const audit = [
      ...step("ACC-1", 2, "OK", [], [{ from: "HEALTHY", to: "CALLED", reason: "margin call issued" }]),
      ...step("ACC-1", 3, "OK", [liquidation("ACC-1", 1, 1)]),
    ];
    expect(callBeforeEveryLiquidation(audit)).toBe(false);
  });

  it("fails a request whose call notice comes later, in the same step or a later one", () => {
    const sameStep = step("ACC-1", 3, "OK", [liquidation("ACC-1", 1, 1), callNotice("ACC-1", 1)]);
    const laterStep = [
      ...step("ACC-2", 4, "OK", [callNotice("ACC-2", 1)]),
      ...step("ACC-2", 3, "OK", [liquidation("ACC-2", 1, 1)]),
    ];
    expect(callBeforeEveryLiquidation(sameStep)).toBe(false);
    expect(callBeforeEveryLiquidation(laterStep)).toBe(false);
  });

  it("fails a request whose notice was of another call, or of another account", () => {
    const otherCall = [
      ...step("ACC-1", 2, "OK", [callNotice("ACC-1", 1)]),
      ...step("ACC-1", 6, "OK", [liquidation("ACC-1", 2, 1)]),
    ];
    const wrongCallId = [
      ...step("ACC-1", 2, "OK", [{ ...callNotice("ACC-1", 1), callId: "ACC-1:call:9" }]),
      ...step("ACC-1", 3, "OK", [liquidation("ACC-1", 1, 1)]),
    ];
    const otherAccount = [
      ...step("ACC-2", 2, "OK", [callNotice("ACC-1", 1)]),
      ...step("ACC-1", 3, "OK", [liquidation("ACC-1", 1, 1)]),
    ];
    const notACall = step("ACC-1", 3, "OK", [
      { ...callNotice("ACC-1", 1), notice: "WARNING" },
      liquidation("ACC-1", 1, 1),
    ]);
    expect(callBeforeEveryLiquidation(otherCall)).toBe(false);
    expect(callBeforeEveryLiquidation(wrongCallId)).toBe(false);
    expect(callBeforeEveryLiquidation(otherAccount)).toBe(false);
    expect(callBeforeEveryLiquidation(notACall)).toBe(false);
  });
});

describe("latencies", () => {
  it("takes the nearest-rank percentile, 0 of nothing", () => {
    expect(percentile([], 50)).toBe(0);
    expect(percentile([40, 10, 30, 20], 50)).toBe(20);
    expect(percentile([40, 10, 30, 20], 99)).toBe(40);
    expect(latencyStats([5])).toEqual({ p50: 5, p99: 5, n: 1 });
  });

  it("measures tick → call from the tick's asOf to the CALLED entry, in real ms", () => {
    const tickAsOf = new Map([
      ["tick:SOL:index:kraken:7", "2026-03-02T14:00:00.000Z"],
      ["tick:ETH:index:kraken:8", "2026-03-02T14:00:30.000Z"],
    ]);
    const audit = [
      ...step(
        "ACC-1",
        1,
        "OK",
        [],
        [
          {
            from: "WARNING",
            to: "CALLED",
            eventId: "tick:SOL:index:kraken:7",
            at: "2026-03-02T14:00:15.000Z",
          },
        ],
      ),
      ...step(
        "ACC-2",
        1,
        "OK",
        [],
        [
          {
            from: "WARNING",
            to: "CALLED",
            eventId: "tick:ETH:index:kraken:8",
            at: "2026-03-02T14:01:00.000Z",
          },
        ],
      ),
      // Not from a tick, from a tick the demo did not publish, or not a call: not measured.
      ...step("ACC-3", 1, "OK", [], [{ to: "CALLED", eventId: "sweep:1", at: "2026-03-02T14:01:00.000Z" }]),
      ...step("ACC-4", 1, "OK", [], [{ to: "CALLED", eventId: "tick:BTC:index:kraken:99" }]),
      ...step("ACC-5", 1, "OK", [], [{ to: "WARNING", eventId: "tick:SOL:index:kraken:7" }]),
    ];
    expect(tickToCallMs(audit, tickAsOf, 30)).toEqual([500, 1000]);
  });

  it("measures call → notice from the outbox record to its delivery, for delivered CALL notices only", () => {
    const notify = (notice: string, sentAt?: string) => ({
      kind: "NOTIFY",
      createdAt: "2026-03-02T14:00:00.000Z",
      payload: JSON.stringify({ kind: "NOTIFY", notice }),
      ...(sentAt ? { sentAt } : {}),
    });
    const outbox = [
      notify("CALL", "2026-03-02T14:00:09.000Z"),
      notify("CALL"),
      notify("CALL_INCREASED", "2026-03-02T14:00:01.000Z"),
      { kind: "REQUEST_LIQUIDATION", createdAt: "2026-03-02T14:00:00.000Z", payload: "{}", sentAt: "x" },
    ];
    expect(callToNoticeMs(outbox, 3)).toEqual([3000]);
  });
});

describe("counts", () => {
  it("sums the RECORD_LOSS amounts in the outbox to 2 places, half to even", () => {
    const outbox = [
      { kind: "RECORD_LOSS", payload: JSON.stringify({ amount: "1234.505" }) },
      { kind: "RECORD_LOSS", payload: JSON.stringify({ amount: "0.10" }) },
      { kind: "NOTIFY", payload: JSON.stringify({ amount: "99" }) },
    ];
    expect(lossTaken(outbox)).toBe("1234.60");
    expect(lossTaken([])).toBe("0.00");
  });

  it("counts accounts by status, every account without a call state HEALTHY", () => {
    const calls = [{ status: "CALLED" }, { status: "CALLED" }, { status: "HEALTHY" }, { status: "BAD_DEBT" }];
    expect(statusCounts(calls, 10, ["HEALTHY", "WARNING", "CALLED", "BAD_DEBT"])).toEqual({
      HEALTHY: 7,
      WARNING: 0,
      CALLED: 2,
      BAD_DEBT: 1,
    });
    expect(statusCounts(calls, 4)).toEqual({ CALLED: 2, HEALTHY: 1, BAD_DEBT: 1 });
  });

  it("gathers every finding of a run record", () => {
    const findings = findingsOf({
      audit: [
        ...step("ACC-1", 2, "OK", [callNotice("ACC-1", 1)], [{ from: "WARNING", to: "CALLED" }]),
        ...step("ACC-1", 3, "STALE", [liquidation("ACC-1", 1, 1)], [{ from: "CALLED", to: "LIQUIDATING" }]),
      ],
      outbox: [{ kind: "RECORD_LOSS", payload: JSON.stringify({ amount: "5" }) }],
      events: [
        { detailType: "LiquidationRequested", detail: {} },
        { detailType: "MarginCallIssued", detail: {} },
        { detailType: "LiquidationRequested", detail: {} },
      ],
      tickAsOf: new Map(),
      speed: 1,
    });
    expect(findings).toMatchObject({
      liquidationRequests: 2,
      loss: "5.00",
      tickToCallMs: { p50: 0, p99: 0, n: 0 },
      callToNoticeMs: { n: 0 },
      haltedLiquidations: 1,
      callBeforeEveryLiquidation: true,
      exhaustedLiquidations: 0,
    });
    expect(findings.timeline.map((event) => event.kind)).toEqual(["CALL", "LIQUIDATION"]);
  });
});

describe("timelineOf and haltWindows", () => {
  it("lists changes of status and the halts and resumptions of escalation, by time", () => {
    const at = (minute: number) => `2026-03-02T14:${String(minute).padStart(2, "0")}:00.000Z`;
    const audit = [
      ...step("ACC-1", 3, "OK", [], [{ from: "CALLED", to: "LIQUIDATING", at: at(9), reason: "deadline" }]),
      ...step("ACC-1", 2, "OK", [], [{ from: "WARNING", to: "CALLED", at: at(5), reason: "called" }]),
      ...step(
        "ACC-2",
        1,
        "STALE",
        [],
        [{ from: "CALLED", to: "CALLED", at: at(6), reason: "escalation halted: stale" }],
      ),
      ...step(
        "ACC-2",
        2,
        "OK",
        [],
        [{ from: "CALLED", to: "CALLED", at: at(7), reason: "prices recovered" }],
      ),
      ...step("ACC-3", 1, "OK", [], [{ from: "HEALTHY", to: "WARNING", at: at(1), reason: "warned" }]),
      ...step("ACC-3", 2, "OK", [], [{ from: "CALLED", to: "CALLED", at: at(2), reason: "reminder sent" }]),
    ];
    expect(timelineOf(audit)).toEqual([
      { t: at(5), accountId: "ACC-1", kind: "CALL", detail: "called" },
      { t: at(6), accountId: "ACC-2", kind: "HALT", detail: "escalation halted: stale" },
      { t: at(7), accountId: "ACC-2", kind: "RESUME", detail: "prices recovered" },
      { t: at(9), accountId: "ACC-1", kind: "LIQUIDATION", detail: "deadline" },
    ]);
  });

  it("shades each stale episode from its first minute to the end of its last", () => {
    const startMs = Date.parse("2026-03-02T14:00:00.000Z");
    const episodes = [{ asset: "ETH", fromMinute: 14, toMinute: 19, live: ["index:coinbase"] }];
    expect(haltWindows(episodes, startMs)).toEqual([
      {
        asset: "ETH",
        from: "2026-03-02T14:14:00.000Z",
        to: "2026-03-02T14:20:00.000Z",
        reason: "ETH feeds stale: only index:coinbase publishing",
      },
    ]);
  });
});

describe("the fund on the progress line", () => {
  const flow = (
    seq: number,
    cause: string,
    amount: string,
    balanceAfter: string,
    accountId: string | null,
  ) => ({
    detailType: "InsuranceFundFlow",
    detail: {
      reference: `flow-${seq}`,
      currency: "USD",
      seq,
      cause,
      amount,
      requested: amount.replace("-", ""),
      balanceAfter,
      accountId,
      sourceReference: cause === "BANKRUPTCY_COVER" ? `${accountId}:v5:loss` : `source-${seq}`,
      recordedAt: "2026-03-02T14:00:00.000Z",
    },
  });
  const loss = (accountId: string, amount: string) => ({
    detailType: "LossRecorded",
    detail: { reference: `${accountId}:v5:loss`, accountId, amount, recordedAt: "2026-03-02T14:10:00.000Z" },
  });

  it("says the balance the fund's head holds, and how the losses so far were met", () => {
    const events = [
      flow(1, "MANUAL_TOPUP", "10000.00", "10000.00", null),
      flow(2, "LIQUIDATION_FEE", "2345.67", "12345.67", "ACC-1"),
      loss("ACC-2", "1000.00"),
      flow(3, "BANKRUPTCY_COVER", "-1000.00", "11345.67", "ACC-2"),
      loss("ACC-3", "20.00"),
    ];
    const waterfall = lossWaterfallOf(events, "USD", 2);
    expect(waterfall.losses.map((row) => [row.accountId, row.settled, row.fundCover])).toEqual([
      ["ACC-2", true, "1000.00"],
      ["ACC-3", false, "0.00"],
    ]);
    expect(fundProgressText({ currency: "USD", balance: "11345.67", waterfall }, 2)).toBe(
      "fund 11,345.67 USD · losses 2 (fund 1,000.00, bad debt 0.00)",
    );
  });

  it("groups thousands in the integer part only", () => {
    expect(groupThousands("-1234567.891")).toBe("-1,234,567.891");
    expect(groupThousands("999.00")).toBe("999.00");
    expect(groupThousands("1000")).toBe("1,000");
  });
});
