/**
 * The event pipeline end to end, on DynamoDB Local: real stream records of the engine's own tables, read
 * through the Streams API and delivered with the template's mapping settings to the deployed handler
 * modules; SNS and EventBridge through the real SDK clients against the local AWS stub.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runQuarantine } from "../../functions/cli/quarantine-commands.ts";
import { resetRuntime, setClock } from "../../functions/handlers/runtime.ts";
import { StreamReader } from "../../functions/local/streams.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { deposit, executionReport, holding, perpetual, profile } from "../support/upstream.ts";

let p: Pipeline;
const T0 = "2026-11-24T12:00:00.000Z";

beforeAll(async () => {
  p = await startPipeline(import.meta.url, T0);
});
afterAll(async () => {
  await p?.close();
});

function smsTo(phone: string) {
  return p.stub.published.filter((message) => message.phoneNumber === phone);
}

describe("a price drop", () => {
  it("moves the account through WARNING to CALLED, with exactly one SMS and one email per notice", async () => {
    await market(p, "56000.00");
    await leveredAccount(p, "ACC-DROP");
    await p.drain();
    // Healthy: no transition recorded (its changes were judged on the initial state, version 0).
    expect((await p.callState("ACC-DROP"))?.version ?? 0).toBe(0);
    expect(p.stub.published).toHaveLength(0);

    p.advance(5);
    await market(p, "52100.00");
    await p.drain();
    expect((await p.callState("ACC-DROP"))?.status).toBe("WARNING");

    p.advance(5);
    await market(p, "51800.00");
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
    await market(p, "51800.00");
    await leveredAccount(p, "ACC-CURE");
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

describe("a deadline that passes", () => {
  let requestId = "";

  it("escalates to LIQUIDATING and puts exactly one LiquidationRequested on the bus", async () => {
    p.setNow("2026-11-24T14:00:00.000Z");
    await market(p, "51800.00");
    await leveredAccount(p, "ACC-LATE");
    await p.drain();
    const called = await p.callState("ACC-LATE");
    expect(called?.status).toBe("CALLED");
    const deadline = called?.call?.deadlineAt ?? "";

    // The sweep before the deadline sends nothing; after it, the call escalates. Prices stay fresh.
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    p.setNow(new Date(Date.parse(deadline) + 30_000).toISOString());
    await market(p, "51800.00");
    await p.drain();
    await sweep({ id: "sweep-1", time: p.now(), "detail-type": "Scheduled Event", source: "aws.events" });
    await p.drain();
    // A second sweep and a re-run of every stream change nothing more.
    await sweep({ id: "sweep-2", time: p.now(), "detail-type": "Scheduled Event", source: "aws.events" });
    await p.drain();

    const state = await p.callState("ACC-LATE");
    expect(state?.status).toBe("LIQUIDATING");
    const requests = p.stub.events.filter(
      (event) =>
        event.detailType === "LiquidationRequested" && JSON.parse(event.detail).accountId === "ACC-LATE",
    );
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request?.source).toBe("margin-call-engine");
    expect(request?.eventBusName).toBe("margin-call-dev");
    const detail = JSON.parse(request?.detail ?? "{}");
    requestId = detail.requestId;
    expect(detail).toMatchObject({
      reference: requestId,
      accountId: "ACC-LATE",
      reason: "DEADLINE",
      attempt: 1,
    });
    expect(detail.plan.steps.length).toBeGreaterThan(0);
    for (const step of detail.plan.steps) {
      expect(step.limitPrice).toMatch(/^\d+(\.\d+)?$/);
      expect(["SELL", "BUY"]).toContain(step.side);
    }
    // The call notice went out the day before; the liquidation notice now.
    const notices = p.stub.published
      .filter(
        (message) =>
          message.topicArn && message.messageAttributes.notificationId?.stringValue?.startsWith("ACC-LATE"),
      )
      .map((message) => message.messageAttributes.notice?.stringValue);
    expect(notices).toEqual(["CALL", "LIQUIDATION_NOTICE"]);
  });

  it("closes the call when the execution system reports the final fill", async () => {
    p.advance(60);
    const at = p.now();
    // The execution system sold everything and repaid the loan: it writes the report and the holdings.
    await p.put("Accounts", holding("ACC-LATE", "BTC", "0", 2));
    await p.put("Accounts", holding("ACC-LATE", "ETH", "0", 2));
    await p.put("Accounts", holding("ACC-LATE", "USD", "10150.00", 2));
    await p.put("Accounts", { ...perpetual("ACC-LATE", "BTC-PERP", "0", "64250.50"), seq: 2 });
    await p.put(
      "Accounts",
      executionReport(
        "ACC-LATE",
        "FILL-1",
        requestId,
        { kind: "HOLDING", asset: "BTC" },
        "1.25",
        "51700.00",
        at,
      ),
    );
    await p.drain();
    const state = await p.callState("ACC-LATE");
    expect(state?.status).toBe("LIQUIDATED");
    const audit = await p.query("AuditLog", "accountId", "ACC-LATE");
    expect(audit.map((entry) => entry.to)).toEqual(["CALLED", "LIQUIDATING", "LIQUIDATED"]);
  });
});

describe("at-least-once delivery", () => {
  it("changes nothing when every stream record is delivered again", async () => {
    p.setNow("2026-11-24T16:00:00.000Z");
    await market(p, "51800.00");
    await leveredAccount(p, "ACC-DUP");
    // Capture the records as Lambda would deliver them, deliver them, then deliver them all again.
    const accounts = p.mappings.AccountChanges;
    await accounts.reader.fetch();
    const records = accounts.reader.peek(accounts.reader.pendingShards()[0] ?? "", 1000);
    await p.drain();
    const before = {
      state: await p.callState("ACC-DUP"),
      audit: (await p.query("AuditLog", "accountId", "ACC-DUP")).length,
      outbox: (await p.scan("Outbox")).length,
      published: p.stub.published.length,
      events: p.stub.events.length,
    };
    expect(before.state?.status).toBe("CALLED");

    const accountChanges = await p.handler<{ Records: unknown[] }>("AccountChanges");
    const again = records.filter((record) => JSON.stringify(record).includes("ACC-DUP"));
    expect(again.length).toBeGreaterThan(0);
    await accountChanges({ Records: again });
    const outboxRecords = (await p.scan("Outbox")).filter((item) => item.accountId === "ACC-DUP");
    expect(outboxRecords.length).toBeGreaterThan(0);
    // And the outbox relay's records once more, straight from the stream: every notice is queued again.
    const outboxReader = new StreamReader(
      p.db.streams,
      p.mappings.OutboxRelay.reader.streamArn,
      "TRIM_HORIZON",
    );
    await outboxReader.fetch();
    const relay = await p.handler<{ Records: unknown[] }>("OutboxRelay");
    await relay({ Records: outboxReader.take() });
    await p.drain();

    expect(await p.callState("ACC-DUP")).toEqual(before.state);
    expect((await p.query("AuditLog", "accountId", "ACC-DUP")).length).toBe(before.audit);
    expect((await p.scan("Outbox")).length).toBe(before.outbox);
    expect(p.stub.published.length).toBe(before.published);
    expect(p.stub.events.length).toBe(before.events);
  });
});

describe("a malformed upstream record", () => {
  it("is quarantined with its reason while the rest of the batch succeeds", async () => {
    p.setNow("2026-11-24T17:00:00.000Z");
    await market(p, "51800.00");
    await p.put("Accounts", profile("ACC-BAD"));
    await p.put("Accounts", holding("ACC-BAD", "USD", "-53500.00"));
    // A number where the contract wants a decimal string: it would lose digits.
    await p.put("Accounts", { ...holding("ACC-BAD", "BTC", "0"), quantity: 1.25 });
    await leveredAccount(p, "ACC-GOOD");
    await p.drain();

    expect(p.discarded.AccountChanges).toEqual([]);
    expect((await p.callState("ACC-GOOD"))?.status).toBe("CALLED");
    const quarantined = (await p.scan("Quarantine")).filter((item) => String(item.keys).includes("ACC-BAD"));
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toMatchObject({
      status: "OPEN",
      sourceTable: "Accounts",
      eventName: "INSERT",
      reason: '$.quantity: must be a decimal string, e.g. "1234.50"; numbers lose digits',
    });
    expect(JSON.parse(String(quarantined[0]?.image)).quantity).toEqual({ N: "1.25" });
    // The account with the bad item is not valued on a guess: no state, no notice.
    expect((await p.callState("ACC-BAD"))?.version ?? 0).toBe(0);
  });

  it("stops blocking its account once upstream deletes it, without a second quarantine entry", async () => {
    await leveredAccount(p, "ACC-BAD-DEL");
    await p.put("Accounts", { ...holding("ACC-BAD-DEL", "SOLX", "0"), quantity: 3 });
    await p.drain();
    const entries = async () =>
      (await p.scan("Quarantine")).filter((entry) => String(entry.keys).includes("ACC-BAD-DEL"));
    expect(await entries()).toHaveLength(1);
    expect((await p.callState("ACC-BAD-DEL"))?.version ?? 0).toBe(0);

    await p.db.dynamodb.send(
      new DeleteItemCommand({
        TableName: "Accounts",
        Key: { accountId: { S: "ACC-BAD-DEL" }, sk: { S: "HOLDING#SOLX" } },
      }),
    );
    await p.drain();
    expect(await entries()).toHaveLength(1);
    expect((await p.callState("ACC-BAD-DEL"))?.status).toBe("CALLED");
  });

  it("is listed for an operator and, once fixed, replayed into its table, after which the account is valued", async () => {
    const [item] = (await p.scan("Quarantine")).filter((entry) => String(entry.keys).includes("ACC-BAD"));
    const id = String(item?.quarantineId);
    // Upstream's corrected record: the same holding, as a decimal string, with a higher seq.
    const fixed = join(mkdtempSync(join(tmpdir(), "margin-call-replay-")), "fixed.json");
    writeFileSync(fixed, JSON.stringify(holding("ACC-BAD", "BTC", "1.25000000", 2)));
    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => printed.push(line);
    try {
      expect(await runQuarantine(["list"])).toBe(0);
      expect(await runQuarantine(["replay", id, "--file", fixed])).toBe(0);
    } finally {
      console.log = log;
      rmSync(dirname(fixed), { recursive: true, force: true });
    }
    expect(printed.some((line) => line.startsWith(id) && line.includes("numbers lose digits"))).toBe(true);
    await p.drain();
    expect((await p.callState("ACC-BAD"))?.status).toBe("CALLED");
    const [after] = (await p.scan("Quarantine")).filter((entry) => entry.quarantineId === id);
    expect(after).toMatchObject({ status: "REPLAYED" });
    // Replaying twice is refused: the record is no longer OPEN.
    await expect(runQuarantine(["replay", id, "--file", fixed])).rejects.toThrow(/REPLAYED, not OPEN/);
  });

  it("refuses a replay over what upstream wrote since, and keeps the newer item", async () => {
    await leveredAccount(p, "ACC-BAD-NEW");
    await p.put("Accounts", { ...holding("ACC-BAD-NEW", "ETH", "0"), quantity: 6 });
    await p.drain();
    const [record] = (await p.scan("Quarantine")).filter((entry) =>
      String(entry.keys).includes("ACC-BAD-NEW"),
    );
    // Upstream fixes it itself, with a higher seq, before the operator gets to the record.
    await p.put("Accounts", holding("ACC-BAD-NEW", "ETH", "7.00000000", 2));
    await p.drain();
    const stale = join(mkdtempSync(join(tmpdir(), "margin-call-replay-")), "stale.json");
    writeFileSync(stale, JSON.stringify(holding("ACC-BAD-NEW", "ETH", "6.00000000", 1)));
    try {
      await expect(runQuarantine(["replay", String(record?.quarantineId), "--file", stale])).rejects.toThrow(
        /changed in its table since it was quarantined/,
      );
    } finally {
      rmSync(dirname(stale), { recursive: true, force: true });
    }
    const [current] = (await p.query("Accounts", "accountId", "ACC-BAD-NEW")).filter(
      (item) => item.sk === "HOLDING#ETH",
    );
    expect(current).toMatchObject({ quantity: "7.00000000", seq: 2 });
    const [after] = (await p.scan("Quarantine")).filter(
      (entry) => entry.quarantineId === record?.quarantineId,
    );
    expect(after).toMatchObject({ status: "OPEN" });
  });
});

describe("the hard floor", () => {
  it("calls at once and liquidates when the sweep confirms the breach 30 s later, retrying PutEvents entries that fail inside a 200 reply", async () => {
    p.setNow("2026-11-24T18:00:00.000Z");
    await market(p, "49000.00");
    p.stub.failNextPutEvents(2);
    await leveredAccount(p, "ACC-FLOOR");
    await p.drain();
    // The call goes out at once; the liquidation waits for a revaluation hardFloorConfirmSeconds later.
    const called = await p.callState("ACC-FLOOR");
    expect(called?.status).toBe("CALLED");
    expect(called?.call?.hardFloorSince).toBe("2026-11-24T18:00:00.000Z");
    expect(p.stub.events.filter((event) => JSON.parse(event.detail).accountId === "ACC-FLOOR")).toEqual([]);

    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    p.advance(29);
    await sweep({ id: "sweep-floor-early", time: p.now() });
    await p.drain();
    expect((await p.callState("ACC-FLOOR"))?.status).toBe("CALLED");
    p.advance(1);
    await sweep({ id: "sweep-floor", time: p.now() });
    await p.drain();

    expect((await p.callState("ACC-FLOOR"))?.status).toBe("LIQUIDATING");
    const requests = p.stub.events.filter((event) => JSON.parse(event.detail).accountId === "ACC-FLOOR");
    expect(requests.map((event) => [event.detailType, JSON.parse(event.detail).reason])).toEqual([
      ["LiquidationRequested", "HARD_FLOOR"],
    ]);
    expect(p.discarded.OutboxRelay).toEqual([]);
    const notices = p.stub.published
      .filter((message) => message.messageAttributes.notificationId?.stringValue?.startsWith("ACC-FLOOR"))
      .map((message) => message.messageAttributes.notice?.stringValue);
    expect(notices).toEqual(["CALL", "LIQUIDATION_NOTICE"]);
    const audit = await p.query("AuditLog", "accountId", "ACC-FLOOR");
    expect(audit.map((entry) => `${entry.from}→${entry.to}`)).toEqual([
      "HEALTHY→CALLED",
      "CALLED→CALLED",
      "CALLED→LIQUIDATING",
    ]);
  });
});

describe("the sweep", () => {
  it("sends the reminders of an open call on the policy's ladder, once each", async () => {
    p.setNow("2026-11-25T00:00:00.000Z");
    await market(p, "51800.00");
    await leveredAccount(p, "ACC-REMIND");
    await p.drain();
    const call = (await p.callState("ACC-REMIND"))?.call;
    expect(call).toBeDefined();
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    const reminders = () =>
      p.stub.published.filter(
        (message) =>
          message.topicArn &&
          message.messageAttributes.notice?.stringValue === "REMINDER" &&
          message.messageAttributes.notificationId?.stringValue?.startsWith("ACC-REMIND"),
      ).length;
    for (const hours of [1, 6.5, 7, 18.5, 19]) {
      p.setNow(new Date(Date.parse(call?.issuedAt ?? "") + hours * 3_600_000).toISOString());
      await market(p, "51800.00");
      await p.drain();
      await sweep({ id: `sweep-${hours}`, time: p.now() });
      await p.drain();
    }
    // Offsets 6 h and 18 h: one reminder each, however many sweeps pass.
    expect(reminders()).toBe(2);
    expect((await p.callState("ACC-REMIND"))?.call?.remindersSent).toBe(2);
  });
});

describe("a replaced function", () => {
  it("sends nothing again when the whole outbox is replayed under a new function name", async () => {
    const outbox = await p.scan("Outbox");
    expect(outbox.filter((item) => item.kind === "NOTIFY" && item.outcome === "SENT").length).toBeGreaterThan(
      0,
    );
    expect(
      outbox.filter((item) => item.kind === "REQUEST_LIQUIDATION" && item.dispatchedAt).length,
    ).toBeGreaterThan(0);
    const before = { published: p.stub.published.length, events: p.stub.events.length };
    const { handler } = await import("../../functions/handlers/outbox-relay.ts");
    // The function is replaced: a new name, and a fresh execution environment (new clients), and its new
    // mapping starts at the oldest record of the stream.
    process.env.AWS_LAMBDA_FUNCTION_NAME = "margin-call-test-replaced";
    resetRuntime();
    setClock(() => p.now());
    const reader = new StreamReader(p.db.streams, p.mappings.OutboxRelay.reader.streamArn, "TRIM_HORIZON");
    await reader.fetch();
    const records = reader.take();
    expect(records.length).toBeGreaterThan(0);
    const renamed = {
      functionName: "MarginCallEngine-OutboxRelayReplaced",
      awsRequestId: "replay-1",
      getRemainingTimeInMillis: () => 60_000,
    } as unknown as Context;
    const result = (await handler({ Records: records } as never, renamed)) as {
      batchItemFailures: unknown[];
    };
    expect(result.batchItemFailures).toEqual([]);
    // The notices it queued again are claimed by the notifier, found sent, and dropped.
    await p.drain();
    expect(p.stub.published.length).toBe(before.published);
    expect(p.stub.events.length).toBe(before.events);
  });
});
