/**
 * The sweep's pages revalue in bulk through the float screen (functions/adapters/bulk-revalue.ts) and decide
 * what the exact path decides. A generated book is indexed at opening prices; prices then drop 10% with no
 * tick processed, so only the sweep sees the move. One sweep runs through the handlers (Sweep, then the
 * fan-out worker's SQS mapping, in pages small enough to split accounts across pages); `revalueAccount`
 * runs on every account, one by one, on a copy of the same tables in a database of its own. The MarginCalls
 * states must be equal, whole. The screen's effect is counted, not timed: the accounts the exact path
 * reads (its Query of the account) and the writes.
 */
import { readFileSync } from "node:fs";
import {
  BatchWriteItemCommand,
  DeleteItemCommand,
  type DynamoDBClient,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountOf } from "../../functions/adapters/account-inputs.ts";
import { fromImage } from "../../functions/adapters/codec.ts";
import { revalueAccount } from "../../functions/adapters/engine.ts";
import { ENV, parsePolicies } from "../../functions/adapters/settings.ts";
import { encodePrice, lineOf, REFRESH_AFTER_SECONDS } from "../../functions/adapters/trigger-index.ts";
import { parseAccountItem } from "../../functions/domain/contract.ts";
import type { CallState } from "../../functions/domain/machine.ts";
import { dec, Rounding, toFixedString } from "../../functions/domain/money.ts";
import type { Policy } from "../../functions/domain/policy.ts";
import { valueAccount } from "../../functions/domain/valuation.ts";
import { resetRuntime, runtime, setClock } from "../../functions/handlers/runtime.ts";
import { type DemoAccount, generateBook, writeAccounts } from "../../functions/local/demo/book.ts";
import { type TestDatabase, testDatabase } from "../support/local-dynamodb.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { deposit, holding, POLICY_ID, price, profile } from "../support/upstream.ts";

const OPENING = { BTC: "60000.00", ETH: "3000.00", SOL: "150.000" };
const DROPPED = { BTC: "54000.00", ETH: "2700.00" };
/** Margin ratios at the dropped prices for every fourth account: in breach, in the warning zone, above it. */
const PLACED_RATIOS = ["0.90", "0.95", "0.99", "1.03", "1.06", "1.09", "1.13"];
/** Scan pages of this many items: most pages stop inside an account. */
const PAGE_ITEMS = 37;
/** An account with more items than a Scan page. */
const LARGE = "ACC-900000";
const TABLES = ["Accounts", "Prices", "MarginCalls", "TriggerIndex", "Outbox"];

function policyOf(file: string, policyId: string): Policy {
  const text = readFileSync(new URL(`../../lib/config/${file}`, import.meta.url), "utf8");
  const policy = parsePolicies(text).get(policyId)?.policy;
  if (!policy) throw new Error(`no policy ${policyId} in ${file}`);
  return policy;
}

/** Sets the account's cash so that its margin ratio at the dropped prices is `ratio` (the loan is linear). */
function placeAt(account: DemoAccount, ratio: string, policy: Policy): void {
  const cash = account.items.find((item) => item.sk === "HOLDING#USD");
  if (!cash) throw new Error(`${account.accountId} has no cash`);
  const items = account.items.flatMap((item) => {
    const parsed = parseAccountItem(item);
    return parsed.ok && item !== cash ? [parsed.value] : [];
  });
  const marks = new Map(Object.entries(DROPPED).map(([asset, value]) => [asset, { price: dec(value) }]));
  const valuation = valueAccount(accountOf(account.accountId, items, "USD"), marks, policy);
  const quantity = dec(ratio).times(valuation.maintenance).minus(valuation.adjustedEquity);
  cash.quantity = toFixedString(quantity, 2, Rounding.FLOOR);
}

/**
 * The demo's generated book (functions/local/demo/book.ts), drawn under the demo policy, whose BTC, ETH and
 * BTC-PERP terms are the deployed policy's. Accounts with SOL or ETH-PERP, which the deployed policy does
 * not have, are left out but for three with ETH-PERP, which neither path can value. Every fourth account is placed near
 * a line at the dropped prices. One healthy account has more items than a Scan page (failed deposits).
 * `alwaysExact`: the accounts every sweep sends to the exact path, whatever their state.
 */
