/**
 * The event pipeline end to end, on DynamoDB Local: real stream records of the engine's own tables, read
 * through the Streams API and delivered with the template's mapping settings to the deployed handler
 * modules; SNS and EventBridge through the real SDK clients against the local AWS stub.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { deposit, holding, perpetual, price, profile } from "../support/upstream.ts";

let p: Pipeline;
const T0 = "2026-11-24T12:00:00.000Z";

beforeAll(async () => {
  p = await startPipeline(import.meta.url, T0);
});
afterAll(async () => {
  await p?.close();
});

/**
 * Three BTC sources and two ETH sources, all fresh at the pipeline's clock; BTC's realized volatility of
 * 72% raises its rates by 1.2×, as in docs/snapshots/crypto-called.json.
 */
async function market(btc: string, eth = "2405.00"): Promise<void> {
  const asOf = p.now();
  for (const source of ["index:coinbase", "index:kraken", "index:bitstamp"]) {
    await p.put("Prices", price("BTC", source, btc, asOf, source === "index:coinbase" ? "0.72" : undefined));
  }
  for (const source of ["index:coinbase", "index:kraken"])
    await p.put("Prices", price("ETH", source, eth, asOf));
}

/** The account of docs/snapshots/crypto-called.json: breach at BTC 51,880.59, warning below 52,220.41. */
async function leveredAccount(accountId: string): Promise<void> {
  await p.put("Accounts", profile(accountId));
  await p.put("Accounts", holding(accountId, "USD", "-58000.00"));
  await p.put("Accounts", holding(accountId, "BTC", "1.25000000"));
  await p.put("Accounts", holding(accountId, "ETH", "6.00000000"));
  await p.put("Accounts", perpetual(accountId, "BTC-PERP", "0.500", "64250.50"));
}

function smsTo(phone: string) {
  return p.stub.published.filter((message) => message.phoneNumber === phone);
}

describe("a price drop", () => {
  it("moves the account through WARNING to CALLED, with exactly one SMS and one email per notice", async () => {
    await market("56000.00");
    await leveredAccount("ACC-DROP");
    await p.drain();
    expect(await p.callState("ACC-DROP")).toBeUndefined(); // healthy: nothing to record
    expect(p.stub.published).toHaveLength(0);

    p.advance(5);
    await market("52100.00");
    await p.drain();
    expect((await p.callState("ACC-DROP"))?.status).toBe("WARNING");

    p.advance(5);
    await market("51800.00");
    await p.drain();
    const state = await p.callState("ACC-DROP");
    expect(state?.status).toBe("CALLED");
    expect(state?.call?.amountDue).toBe("379.90");

    const sms = smsTo("+12125550142");
    expect(sms.map((message) => message.messageAttributes["AWS.SNS.SMS.SMSType"])).toEqual([
      { dataType: "String", stringValue: "Transactional" },
      { dataType: "String", stringValue: "Transactional" },
    ]);
    expect(sms[0]?.message).toMatch(/WARNING|warning/);
    expect(sms[1]?.message).toContain("379.90 USD");
    const emails = p.stub.published.filter((message) => message.topicArn?.includes(":BorrowerEmailTopic"));
    expect(emails.map((message) => message.messageAttributes.notice?.stringValue)).toEqual([
      "WARNING",
      "CALL",
    ]);
    expect(emails.map((message) => message.messageAttributes.channel?.stringValue)).toEqual([
      "email",
      "email",
    ]);
    expect(emails[1]?.messageAttributes.recipient?.stringValue).toBe("borrower@example.com");
    expect(p.stub.published).toHaveLength(4);

    const audit = await p.query("AuditLog", "accountId", "ACC-DROP");
    expect(audit.map((entry) => `${entry.from}→${entry.to}`)).toEqual(["HEALTHY→WARNING", "WARNING→CALLED"]);
  });
});

describe("a deposit", () => {
  it("cures the call once it settles into cash", async () => {
    p.setNow("2026-11-24T13:00:00.000Z");
    await market("51800.00");
    await leveredAccount("ACC-CURE");
    await p.drain();
    expect((await p.callState("ACC-CURE"))?.status).toBe("CALLED");
    const published = p.stub.published.length;

    p.advance(60);
    await p.put("Accounts", deposit("ACC-CURE", "WIRE-1", "2000.00", "SETTLED", p.now()));
    await p.put("Accounts", holding("ACC-CURE", "USD", "-56000.00", 2));
    await p.drain();
    const state = await p.callState("ACC-CURE");
    expect(state?.status).toBe("CURED");
    const notices = p.stub.published.slice(published);
    expect(notices.filter((message) => message.phoneNumber).map((message) => message.message)).toHaveLength(
      1,
    );
    expect(notices.find((message) => message.topicArn)?.messageAttributes.notice?.stringValue).toBe("CURED");
  });
});
