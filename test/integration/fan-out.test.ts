/**
 * Fan-out evidence: a price tick reads only the accounts whose trigger lines it crosses, found in the
 * trigger-price index, not every holder of the asset.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicies } from "../../functions/adapters/settings.ts";
import { crossedAccounts, LINE_SHARDS, linesOf } from "../../functions/adapters/trigger-index.ts";
import { dec, ONE } from "../../functions/domain/money.ts";
import { triggerPrices } from "../../functions/domain/triggers.ts";
import { resetRuntime, runtime, setClock } from "../../functions/handlers/runtime.ts";
import { templatePolicyDocuments } from "../../functions/local/policy-bootstrap.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { holding, price, profile } from "../support/upstream.ts";

let p: Pipeline;
const HOLDERS = 120;

beforeAll(async () => {
  p = await startPipeline(import.meta.url);
});
afterAll(async () => {
  await p?.close();
});

/** Each holder owns 1 BTC against a loan: holder i breaches at (17,000 + 300·i) / 0.85. */
const loanOf = (index: number) => String(17_000 + 300 * index);

async function tick(value: string): Promise<void> {
  const asOf = p.now();
  for (const source of ["a", "b", "c"]) await p.put("Prices", price("BTC", source, value, asOf));
}

describe("a price tick", () => {
  it("revalues exactly the accounts whose lines lie between the old and the new price", async () => {
    await tick("62000.00");
    for (let index = 0; index < HOLDERS; index += 1) {
      const accountId = `ACC-${String(index).padStart(3, "0")}`;
      await p.put("Accounts", profile(accountId));
      await p.put("Accounts", holding(accountId, "USD", `-${loanOf(index)}`));
      await p.put("Accounts", holding(accountId, "BTC", "1"));
    }
    await p.drain();

    // Count every read of an account's items from now on.
    const read = new Map<string, number>();
    runtime().dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as {
          TableName?: string;
          ExpressionAttributeValues?: Record<string, { S?: string }>;
        };
        if (context.commandName === "QueryCommand" && input.TableName === "Accounts") {
          const accountId = input.ExpressionAttributeValues?.[":id"]?.S ?? "?";
          read.set(accountId, (read.get(accountId) ?? 0) + 1);
        }
        return next(args);
      },
      { step: "initialize", name: "countAccountReads" },
    );

    p.advance(1);
    await tick("55000.00");
    await p.drain();

    // Independently: which holders have a breach, warning, hard-floor or cure line in [55,000, 62,000]?
    const policy = [...parsePolicies(templatePolicyDocuments(p.db.template)).values()][0]?.policy;
    if (!policy) throw new Error("no policy");
    const marks = new Map([["BTC", { price: dec("62000") }]]);
    const expected = new Set<string>();
    for (let index = 0; index < HOLDERS; index += 1) {
      const accountId = `ACC-${String(index).padStart(3, "0")}`;
      const account = {
        accountId,
        cash: dec(`-${loanOf(index)}`),
        holdings: [{ asset: "BTC", quantity: dec("1") }],
        positions: [],
        pendingDeposits: [],
      };
      const [btc] = triggerPrices(account, marks, policy, [
        policy.hardFloorRatio,
        ONE.plus(policy.exitBuffer),
      ]);
      const lines = [btc?.breachDown, btc?.warningDown, ...(btc?.levels ?? []).map((level) => level.down)];
      if (lines.some((line) => line?.greaterThanOrEqualTo(55_000) && line.lessThanOrEqualTo(62_000))) {
        expected.add(accountId);
      }
    }
    expect(expected.size).toBeGreaterThan(5);
    expect(expected.size).toBeLessThan(HOLDERS / 4);
    expect(new Set(read.keys())).toEqual(expected);

    // And those it read are the ones now in the warning zone or called.
    // The accounts with a transition: version 0 is a state on which only unchanged judgments were marked.
    const states = (await p.scan("MarginCalls")).filter((state) => Number(state.version) > 0);
    expect(states.length).toBeGreaterThan(0);
    for (const state of states) expect(expected.has(String(state.accountId))).toBe(true);
  });
});