function book(policy: Policy): { accounts: DemoAccount[]; alwaysExact: string[] } {
  const generated = generateBook(
    500,
    11,
    policyOf("demo-policies.json", "crypto-demo"),
    OPENING,
    POLICY_ID,
    "2026-11-24T09:00:00Z",
  );
  const foreign = (account: DemoAccount) =>
    account.items.some((item) => item.sk === "HOLDING#SOL" || item.sk === "POSITION#ETH-PERP");
  const valuable = generated.filter((account) => !foreign(account));
  valuable.forEach((account, index) => {
    if (index % 4 === 0) placeAt(account, PLACED_RATIOS[(index / 4) % PLACED_RATIOS.length] ?? "1", policy);
  });
  // An instrument the policy does not list makes an account unvaluable (an unlisted owned asset, SOL,
  // would count as zero collateral: domain/item-rules.ts).
  const unvaluable = generated
    .filter((account) => account.items.some((item) => item.sk === "POSITION#ETH-PERP"))
    .slice(0, 3);
  const large: DemoAccount = {
    accountId: LARGE,
    items: [
      profile(LARGE),
      holding(LARGE, "USD", "-10000.00"),
      holding(LARGE, "BTC", "1"),
      ...Array.from({ length: PAGE_ITEMS + 10 }, (_, index) =>
        deposit(LARGE, `D${index}`, "10.00", "FAILED", "2026-11-24T09:00:00Z"),
      ),
    ],
  };
  return {
    accounts: [...valuable, ...unvaluable, large],
    alwaysExact: [...unvaluable.map((account) => account.accountId), LARGE],
  };
}

async function copyTables(from: DynamoDBClient, to: DynamoDBClient): Promise<void> {
  for (const table of TABLES) {
    let start: Record<string, never> | undefined;
    do {
      const page = await from.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
      const items = page.Items ?? [];
      for (let first = 0; first < items.length; first += 25) {
        let pending = items.slice(first, first + 25).map((Item) => ({ PutRequest: { Item } }));
        while (pending.length > 0) {
          const result = await to.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
          pending = (result.UnprocessedItems?.[table] ?? []) as typeof pending;
        }
      }
      start = page.LastEvaluatedKey as Record<string, never> | undefined;
    } while (start);
  }
}

async function states(client: DynamoDBClient): Promise<Map<string, CallState>> {
  const found = new Map<string, CallState>();
  let start: Record<string, never> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName: "MarginCalls", ExclusiveStartKey: start, ConsistentRead: true }),
    );
    for (const image of page.Items ?? []) {
      const item = fromImage(image);
      // Version 0: no transition, only the marks of account changes judged unchanged (engine.ts).
      if (Number(item.version) === 0) continue;
      found.set(String(item.accountId), JSON.parse(String(item.state)) as CallState);
    }
    start = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start);
  return found;
}

/** What the handlers' DynamoDB client did while counting: accounts read by the exact path, writes. */
const traffic = { on: false, exact: new Map<string, number>(), writes: 0, written: new Set<string>() };
const WRITES = new Set([
  "PutItemCommand",
  "BatchWriteItemCommand",
  "TransactWriteItemsCommand",
  "UpdateItemCommand",
  "DeleteItemCommand",
]);
/** Per fan-out page, from the worker's log line: accounts revalued exactly and accounts cleared. */
const pages = { revalued: 0, cleared: 0 };

