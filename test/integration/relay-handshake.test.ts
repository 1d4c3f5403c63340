/**
 * The handshake that keeps every notice before its liquidation, under concurrency: the outbox relay and the
 * notifier run at the same time, in shuffled orders and batch splits, over many hard-floor steps (a CALL
 * notice and its liquidation request written in one transaction). Whatever the interleaving, each request
 * is put exactly once, after a publish of its notice, as the local endpoint's own log orders them.
 */
import { randomInt } from "node:crypto";
import { TransactWriteItemsCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toItem } from "../../functions/adapters/codec.ts";
import { OutboxClaims } from "../../functions/adapters/outbox-claims.ts";
import { deliveryViolations } from "../support/delivery-invariants.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { profile } from "../support/upstream.ts";

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url);
}, 120_000);

afterAll(async () => {
  await p?.close();
});

/** What one hard-floor step writes to the outbox: the call notice and the request that names it. */
async function hardFloorStep(accountId: string): Promise<void> {
  const notificationId = `${accountId}:v2:0:call`;
  const callId = `${accountId}:call:2`;
  const requestId = `${callId}:liquidation:1`;
  const common = { accountId, version: 2, createdAt: p.now(), expiresAtEpochSeconds: 4_000_000_000 };
  const notice = {
    notificationId,
    notice: "CALL",
    accountId,
    callId,
    amountDue: "1000.00",
    deadlineAt: p.now(),
    marginRatio: "0.70",
    cureOptions: [],
  };
  const request = {
    kind: "REQUEST_LIQUIDATION",
    requestId,
    accountId,
    callId,
    callNotificationId: notificationId,
    attempt: 1,
    reason: "HARD_FLOOR",
    plan: { steps: [{ side: "SELL", quantity: "1", limitPrice: "100" }], restoresTarget: true },
  };
  await p.db.dynamodb.send(
    new TransactWriteItemsCommand({
      TransactItems: [
        { outboxId: notificationId, kind: "NOTIFY", payload: JSON.stringify({ kind: "NOTIFY", ...notice }) },
        { outboxId: requestId, kind: "REQUEST_LIQUIDATION", payload: JSON.stringify(request) },
      ].map((item) => ({
        Put: {
          TableName: "Outbox",
          Item: toItem({ ...common, ...item }),
          ConditionExpression: "attribute_not_exists(outboxId)",
        },
      })),
    }),
  );
}

/** Polls the relay and the notifier at the same time, in random bursts, until both are idle. */
async function raceUntilIdle(): Promise<void> {
  for (let quiet = 0; quiet < 3; ) {
    const turns = await Promise.all([
      (async () => {
        let n = 0;
        for (let i = randomInt(1, 4); i > 0; i -= 1) n += await p.mappings.OutboxRelay.pollOnce();
        return n;
      })(),
      (async () => {
        let n = 0;
        for (let i = randomInt(1, 4); i > 0; i -= 1) n += await p.notices.pollOnce();
        return n;
      })(),
    ]);
    quiet = turns[0] + turns[1] === 0 ? quiet + 1 : 0;
  }
}

describe("the relay and the notifier racing", () => {
  it("puts each request once, after its notice's publish, in every interleaving", async () => {
    const accounts = Array.from({ length: 24 }, (_, i) => `ACC-RACE-${String(i).padStart(2, "0")}`);
    for (const accountId of accounts) await p.put("Accounts", profile(accountId));
    for (const accountId of accounts) await hardFloorStep(accountId);
    await raceUntilIdle();

    const outbox = (await p.scan("Outbox")).filter((item) => String(item.accountId).startsWith("ACC-RACE-"));
    const puts = p.stub.events.filter((put) => put.detailType === "LiquidationRequested");
    expect(puts).toHaveLength(accounts.length);
    expect(deliveryViolations(outbox, { published: p.stub.published, puts })).toEqual([]);
    // Some requests were held and released by their notice's completion, some found it already sent.
    const notices = outbox.filter((item) => item.kind === "NOTIFY");
    expect(notices.every((item) => item.outcome === "SENT")).toBe(true);
    expect(
      outbox
        .filter((item) => item.kind === "REQUEST_LIQUIDATION")
        .every((item) => item.dispatchOutcome === "PUT"),
    ).toBe(true);
  }, 120_000);

  it("decides hold against completion on the notice item: exactly one of them sees the other", async () => {
    const claims = new OutboxClaims(p.db.dynamodb, "Outbox");
    const results: string[] = [];
    for (let i = 0; i < 30; i += 1) {
      const accountId = `ACC-HOLD-${String(i).padStart(2, "0")}`;
      await hardFloorStep(accountId);
      const notificationId = `${accountId}:v2:0:call`;
      const requestId = `${accountId}:call:2:liquidation:1`;
      const claim = await claims.claimNotice(notificationId, "t", Date.now(), Date.now() + 60_000);
      expect(claim.status).toBe("CLAIMED");
      const sent = { state: "SENT" as const, detail: "m" };
      const [hold] = await Promise.all([
        claims.holdOnNotice(notificationId, requestId),
        claims.completeNotice(notificationId, "t", { sms: sent, email: sent }, p.now(), "LIQUIDATE"),
      ]);
      const item = await claims.item(notificationId);
      const heldOnItem = item?.held instanceof Set && item.held.has(requestId);
      // Held: the completion's image carries the request, so its MODIFY releases it. Sent: released at once.
      expect(hold.status === "HELD" ? heldOnItem && item?.outcome === "SENT" : !heldOnItem).toBe(true);
      expect(["HELD", "NOTICE_SENT"]).toContain(hold.status);
      results.push(hold.status);
    }
    expect(results).toHaveLength(30);
  }, 120_000);
});
