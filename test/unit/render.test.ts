import { describe, expect, expectTypeOf, it } from "vitest";
import type { NoticeKind as EngineNoticeKind } from "../../functions/domain/machine.ts";
import {
  type CureOptionPayload,
  formatDecimal,
  formatInstant,
  formatRatioPercent,
  gsm7Septets,
  isGsm7,
  MORE_OPTIONS_BY_EMAIL,
  type NoticeKind,
  type NoticePayload,
  type Recipient,
  renderNotice,
  SMS_MAX_SEPTETS,
  toGsm7,
} from "../../functions/notify/render.ts";

const ACCOUNT = "ACC-7731-000234";
const KINDS: readonly NoticeKind[] = [
  "WARNING",
  "CALL",
  "CALL_INCREASED",
  "REMINDER",
  "CURED",
  "LIQUIDATION_NOTICE",
  "LIQUIDATION_COMPLETE",
];
const DEADLINE = "2026-11-25T12:00:00.000Z";

const NEW_YORK: Recipient = { borrowerName: "Jane Doe", timeZone: "America/New_York", currency: "USD" };
const TOKYO: Recipient = { timeZone: "Asia/Tokyo", currency: "USD" };

const OPTIONS: CureOptionPayload[] = [
  { kind: "DEPOSIT", amount: "1234567.89", currency: "USD" },
  {
    kind: "REDUCE",
    target: { kind: "HOLDING", asset: "AAPL" },
    side: "SELL",
    quantity: "6330",
    notional: "1234666.5123",
  },
  {
    kind: "REDUCE",
    target: { kind: "HOLDING", asset: "TSLA" },
    side: "BUY",
    quantity: "2500.5",
    notional: "600120",
  },
  {
    kind: "REDUCE",
    target: { kind: "POSITION", instrument: "BTC-PERP" },
    side: "SELL",
    quantity: "12.5",
    notional: "1250000",
  },
];

/** The engine's payload for each kind (see functions/domain/machine.ts notify()). */
function payload(notice: NoticeKind, overrides: Partial<NoticePayload> = {}): NoticePayload {
  const isCall = notice === "CALL" || notice === "REMINDER" || notice === "CALL_INCREASED";
  return {
    notificationId: `${ACCOUNT}:v7:0:${notice.toLowerCase()}`,
    notice,
    accountId: ACCOUNT,
    callId: notice === "WARNING" ? null : `${ACCOUNT}:call:1`,
    amountDue: isCall ? "1234567.89" : null,
    deadlineAt: isCall ? DEADLINE : null,
    marginRatio: notice === "WARNING" ? "1.041234" : "0.964123",
    cureOptions: isCall || notice === "WARNING" ? OPTIONS : [],
    loss: null,
    ...(notice === "CALL_INCREASED" ? { restoreAmount: "2000000.00", previousAmountDue: "1500000.00" } : {}),
    ...overrides,
  };
}