function countTraffic(): void {
  runtime().dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as {
        TableName?: string;
        Key?: { line?: { S?: string } };
        ExpressionAttributeValues?: Record<string, { S?: string }>;
      };
      // The sweep's own pass record (one pass at a time) is bookkeeping, not a write about an account.
      const passRecord = input.Key?.line?.S === "SWEEP#PASS";
      if (traffic.on && context.commandName === "QueryCommand" && input.TableName === "Accounts") {
        const accountId = input.ExpressionAttributeValues?.[":id"]?.S ?? "?";
        traffic.exact.set(accountId, (traffic.exact.get(accountId) ?? 0) + 1);
      }
      // Parked records (an unvaluable account's attempts, in Quarantine) are bookkeeping too.
      const parkedRecord = input.TableName === "Quarantine";
      if (traffic.on && !passRecord && !parkedRecord && WRITES.has(context.commandName ?? "")) {
        traffic.writes += 1;
        for (const id of JSON.stringify(args.input).match(/ACC-\d+/g) ?? []) traffic.written.add(id);
      }
      return next(args);
    },
    { step: "initialize", name: "countSweepTraffic" },
  );
  const logger = runtime().logger;
  const info = logger.info.bind(logger);
  logger.info = ((message: string, ...extra: unknown[]) => {
    const fields = extra[0] as { revalued?: number; cleared?: number } | undefined;
    if (traffic.on && message === "fan-out page") {
      pages.revalued += fields?.revalued ?? 0;
      pages.cleared += fields?.cleared ?? 0;
    }
    info(message, ...(extra as []));
  }) as typeof logger.info;
}

let p: Pipeline;
let exact: TestDatabase;
let accounts: DemoAccount[];
let alwaysExact: string[];

async function sweepThroughHandlers(id: string): Promise<string> {
  traffic.exact.clear();
  traffic.written.clear();
  traffic.writes = 0;
  pages.revalued = 0;
  pages.cleared = 0;
  traffic.on = true;
  const sweep = await p.handler<Record<string, unknown>>("Sweep");
  await sweep({ id, time: p.now(), "detail-type": "Scheduled Event", source: "aws.events" });
  for (let polls = 0; polls < 10_000 && (await p.fanOut.pollOnce()) > 0; polls += 1);
  traffic.on = false;
  return `sweep:${p.now()}:${id}`;
}

beforeAll(async () => {
  p = await startPipeline(import.meta.url);
  exact = await testDatabase(import.meta.url, "exact");
  const policy = policyOf("policies.json", POLICY_ID);
  ({ accounts, alwaysExact } = book(policy));
  for (const [asset, value] of Object.entries(OPENING)) {
    for (const source of ["a", "b", "c"]) await p.put("Prices", price(asset, source, value, p.now()));
  }
  await writeAccounts(p.db.dynamodb, "Accounts", accounts);
  // Every account is revalued and indexed at the opening prices, by the AccountChanges handler.
  await p.drain();
  p.advance(30);
  // The drop, with no tick processed: the PriceTicks mapping is not polled again.
  for (const [asset, value] of Object.entries(DROPPED)) {
    for (const source of ["a", "b", "c"]) await p.put("Prices", price(asset, source, value, p.now()));
  }
  await copyTables(p.db.dynamodb, exact.dynamodb);
  // Small pages from here on: the runtime reads its settings again, on the test's clock.
  process.env[ENV.maxAccountsPerInvocation] = String(PAGE_ITEMS);
  resetRuntime();
  setClock(() => p.now());
  countTraffic();
}, 240_000);

afterAll(async () => {
  await p?.close();
});