describe("a page of a fall's range", () => {
  it("reads the most distressed accounts first: the highest lines crossed", async () => {
    // Every holder's lines as the last test indexed them; the range of a fall to 40,000 holds many.
    // BTC's DOWN entries are spread over LINE_SHARDS lines by account: each line is read on its own.
    const lines = linesOf("BTC", "DOWN");
    expect(lines).toHaveLength(LINE_SHARDS);
    const wholes = await Promise.all(
      lines.map((line) => crossedAccounts(runtime(), line, dec("40000"), dec("62000"), 1_000)),
    );
    expect(wholes.reduce((n, whole) => n + whole.accountIds.length, 0)).toBeGreaterThan(10);
    // Every account on one line only: its shard.
    const all = wholes.flatMap((whole) => [...new Set(whole.accountIds)]);
    expect(new Set(all).size).toBe(all.length);
    const fullest = wholes.reduce(
      (best, whole, index) =>
        whole.accountIds.length > (wholes[best]?.accountIds.length ?? 0) ? index : best,
      0,
    );
    const line = lines[fullest] ?? "";
    expect(wholes[fullest]?.accountIds.length).toBeGreaterThan(5);
    const first = await crossedAccounts(runtime(), line, dec("40000"), dec("62000"), 5);
    // The first page is the head of the range in descending price: each of its entries is at or above
    // the fifth highest price in the range.
    const prices = (await p.query("TriggerIndex", "line", line))
      .filter((entry) => Number(entry.price) >= 40_000 && Number(entry.price) <= 62_000)
      .map((entry) => ({ accountId: String(entry.accountId), price: Number(entry.price) }))
      .sort((a, b) => b.price - a.price);
    const fifth = prices[4]?.price ?? Number.POSITIVE_INFINITY;
    expect(first.accountIds).toHaveLength(5);
    for (const accountId of first.accountIds) {
      expect(
        prices.some((entry) => entry.accountId === accountId && entry.price >= fifth),
        accountId,
      ).toBe(true);
    }
    // The lowest lines of the range are not on it.
    const lowest = prices.at(-1);
    if (lowest && lowest.price < fifth) expect(first.accountIds).not.toContain(lowest.accountId);
  });
});

describe("a page whose time runs out", () => {
  it("sends the accounts it did not start to the queue as a page of their own, and every one is decided", async () => {
    const budget = process.env.PAGE_BUDGET_MS;
    // One millisecond: each page starts its first account only, and hands the rest on.
    process.env.PAGE_BUDGET_MS = "1";
    resetRuntime();
    setClock(() => p.now());
    try {
      // Count the pages the worker logs, by type.
      const pages: string[] = [];
      const logger = runtime().logger;
      const info = logger.info.bind(logger);
      logger.info = ((message: string, ...extra: unknown[]) => {
        if (message === "fan-out page") pages.push(String((extra[0] as { type?: string })?.type));
        info(message, ...(extra as []));
      }) as typeof logger.info;
      p.advance(1);
      await tick("50000.00");
      await p.drain();
      // Holder i breaches at (17,000 + 300·i) / 0.85: those between 50,000 and 55,000 are called now.
      const called: string[] = [];
      for (let index = 0; index < HOLDERS; index += 1) {
        const breach = (17_000 + 300 * index) / 0.85;
        if (breach > 50_000 && breach < 55_000) called.push(`ACC-${String(index).padStart(3, "0")}`);
      }
      expect(called.length).toBeGreaterThan(5);
      for (const accountId of called) {
        expect((await p.callState(accountId))?.status, accountId).toBe("CALLED");
      }
      // The pages handed their rest on, page after page (those started within the same millisecond run
      // together, so fewer pages than accounts).
      expect(pages.filter((type) => type === "ACCOUNTS").length).toBeGreaterThanOrEqual(3);
    } finally {
      if (budget === undefined) delete process.env.PAGE_BUDGET_MS;
      else process.env.PAGE_BUDGET_MS = budget;
      resetRuntime();
      setClock(() => p.now());
    }
  });
});
