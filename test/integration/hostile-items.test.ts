/**
 * Fail closed, not open (issue 12, parts 1 and 2), reproduced on DynamoDB Local through the deployed
 * handlers. A broken delivery field or an airdropped token must not freeze an account (ten thousand empty
 * holdings: wide-account.test.ts): it is still valued and called with its neighbours. An account that truly cannot be valued (it
 * borrows an asset its policy does not list) is parked where an operator sees it, retried by the sweep,
 * and valued again once upstream fixes it.
 */
import { DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toItem } from "../../functions/adapters/codec.ts";
import { PARKED_STATUS, parkedId } from "../../functions/adapters/parked.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { holding, profile } from "../support/upstream.ts";

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url, "2026-11-24T12:00:00.000Z");
});
afterAll(async () => {
  await p?.close();
});

async function quarantined(accountId: string, sk: string): Promise<number> {
  const entries = await p.scan("Quarantine");
  return entries.filter(
    (entry) => String(entry.keys ?? "").includes(accountId) && String(entry.keys).includes(sk),
  ).length;
}

async function outboxOf(accountId: string) {
  return (await p.scan("Outbox")).filter((item) => item.accountId === accountId && item.kind === "NOTIFY");
}

describe("accounts with hostile items", () => {
  it("are valued and called with their neighbours: a long name, a bad e-mail, an airdrop", async () => {
    await market(p, "56000.00");
    for (const id of ["ACC-PLAIN", "ACC-NAME", "ACC-MAIL", "ACC-AIRDROP"]) await leveredAccount(p, id);
    await p.put("Accounts", { ...profile("ACC-NAME"), borrowerName: "N".repeat(5_000) });
    await p.put("Accounts", {
      ...profile("ACC-MAIL"),
      contact: { phoneE164: "+12125550199", email: "not an e-mail" },
    });
    // A token the policy does not list, owned: worth nothing as collateral, and no reason to stop.
    await p.put("Accounts", holding("ACC-AIRDROP", "AIRDROP", "1000000"));
    await p.drain(200);
    expect(Object.values(p.discarded).flat()).toEqual([]);
    // The broken PROFILEs are quarantined all the same: an operator sees them.
    expect(await quarantined("ACC-NAME", "PROFILE")).toBe(1);
    expect(await quarantined("ACC-MAIL", "PROFILE")).toBe(1);

    p.advance(5);
    await market(p, "51800.00");
    await p.drain(200);
    for (const id of ["ACC-PLAIN", "ACC-NAME", "ACC-MAIL", "ACC-AIRDROP"]) {
      const state = await p.callState(id);
      expect(state?.status, id).toBe("CALLED");
      // The airdrop counts for nothing: the same call as the plain account's.
      expect(state?.call?.amountDue, id).toBe((await p.callState("ACC-PLAIN"))?.call?.amountDue);
    }
    // Every notice went out on each channel that has a valid address; the bad e-mail's channel is NONE.
    const [named] = await outboxOf("ACC-NAME");
    expect([named?.smsState, named?.emailState]).toEqual(["SENT", "SENT"]);
    const [mailless] = await outboxOf("ACC-MAIL");
    expect([mailless?.smsState, mailless?.emailState]).toEqual(["SENT", "NONE"]);
    expect(p.stub.published.filter((message) => message.phoneNumber === "+12125550199")).toHaveLength(1);
    // Nothing of these was parked.
    const parked = (await p.scan("Quarantine")).filter((entry) => entry.status === PARKED_STATUS);
    expect(parked).toEqual([]);
  });
});

describe("an account that borrows an asset its policy does not list", () => {
  it("is parked with its reason, retried by the sweep, and valued once upstream fixes it", async () => {
    await leveredAccount(p, "ACC-SHORT-AIRDROP");
    await p.put("Accounts", holding("ACC-SHORT-AIRDROP", "AIRDROP", "-5"));
    await p.drain();
    const [record] = (await p.scan("Quarantine")).filter(
      (entry) => entry.quarantineId === parkedId("ACC-SHORT-AIRDROP"),
    );
    expect(record?.status).toBe(PARKED_STATUS);
    expect(String(record?.reason)).toContain("asset AIRDROP is not in policy");

    // The sweep retries it: still unvaluable, it stays parked (one more attempt).
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    p.advance(60);
    await market(p, "51800.00");
    const first = (await sweep({ time: p.now(), id: "parked-1" })) as {
      parkedRetried: number;
      unparked: number;
    };
    expect(first).toMatchObject({ parkedRetried: 1, unparked: 0 });

    // Upstream removes the bad holding; the next run values the account and deletes its record.
    await p.db.dynamodb.send(
      new DeleteItemCommand({
        TableName: "Accounts",
        Key: toItem({ accountId: "ACC-SHORT-AIRDROP", sk: "HOLDING#AIRDROP" }),
      }),
    );
    p.advance(60);
    await market(p, "51800.00");
    const second = (await sweep({ time: p.now(), id: "parked-2" })) as {
      parkedRetried: number;
      unparked: number;
    };
    expect(second).toMatchObject({ parkedRetried: 1, unparked: 1 });
    expect((await p.scan("Quarantine")).filter((entry) => entry.status === PARKED_STATUS)).toEqual([]);
    expect((await p.callState("ACC-SHORT-AIRDROP"))?.status).toBe("CALLED");
  });
});