describe("a sweep through the float screen", () => {
  it("decides every account of the book as the exact path does, revaluing only what the screen cannot clear", async () => {
    const eventId = await sweepThroughHandlers("sweep-screen-1");
    const sweptExactly = new Set(traffic.exact.keys());

    // The reference: revalueAccount on every account, one by one, on the copy, at the same time and event.
    const engine = { ...runtime(), dynamo: exact.dynamodb };
    for (const account of accounts) {
      await revalueAccount(engine, account.accountId, { type: "REVALUE", cause: "SWEEP", eventId }, p.now);
    }
    const [screened, reference] = await Promise.all([states(p.db.dynamodb), states(exact.dynamodb)]);
    expect(screened).toEqual(reference);

    // The book holds every kind of outcome.
    const statuses = [...reference.values()].map((state) => state.status);
    const healthy = accounts.length - statuses.filter((status) => status !== "HEALTHY").length;
    expect(statuses.filter((status) => status === "WARNING").length).toBeGreaterThan(5);
    expect(statuses.filter((status) => status === "CALLED").length).toBeGreaterThan(5);
    expect(healthy).toBeGreaterThan(accounts.length / 2);

    // Every account was swept once, by the screen or the exact path; the exact path read each at most once.
    expect(accounts.length).toBeGreaterThan(250);
    expect(pages.revalued + pages.cleared).toBe(accounts.length);
    expect(pages.revalued).toBe(sweptExactly.size);
    // (The unvaluable accounts are parked: the sweep retries them too, a second read.)
    expect(
      Math.max(...[...traffic.exact].filter(([id]) => !alwaysExact.includes(id)).map(([, n]) => n)),
    ).toBe(1);
    // The screen cleared most of the book: the exact path saw fewer than half of the accounts...
    expect(sweptExactly.size).toBeLessThan(accounts.length / 2);
    // ...and every account that changed, cannot be valued or is too large, or was written at all, is among them.
    for (const accountId of [...reference.keys(), ...alwaysExact]) expect(sweptExactly).toContain(accountId);
    for (const accountId of traffic.written) expect(sweptExactly).toContain(accountId);
  }, 240_000);

  it("sends exactly the accounts that are not HEALTHY to the exact path on the next sweep, and writes nothing", async () => {
    const before = await states(p.db.dynamodb);
    await sweepThroughHandlers("sweep-screen-2");
    const unsettled = [...before].filter(([, state]) => state.status !== "HEALTHY").map(([id]) => id);
    expect(unsettled.length).toBeGreaterThan(10);
    expect(new Set(traffic.exact.keys())).toEqual(new Set([...unsettled, ...alwaysExact]));
    expect(pages.cleared).toBe(accounts.length - unsettled.length - alwaysExact.length);
    expect(traffic.writes).toBe(0);
    expect(await states(p.db.dynamodb)).toEqual(before);
  }, 240_000);

  it("sends an account whose index entries are missing, a day old or crossed by its mark to the exact path, which rewrites them", async () => {
    const before = await states(p.db.dynamodb);
    const keysOf = async (accountId: string) =>
      (await p.query("TriggerIndex", "line", `ACCOUNT#${accountId}`))[0];
    const settled = accounts
      .map((account) => account.accountId)
      .filter((id) => !before.has(id) && !alwaysExact.includes(id));
    const [missing, late, crossed] = settled;
    if (!missing || !late || !crossed) throw new Error("too few healthy accounts");
    await p.db.dynamodb.send(
      new DeleteItemCommand({
        TableName: "TriggerIndex",
        Key: { line: { S: `ACCOUNT#${missing}` }, triggerKey: { S: "KEYS" } },
      }),
    );
    const nowSeconds = Math.floor(Date.parse(p.now()) / 1000);
    const lateKeys = await keysOf(late);
    await p.put("TriggerIndex", { ...lateKeys, refreshedAtEpochSeconds: nowSeconds - REFRESH_AFTER_SECONDS });
    // A DOWN entry above the mark: the price went through a line no tick announced.
    const crossedKeys = await keysOf(crossed);
    const entries = String(crossedKeys?.keys).split("\n");
    const holdsBtc = entries.some((entry) => entry.startsWith("BTC#"));
    const asset = holdsBtc ? "BTC" : "ETH";
    const planted = `${lineOf(asset, "DOWN", crossed)}|${encodePrice(dec("99999"))}#WARN#${crossed}`;
    await p.put("TriggerIndex", { ...crossedKeys, keys: [...entries, planted].sort().join("\n") });

    await sweepThroughHandlers("sweep-screen-3");
    const unsettled = [...before.keys()];
    expect(new Set(traffic.exact.keys())).toEqual(
      new Set([...unsettled, ...alwaysExact, missing, late, crossed]),
    );
    expect(traffic.written).toEqual(new Set([missing, late, crossed]));
    expect(await states(p.db.dynamodb)).toEqual(before);
    expect(await keysOf(missing)).toBeDefined();
    expect((await keysOf(late))?.refreshedAtEpochSeconds).toBe(nowSeconds);
    expect(String((await keysOf(crossed))?.keys).split("\n")).not.toContain(planted);
  }, 240_000);
});
