/**
 * One hostile account never stops the engine watching the others (issue 12, part 1). Reproduced on DynamoDB
 * Local through the deployed handlers: an account short one wei of ETH has an ETH trigger line above
 * 10^20, which the index's order-preserving key cannot hold. That line is left out with its reason; the
 * account is indexed on every other line, and a tick that crosses its neighbours' lines calls it too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  imageOf,
  MAX_ISSUE_CHARACTERS,
  MAX_ISSUES_KEPT,
  QUARANTINE_RETENTION_DAYS,
} from "../../functions/adapters/quarantine.ts";
import { resetRuntime, setClock } from "../../functions/handlers/runtime.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url, "2026-11-24T12:00:00.000Z");
});
afterAll(async () => {
  await p?.close();
});

const ONE_WEI_SHORT = "-0.000000000000000001";

describe("an account short one wei of ETH", () => {
  it("is indexed on every line the index can hold, blocks no stream, and is called with its neighbours", async () => {
    await market(p, "56000.00");
    for (const id of ["ACC-N1", "ACC-N2", "ACC-N3"]) await leveredAccount(p, id);
    await leveredAccount(p, "ACC-WEI", ONE_WEI_SHORT);
    await p.drain();
    // Nothing was given up on: no record of any stream went to its on-failure queue.
    expect(Object.values(p.discarded).flat()).toEqual([]);
    const keys = await p.query("TriggerIndex", "line", "ACCOUNT#ACC-WEI");
    const indexed = String(keys[0]?.keys ?? "")
      .split("\n")
      .filter(Boolean)
      .map((key) => `${key.split("#")[0]} ${key.split("|")[0]?.split("#")[1]}`);
    expect(indexed).toContain("BTC DOWN");
    // The ETH lines it has are out of the key's range: none is indexed.
    expect(indexed.filter((line) => line.startsWith("ETH"))).toEqual([]);

    p.advance(5);
    await market(p, "51800.00");
    await p.drain();
    for (const id of ["ACC-N1", "ACC-N2", "ACC-N3", "ACC-WEI"]) {
      expect((await p.callState(id))?.status, id).toBe("CALLED");
    }
    expect(Object.values(p.discarded).flat()).toEqual([]);
  });
});

describe("a due call that cannot be revalued", () => {
  it("neither stops the sweep's pass nor the other due calls", async () => {
    // A state item that breaks (not JSON), due in every shard's first slot; and a sound call due beside it.
    for (let shard = 0; shard < 8; shard += 1) {
      await p.put("MarginCalls", {
        accountId: `ACC-BROKEN-${shard}`,
        state: "{not json",
        status: "CALLED",
        version: 1,
        openCallShard: String(shard),
        deadlineAt: "2026-11-24T00:00:00.000Z",
      });
    }
    const before = p.fanOut.depth();
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    const result = (await sweep({ time: p.now(), id: "isolation" })) as {
      dueRevalued: number;
      segmentsQueued: number;
    };
    // Every broken call was tried and reported, and the pass was queued all the same.
    expect(result.dueRevalued).toBeGreaterThanOrEqual(8);
    expect(result.segmentsQueued).toBeGreaterThan(0);
    expect(p.fanOut.depth() - before).toBe(result.segmentsQueued);
    await p.drain();
    // The pass went through the book: the sound accounts are still decided (called, from the test above).
    expect((await p.callState("ACC-N1"))?.status).toBe("CALLED");
  });
});

describe("a sweep with more due calls than time", () => {
  it("revalues what it can start in time and queues the rest to the fan-out worker, never running into its timeout", async () => {
    const late = Array.from({ length: 6 }, (_, index) => `ACC-LATE-${index}`);
    for (const [index, accountId] of late.entries()) {
      await p.put("MarginCalls", {
        accountId,
        state: "{not json",
        status: "CALLED",
        version: 1,
        openCallShard: String(index % 8),
        deadlineAt: "2026-11-24T00:00:01.000Z",
      });
    }
    const fanOut = p.stub.queue(p.fanOut.queueUrl);
    const before = new Set(fanOut.messages.map((message) => message.messageId));
    // A timeout of FINISH_RESERVE_MS (30 s): no time left to start revaluations but the first, which always
    // starts so that every run makes progress.
    const sweep = await p.handler<Record<string, unknown>>("Sweep", { timeoutMs: 30_000 });
    const result = (await sweep({ time: p.now(), id: "late" })) as { dueRevalued: number; dueQueued: number };
    expect(result.dueRevalued).toBe(1);
    const queued = fanOut.messages
      .filter((message) => !before.has(message.messageId))
      .map((message) => JSON.parse(message.body) as { type: string; cause?: string; accountIds?: string[] })
      .filter((message) => message.type === "ACCOUNTS");
    const queuedIds = queued.flatMap((message) => message.accountIds ?? []);
    expect(queued.every((message) => message.cause === "SWEEP")).toBe(true);
    expect(queuedIds).toHaveLength(result.dueQueued);
    // Every late call was either revalued by the sweep or queued, and only one of them was revalued.
    expect(late.filter((accountId) => !queuedIds.includes(accountId)).length).toBeLessThanOrEqual(1);
    await p.drain();
    expect(fanOut.depth).toBe(0);
  });
});

describe("an item with 6,000 attributes the contract does not know", () => {
  it("is quarantined once, its image gzipped and whole, and blocks nothing", async () => {
    const wide: Record<string, unknown> = {
      accountId: "ACC-WIDE",
      sk: "PROFILE",
      updatedAt: "2026-11-24T09:00:00Z",
      seq: 1,
    };
    for (let index = 0; index < 6_000; index += 1) wide[`attribute${index}`] = "x";
    await p.put("Accounts", wide);
    await p.drain();
    expect(Object.values(p.discarded).flat()).toEqual([]);
    const entries = (await p.scan("Quarantine")).filter((entry) =>
      String(entry.receivedAtId ?? "").includes("Accounts#"),
    );
    const mine = [];
    for (const entry of entries) {
      const image = await imageOf(entry, async () => undefined);
      if (image?.accountId?.S === "ACC-WIDE") mine.push({ entry, image });
    }
    expect(mine).toHaveLength(1);
    const [{ entry, image }] = mine as [(typeof mine)[number]];
    expect(entry.imageGzip).toBeInstanceOf(Uint8Array);
    expect(Object.keys(image ?? {})).toHaveLength(6_004);
    // The reason is bounded: at most MAX_ISSUES_KEPT lines of at most MAX_ISSUE_CHARACTERS (and "...").
    expect(String(entry.reason).length).toBeLessThan(MAX_ISSUES_KEPT * (MAX_ISSUE_CHARACTERS + 8));
    expect(Number(entry.expiresAtEpochSeconds)).toBe(
      Math.floor(Date.parse(String(entry.receivedAt)) / 1000) + QUARANTINE_RETENTION_DAYS * 86_400,
    );
  });
});

describe("due calls that cannot act", () => {
  it("do not starve a call that can: each run takes the next due calls in turn", async () => {
    // 32 calls that can never be revalued (four per shard, the oldest deadlines), and the four called
    // accounts of the first test, due once their deadline has passed; four due calls per run.
    for (let index = 8; index < 32; index += 1) {
      await p.put("MarginCalls", {
        accountId: `ACC-BROKEN-${index}`,
        state: "{not json",
        status: "CALLED",
        version: 1,
        openCallShard: String(index % 8),
        deadlineAt: "2026-11-24T00:00:00.000Z",
      });
    }
    const called = ["ACC-N1", "ACC-N2", "ACC-N3", "ACC-WEI"];
    const deadlines = await Promise.all(called.map(async (id) => (await p.callState(id))?.call?.deadlineAt));
    p.setNow(new Date(Math.max(...deadlines.map((at) => Date.parse(String(at)))) + 30_000).toISOString());
    const limit = process.env.MAX_ACCOUNTS_PER_INVOCATION;
    process.env.MAX_ACCOUNTS_PER_INVOCATION = "4";
    // The handlers read the setting again; the reset also forgets the pipeline's clock, so it is set back.
    resetRuntime();
    setClock(() => p.now());
    try {
      const sweep = await p.handler<Record<string, unknown>>("Sweep");
      // 36 due calls, 4 a run: every one is taken within 9 runs, a minute apart. The pass the first run
      // queues is left on the fan-out queue (it would revalue every account): only the due calls act.
      for (let run = 0; run < 9; run += 1) {
        p.advance(60);
        await market(p, "51800.00");
        await sweep({ time: p.now(), id: `starve-${run}` });
      }
    } finally {
      if (limit === undefined) delete process.env.MAX_ACCOUNTS_PER_INVOCATION;
      else process.env.MAX_ACCOUNTS_PER_INVOCATION = limit;
      resetRuntime();
      setClock(() => p.now());
    }
    for (const id of called) expect((await p.callState(id))?.status, id).toBe("LIQUIDATING");
  });
});
