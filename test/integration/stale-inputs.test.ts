/**
 * No decision on stale inputs (issue 12, part 4). Reproduced on DynamoDB Local: a slow writer reads an
 * account, then a deposit lands and the account-change consumer judges the account healthy (a revaluation
 * that changes nothing, so it commits nothing); the slow writer then commits a call decided on the items
 * it read before the deposit. And a trigger-index sync that comes late must not replace a newer one's lines.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revalueAccount } from "../../functions/adapters/engine.ts";
import { lineOf, syncTriggerIndex } from "../../functions/adapters/trigger-index.ts";
import { dec } from "../../functions/domain/money.ts";
import type { TriggerPrices } from "../../functions/domain/triggers.ts";
import { runtime } from "../../functions/handlers/runtime.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { deposit, holding } from "../support/upstream.ts";

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url, "2026-11-24T12:00:00.000Z");
});
afterAll(async () => {
  await p?.close();
});

/** A client whose first read of the account's items waits, after it has its answer, until `release`. */
function slowClient() {
  let reached: () => void = () => {};
  let release: () => void = () => {};
  const hasRead = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let first = true;
  const client = new DynamoDBClient({
    endpoint: p.db.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: p.db.accessKeyId, secretAccessKey: "local" },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const table = (args.input as { TableName?: string }).TableName;
      if (first && context.commandName === "QueryCommand" && table === "Accounts") {
        first = false;
        reached();
        await gate;
      }
      return result;
    },
    { step: "initialize", name: "slowAccountRead" },
  );
  return { client, hasRead, release };
}

async function untilIdle(mapping: { pollOnce(): Promise<number> }): Promise<void> {
  while ((await mapping.pollOnce()) > 0) {}
}

describe("a slow writer that read the account before a deposit", () => {
  it("cannot commit a call after the deposit was judged: it re-reads and finds the account healthy", async () => {
    await market(p, "56000.00");
    await leveredAccount(p, "ACC-SLOW");
    await p.drain();
    expect((await p.callState("ACC-SLOW"))?.status ?? "HEALTHY").toBe("HEALTHY");

    // BTC falls through the account's breach line (51,880.59); nothing has revalued it yet.
    p.advance(5);
    await market(p, "51000.00");
    const slow = slowClient();
    const deps = { ...runtime(), dynamo: slow.client };
    const writer = revalueAccount(
      deps,
      "ACC-SLOW",
      { type: "REVALUE", cause: "SWEEP", eventId: "slow-writer" },
      p.now(),
    );
    await slow.hasRead;

    // The borrower pays 18,000 USD; the account-change consumer judges the account healthy at 51,000.
    await p.put("Accounts", holding("ACC-SLOW", "USD", "-40000.00", 2));
    await p.put("Accounts", deposit("ACC-SLOW", "WIRE-SLOW", "18000.00", "SETTLED", p.now()));
    await untilIdle(p.mappings.AccountChanges);
    expect((await p.callState("ACC-SLOW"))?.status ?? "HEALTHY").toBe("HEALTHY");

    slow.release();
    const outcome = await writer;
    slow.client.destroy();
    // The slow writer's first commit lost: it decided again on what the account holds now.
    expect(outcome.kind === "SKIPPED" ? outcome.reason : outcome.conflicts).toBeGreaterThan(0);
    expect((await p.callState("ACC-SLOW"))?.status ?? "HEALTHY").toBe("HEALTHY");
    const notices = (await p.scan("Outbox")).filter((item) => item.accountId === "ACC-SLOW");
    expect(notices).toEqual([]);

    await p.drain();
    expect((await p.callState("ACC-SLOW"))?.status ?? "HEALTHY").toBe("HEALTHY");
    expect(Object.values(p.discarded).flat()).toEqual([]);
  });
});

function btcLine(breachDown: string): TriggerPrices {
  return {
    asset: "BTC",
    markPrice: dec("60000"),
    breachDown: dec(breachDown),
    breachUp: null,
    warningDown: null,
    warningUp: null,
    levels: [],
  };
}

describe("a trigger-index sync that comes after a newer one", () => {
  it("leaves the newer revaluation's lines in place", async () => {
    const deps = runtime();
    const newer = "2026-11-24T13:00:10.000Z";
    const older = "2026-11-24T13:00:05.000Z";
    await syncTriggerIndex(deps, "ACC-SYNC", [btcLine("50000")], newer);
    // A revaluation that started earlier, on older inputs, syncs last.
    await syncTriggerIndex(deps, "ACC-SYNC", [btcLine("45000")], older);
    const entries = (await p.query("TriggerIndex", "line", lineOf("BTC", "DOWN", "ACC-SYNC"))).filter(
      (entry) => entry.accountId === "ACC-SYNC",
    );
    expect(entries.map((entry) => entry.price)).toContain("50000");
    const keys = await p.query("TriggerIndex", "line", "ACCOUNT#ACC-SYNC");
    expect(String(keys[0]?.keys)).toContain("50000.");
    expect(String(keys[0]?.keys)).not.toContain("45000.");
  });
});