/** An independent, stricter check than isGsm7: the printable characters these notices should ever use. */
const PLAIN_GSM7 = /^[A-Za-z0-9 .,:;!?()'"+\-/%&*=<>@#$_]*$/;

function expectSmsOk(sms: string): void {
  expect(sms).toMatch(PLAIN_GSM7);
  expect(isGsm7(sms)).toBe(true);
  expect(sms.length).toBeLessThanOrEqual(SMS_MAX_SEPTETS);
}

describe("renderNotice", () => {
  it("uses the engine's notice kinds", () => {
    expectTypeOf<NoticeKind>().toEqualTypeOf<EngineNoticeKind>();
  });

  describe.each(KINDS)("%s", (kind) => {
    const rendered = renderNotice(payload(kind), NEW_YORK);

    it("names the masked account and the reference, never the full account id in the SMS", () => {
      const reference = `...0234:v7:0:${kind.toLowerCase()}`;
      expect(rendered.sms).toContain("acct ...0234");
      expect(rendered.sms).toContain(`Ref ${reference}`);
      expect(rendered.sms).not.toContain(ACCOUNT);
      expect(rendered.sms).not.toContain("7731");
      expect(rendered.emailSubject).toContain("account ...0234");
      expect(rendered.emailSubject).not.toContain(ACCOUNT);
      expect(rendered.emailText).toContain(`Reference: ${reference}`);
      expect(rendered.emailText).not.toContain(ACCOUNT);
    });

    it("greets the borrower by name in the email, and no name in the SMS", () => {
      expect(rendered.emailText.startsWith("Dear Jane Doe,\n")).toBe(true);
      expect(rendered.sms).not.toContain("Jane");
      expect(renderNotice(payload(kind), TOKYO).emailText.startsWith("Dear client,\n")).toBe(true);
    });

    it("gives a GSM-7 SMS within 3 segments", () => {
      expectSmsOk(rendered.sms);
    });

    it("is deterministic", () => {
      expect(renderNotice(payload(kind), NEW_YORK)).toEqual(rendered);
    });
  });

  it("CALL: amount with currency, deadline in the borrower's zone and in UTC, every cure option", () => {
    const { sms, emailSubject, emailText } = renderNotice(payload("CALL"), NEW_YORK);
    expect(sms).toMatch(
      /^MARGIN CALL on acct \.\.\.0234: 1,234,567\.89 USD due by Wed 25 Nov 2026, 07:00 EST\./,
    );
    expect(sms).toContain(
      "To cure: deposit 1,234,567.89 USD; or sell 6,330 of AAPL (approx. 1,234,666.51 USD); " +
        "or buy back 2,500.5 of TSLA (approx. 600,120.00 USD); or close 12.5 of BTC-PERP (approx. 1,250,000.00 USD).",
    );
    expect(emailSubject).toBe(
      "Margin call on account ...0234: 1,234,567.89 USD due by Wed 25 Nov 2026, 07:00 EST",
    );
    expect(emailText).toContain("Amount due: 1,234,567.89 USD");
    expect(emailText).toContain("Deadline: Wed 25 Nov 2026, 07:00 EST (America/New_York)");
    expect(emailText).toContain("Wed 25 Nov 2026, 12:00 UTC");
    for (const line of [
      "  - Deposit 1,234,567.89 USD",
      "  - Sell 6,330 of AAPL (approx. 1,234,666.51 USD)",
      "  - Buy back 2,500.5 of TSLA (approx. 600,120.00 USD)",
      "  - Close 12.5 of BTC-PERP (approx. 1,250,000.00 USD)",
    ]) {
      expect(emailText).toContain(line);
    }
    expect(emailText).toContain("Call: ...0234:call:1");
  });

  it("CALL in Asia/Tokyo: the same instant, the next calendar day when it is past midnight there", () => {
    const tokyo = renderNotice(payload("CALL"), TOKYO);
    expect(tokyo.sms).toContain("due by Wed 25 Nov 2026, 21:00 GMT+9.");
    expect(tokyo.emailText).toContain("Deadline: Wed 25 Nov 2026, 21:00 GMT+9 (Asia/Tokyo)");
    expect(tokyo.emailText).toContain("Wed 25 Nov 2026, 12:00 UTC");
    const late = renderNotice(payload("CALL", { deadlineAt: "2026-11-25T20:00:00.000Z" }), TOKYO);
    expect(late.sms).toContain("due by Thu 26 Nov 2026, 05:00 GMT+9.");
  });

  it("REMINDER restates the amount, the deadline and the options", () => {
    const { sms, emailSubject, emailText } = renderNotice(payload("REMINDER"), NEW_YORK);
    expect(sms).toMatch(
      /^Reminder: margin call on acct \.\.\.0234, 1,234,567\.89 USD still due by Wed 25 Nov 2026, 07:00 EST\./,
    );
    expect(sms).toContain("deposit 1,234,567.89 USD");
    expect(emailSubject).toContain("Reminder");
    expect(emailText).toContain("still open");
    expect(emailText).toContain("Amount due: 1,234,567.89 USD");
    expect(emailText).toContain("Deadline: Wed 25 Nov 2026, 07:00 EST (America/New_York)");
  });

  it("WARNING shows the margin ratio as a percentage and the cure options", () => {
    const { sms, emailSubject, emailText } = renderNotice(payload("WARNING"), NEW_YORK);
    expect(sms).toContain("equity is 104.12% of the requirement");
    expect(sms).toContain("To reduce the risk: deposit 1,234,567.89 USD");
    expect(emailSubject).toBe("Margin warning: account ...0234 is near its maintenance requirement");
    expect(emailText).toContain("104.12%");
    expect(emailText).toContain("This is not a margin call");
    expect(emailText).toContain("  - Close 12.5 of BTC-PERP (approx. 1,250,000.00 USD)");
    const bare = renderNotice(payload("WARNING", { marginRatio: null, cureOptions: [] }), NEW_YORK);
    expect(bare.sms).toContain("close to its maintenance margin requirement");
    expect(bare.sms).not.toContain("%.");
    expect(bare.emailText).not.toContain("  - ");
  });

  it("CURED confirms the call is met, with the call reference", () => {
    const { sms, emailSubject, emailText } = renderNotice(payload("CURED"), NEW_YORK);
    expect(sms).toMatch(/^Margin call \.\.\.0234:call:1 on acct \.\.\.0234 is met\./);
    expect(emailSubject).toBe("Margin call met on account ...0234");
    expect(emailText).toContain("Call: ...0234:call:1");
    expect(emailText).toContain("is met");
  });

  it("LIQUIDATION_NOTICE says positions are being liquidated, with the amount that was due when known", () => {
    const known = renderNotice(payload("LIQUIDATION_NOTICE", { amountDue: "1234567.89" }), NEW_YORK);
    expect(known.sms).toContain("margin call ...0234:call:1 (1,234,567.89 USD due) has not been met");
    expect(known.sms).toContain("Positions are being liquidated");
    expect(known.emailSubject).toBe("Positions are being liquidated on account ...0234");
    expect(known.emailText).toContain("The amount due was 1,234,567.89 USD.");
    const unknown = renderNotice(payload("LIQUIDATION_NOTICE"), NEW_YORK);
    expect(unknown.sms).toContain("margin call ...0234:call:1 has not been met");
    expect(unknown.emailText).not.toContain("amount due was");
  });

  it("LIQUIDATION_COMPLETE says the liquidation is done, with the deficit when it ended in bad debt", () => {
    const done = renderNotice(payload("LIQUIDATION_COMPLETE"), NEW_YORK);
    expect(done.sms).toMatch(
      /^Liquidation complete on acct \.\.\.0234: positions were liquidated to meet margin call \.\.\.0234:call:1\. /,
    );
    expect(done.emailSubject).toBe("Liquidation complete on account ...0234");
    expect(done.emailText).toContain("Call: ...0234:call:1");
    expect(done.emailText).not.toContain("deficit");
    const bad = renderNotice(payload("LIQUIDATION_COMPLETE", { loss: "12345.60" }), NEW_YORK);
    expectSmsOk(bad.sms);
    expect(bad.sms).toContain("The account has a deficit of 12,345.60 USD.");
    expect(bad.emailSubject).toBe("Liquidation complete on account ...0234: deficit of 12,345.60 USD");
    expect(bad.emailText).toContain(
      "The proceeds did not cover the account's debt: a deficit of 12,345.60 USD",
    );
    // An outbox record written before `loss` existed has no such field.
    const { loss: _unused, ...older } = payload("LIQUIDATION_COMPLETE");
    expect(renderNotice(older, NEW_YORK)).toEqual(done);
    expect(() => renderNotice(payload("LIQUIDATION_COMPLETE", { loss: "1e3" }), NEW_YORK)).toThrow(
      RangeError,
    );
  });

  it("CALL_INCREASED gives what restores the account now, what it took before, and what still meets the call", () => {
    const rendered = renderNotice(payload("CALL_INCREASED"), NEW_YORK);
    expect(rendered.sms).toContain("MARGIN CALL UPDATE on acct ...0234");
    expect(rendered.sms).toContain("restoring the account now takes 2,000,000.00 USD (was 1,500,000.00 USD)");
    expect(rendered.sms).toContain("1,234,567.89 USD by Wed 25 Nov 2026, 07:00 EST still meets this call");
    expect(rendered.emailText).toContain("Amount due by the deadline: 1,234,567.89 USD");
    expect(rendered.emailText).toContain("your positions will not be liquidated for it");
    expect(() => renderNotice(payload("CALL_INCREASED", { amountDue: null }), NEW_YORK)).toThrow(/amountDue/);
    const { restoreAmount: _, ...withoutRestore } = payload("CALL_INCREASED");
    expect(() => renderNotice(withoutRestore, NEW_YORK)).toThrow(/restoreAmount/);
  });

  it("LIQUIDATION_NOTICE on the hard floor says so, not that the call was not met", () => {
    const rendered = renderNotice(
      payload("LIQUIDATION_NOTICE", { amountDue: "500.00", reason: "HARD_FLOOR" }),
      NEW_YORK,
    );
    expect(rendered.sms).toContain("fell below the hard floor");
    expect(rendered.sms).not.toContain("has not been met");
    expect(rendered.emailSubject).toContain("below the hard floor");
    expect(rendered.emailText).toContain("The amount due was 500.00 USD.");
  });

  it("CURED says how the call was met", () => {
    const by = (met: NonNullable<NoticePayload["met"]>) =>
      renderNotice(payload("CURED", { met }), NEW_YORK).sms;
    expect(by("DEPOSIT")).toContain("is met by your deposit.");
    expect(by("MARKET")).toContain("is met: the account is back above its requirement.");
    expect(by("WAIVED")).toContain("is met: the small remainder is waived.");
  });

  it("LIQUIDATION_COMPLETE lists what was sold, at what average price and fees, in the email", () => {
    const rendered = renderNotice(
      payload("LIQUIDATION_COMPLETE", {
        sold: [
          {
            target: { kind: "HOLDING", asset: "BTC" },
            side: "SELL",
            quantity: "0.4",
            averagePrice: "63880.10",
            fee: "25.55",
          },
          {
            target: { kind: "POSITION", instrument: "BTC-PERP" },
            side: "BUY",
            quantity: "1.5",
            averagePrice: "64000",
            fee: "0",
          },
        ],
      }),
      NEW_YORK,
    );
    expect(rendered.emailText).toContain("Sold 0.4 BTC at 63,880.10 USD on average (fees 25.55 USD).");
    expect(rendered.emailText).toContain("Bought back 1.5 BTC-PERP at 64,000 USD on average (fees 0 USD).");
  });

  it("gives every kind a distinct SMS, subject and email", () => {
    const all = KINDS.map((kind) => renderNotice(payload(kind), NEW_YORK));
    for (const field of ["sms", "emailSubject", "emailText"] as const) {
      expect(new Set(all.map((r) => r[field])).size).toBe(KINDS.length);
    }
  });

  it("formats negative and huge amounts without losing a digit", () => {
    const huge = renderNotice(payload("CALL", { amountDue: "12345678901234567890.12" }), NEW_YORK);
    expect(huge.sms).toContain("12,345,678,901,234,567,890.12 USD due by");
    expect(huge.emailText).toContain("Amount due: 12,345,678,901,234,567,890.12 USD");
    const negative = renderNotice(payload("CALL", { amountDue: "-12345678901234567890.12" }), NEW_YORK);
    expect(negative.sms).toContain("-12,345,678,901,234,567,890.12 USD");
    const notional = renderNotice(
      payload("CALL", {
        cureOptions: [
          {
            kind: "REDUCE",
            target: { kind: "HOLDING", asset: "XYZ" },
            side: "SELL",
            quantity: "98765432109876543210.123456789",
            notional: "12345678901234567890123.456789",
          },
        ],
      }),
      NEW_YORK,
    );
    expect(notional.sms).toContain(
      "sell 98,765,432,109,876,543,210.123456789 of XYZ (approx. 12,345,678,901,234,567,890,123.46 USD)",
    );
  });

  it("keeps the first cure option and points to the email when the options would overflow the SMS", () => {
    const many: CureOptionPayload[] = [
      { kind: "DEPOSIT", amount: "1234567.89", currency: "USD" },
      ...Array.from({ length: 40 }, (_, i) => ({
        kind: "REDUCE" as const,
        target: { kind: "HOLDING" as const, asset: `ASSET${i}` },
        side: "SELL" as const,
        quantity: `${1000 + i}.123456`,
        notional: `${98765432 + i}.987654`,
      })),
    ];
    for (const kind of ["WARNING", "CALL", "REMINDER"] as const) {
      for (const recipient of [NEW_YORK, TOKYO]) {
        const { sms, emailText } = renderNotice(payload(kind, { cureOptions: many }), recipient);
        expectSmsOk(sms);
        expect(sms).toContain(`deposit 1,234,567.89 USD. ${MORE_OPTIONS_BY_EMAIL} Ref ...0234:v7:0:`);
        expect(sms).not.toContain("ASSET0");
        for (let i = 0; i < 40; i++) expect(emailText).toContain(` of ASSET${i} (approx. `);
      }
    }
  });

  it("stays GSM-7 and within 3 segments whatever the data holds", () => {
    const exotic = renderNotice(
      payload("CALL", {
        notificationId: `${ACCOUNT}:v7:0:call`,
        cureOptions: [
          {
            kind: "REDUCE",
            target: { kind: "HOLDING", asset: "Ünïcode—“coin”→ç€😀" },
            side: "SELL",
            quantity: "1",
            notional: "1",
          },
        ],
      }),
      NEW_YORK,
    );
    expect(isGsm7(exotic.sms)).toBe(true);
    expect(exotic.sms).toContain(`sell 1 of Ünicode-"coin"->c€? (approx. 1.00 USD)`);
    const longName = "N".repeat(2000);
    const pathological = renderNotice(
      payload("CALL", {
        cureOptions: [
          {
            kind: "REDUCE",
            target: { kind: "POSITION", instrument: longName },
            side: "BUY",
            quantity: "1",
            notional: "1",
          },
        ],
      }),
      NEW_YORK,
    );
    expect(isGsm7(pathological.sms)).toBe(true);
    expect(gsm7Septets(pathological.sms)).toBeLessThanOrEqual(SMS_MAX_SEPTETS);
    expect(pathological.sms).toContain("Cure options by email.");
    expect(pathological.emailText).toContain(longName);
  });

  it("leaves out a zero deposit, which cures nothing", () => {
    const { sms, emailText } = renderNotice(
      payload("WARNING", { cureOptions: [{ kind: "DEPOSIT", amount: "0.00", currency: "USD" }] }),
      NEW_YORK,
    );
    expect(sms).not.toContain("deposit");
    expect(emailText).not.toContain("Deposit");
  });

  it("refuses a call without an amount or a deadline, malformed figures and unknown kinds", () => {
    expect(() => renderNotice(payload("CALL", { amountDue: null }), NEW_YORK)).toThrow(/amountDue/);
    expect(() => renderNotice(payload("REMINDER", { deadlineAt: null }), NEW_YORK)).toThrow(/deadlineAt/);
    expect(() => renderNotice(payload("CALL", { amountDue: "1e6" }), NEW_YORK)).toThrow(RangeError);
    expect(() => renderNotice(payload("CALL", { deadlineAt: "next Tuesday" }), NEW_YORK)).toThrow(RangeError);
    expect(() => renderNotice(payload("WARNING", { marginRatio: "NaN" }), NEW_YORK)).toThrow(RangeError);
    const bogus = { ...payload("CURED"), notice: "BOGUS" } as unknown as NoticePayload;
    expect(() => renderNotice(bogus, NEW_YORK)).toThrow(/unknown notice kind/);
  });

  it("falls back to UTC for an unknown time zone rather than dropping the notice", () => {
    const { sms, emailText } = renderNotice(payload("CALL"), {
      timeZone: "Mars/Olympus_Mons",
      currency: "USD",
    });
    expect(sms).toContain("due by Wed 25 Nov 2026, 12:00 UTC.");
    expect(emailText).toContain("Deadline: Wed 25 Nov 2026, 12:00 UTC\n");
  });
});

describe("formatInstant", () => {
  it.each([
    // Before and after the end of US daylight saving time (1 Nov 2026, 06:00 UTC); Tokyo has none.
    ["2026-10-28T12:00:00.000Z", "America/New_York", "Wed 28 Oct 2026, 08:00 EDT"],
    ["2026-11-25T12:00:00.000Z", "America/New_York", "Wed 25 Nov 2026, 07:00 EST"],
    ["2026-10-28T12:00:00.000Z", "Asia/Tokyo", "Wed 28 Oct 2026, 21:00 GMT+9"],
    ["2026-11-25T12:00:00.000Z", "Asia/Tokyo", "Wed 25 Nov 2026, 21:00 GMT+9"],
    // The repeated hour: the same wall clock twice, told apart by the zone abbreviation.
    ["2026-11-01T05:30:00.000Z", "America/New_York", "Sun 1 Nov 2026, 01:30 EDT"],
    ["2026-11-01T06:30:00.000Z", "America/New_York", "Sun 1 Nov 2026, 01:30 EST"],
    // The skipped hour at the start of daylight saving time (8 Mar 2026, 07:00 UTC).
    ["2026-03-08T06:59:00.000Z", "America/New_York", "Sun 8 Mar 2026, 01:59 EST"],
    ["2026-03-08T07:00:00.000Z", "America/New_York", "Sun 8 Mar 2026, 03:00 EDT"],
    ["2026-03-08T07:00:00.000Z", "Asia/Tokyo", "Sun 8 Mar 2026, 16:00 GMT+9"],
    ["2026-11-25T00:00:00.000Z", "UTC", "Wed 25 Nov 2026, 00:00 UTC"],
  ])("%s in %s is %s", (iso, zone, expected) => {
    expect(formatInstant(iso, zone)).toBe(expected);
  });

  it("renders the DST change in a CALL SMS", () => {
    const before = renderNotice(payload("CALL", { deadlineAt: "2026-11-01T05:30:00.000Z" }), NEW_YORK);
    const after = renderNotice(payload("CALL", { deadlineAt: "2026-11-01T06:30:00.000Z" }), NEW_YORK);
    expect(before.sms).toContain("due by Sun 1 Nov 2026, 01:30 EDT.");
    expect(after.sms).toContain("due by Sun 1 Nov 2026, 01:30 EST.");
    expect(before.emailText).toContain("Sun 1 Nov 2026, 05:30 UTC");
    expect(after.emailText).toContain("Sun 1 Nov 2026, 06:30 UTC");
  });
});

describe("formatDecimal", () => {
  it.each([
    ["0", "0"],
    ["0.00", "0.00"],
    ["-0.00", "0.00"],
    ["999.99", "999.99"],
    ["1000", "1,000"],
    ["1234567.89", "1,234,567.89"],
    ["-1234.5", "-1,234.5"],
    ["000123456", "123,456"],
    ["12345678901234567890.12", "12,345,678,901,234,567,890.12"],
    ["-12345678901234567890.12", "-12,345,678,901,234,567,890.12"],
    ["0.000000000000000000000001", "0.000000000000000000000001"],
  ])("%s gives %s", (text, expected) => {
    expect(formatDecimal(text)).toBe(expected);
  });

  it.each(["", "1e6", "1,000", "1.", ".5", "NaN", "Infinity", " 1"])("refuses %j", (text) => {
    expect(() => formatDecimal(text)).toThrow(RangeError);
  });
});

describe("formatRatioPercent", () => {
  it.each([
    ["0.964123", "96.41%"],
    ["1.049999", "104.99%"],
    ["0.999999", "99.99%"],
    ["1", "100.00%"],
    ["-0.5", "-50.00%"],
    ["123.456789", "12,345.67%"],
  ])("%s gives %s (never rounded up)", (ratio, expected) => {
    expect(formatRatioPercent(ratio)).toBe(expected);
  });
});

describe("toGsm7", () => {
  it("transliterates look-alikes and replaces the rest", () => {
    expect(toGsm7("“a”—‘b’ … → x\u00a0y\u202fz ç ☃")).toBe(`"a"-'b' ... -> x y z c ?`);
    expect(isGsm7(toGsm7("anything at all: 😀 ∑ ∆ ￥"))).toBe(true);
  });

  it("counts extension characters as 2 septets", () => {
    expect(gsm7Septets("abc")).toBe(3);
    expect(gsm7Septets("[€]")).toBe(6);
  });
});
