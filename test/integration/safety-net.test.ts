/**
 * The safety net under faults (issue 12): a seeded hostile book (test/support/chaos.ts) through the
 * deployed handlers on DynamoDB Local, during a crash, with DynamoDB throttling, transaction conflicts,
 * lost replies to writes that succeeded and latency injected into the handlers' client, several pollers
 * per queue at once and the mappings scheduled in a seeded order. Then an oracle checks the run from the
 * tables and the local endpoint's logs:
 *
 * 1. no stream record was given up on (every shard went on), and only hostile items were quarantined,
 *    each contract-breaking one exactly once;
 * 2. every account that can be valued and is in breach at the final marks is called (or beyond), and is
 *    in the trigger index: the pass that ran after the faults stopped reached it (the bound of
 *    docs/trigger-index.md section 5);
 * 3. every account that cannot be valued is parked with its reason; no account that can be is;
 * 4. every decision in the audit log replays, from its snapshot, to the version and status recorded;
 * 5. the delivery invariants: every liquidation request after its notice, nothing sent twice.
 *
 * It prints the seed, the faults injected, the hostile items and the violations (0). CHAOS_SEED replays a
 * run; CHAOS_ACCOUNTS sizes it.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAccountInputs } from "../../functions/adapters/account-inputs.ts";
import { toItem } from "../../functions/adapters/codec.ts";
import { PARKED_STATUS, parkedId } from "../../functions/adapters/parked.ts";
import { dec } from "../../functions/domain/money.ts";
import { evaluateSnapshot } from "../../functions/domain/snapshot.ts";
import { ratioBelow, valueAccount } from "../../functions/domain/valuation.ts";
import { runtime } from "../../functions/handlers/runtime.ts";
import { HOSTILE_KINDS, hostileBook, injectDynamoFaults, seeded } from "../support/chaos.ts";
import { deliveryViolations } from "../support/delivery-invariants.ts";
import { market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";

const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PLAIN_ACCOUNTS = Number(process.env.CHAOS_ACCOUNTS ?? 40);
const CRASH = ["60000.00", "56000.00", "53000.00", "51000.00", "49000.00", "47500.00"];

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url, "2026-11-24T12:00:00.000Z", { simulatedQueueClock: true });
});
afterAll(async () => {
  await p?.close();
});

/** Runs the mappings until idle, in an order drawn from `random`, the queues with two pollers at once. */
async function drainShuffled(random: () => number): Promise<void> {
  const steps: (() => Promise<number>)[] = [
    () => p.mappings.AccountChanges.pollOnce(),
    () => p.mappings.PriceTicks.pollOnce(),
    async () => (await Promise.all([p.fanOut.pollOnce(), p.fanOut.pollOnce()])).reduce((a, b) => a + b, 0),
    () => p.mappings.OutboxRelay.pollOnce(),
    async () => (await Promise.all([p.notices.pollOnce(), p.notices.pollOnce()])).reduce((a, b) => a + b, 0),
  ];
  for (let round = 0; round < 5_000; round += 1) {
    const order = steps.map((step) => ({ step, key: random() })).sort((a, b) => a.key - b.key);
    let invocations = 0;
    for (const { step } of order) invocations += await step();
    if (invocations === 0) return;
  }
  throw new Error("the pipeline did not settle");
}

/** A scheduled sweep run: EventBridge Scheduler retries a failed one (twice, as the template says). */
async function sweepRun(id: string): Promise<void> {
  const sweep = await p.handler<Record<string, unknown>>("Sweep");
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      await sweep({ time: p.now(), id });
      return;
    } catch {
      sweepFailures += 1;
    }
  }
}
let sweepFailures = 0;

describe(`the safety net under faults (CHAOS_SEED=${SEED})`, () => {
  it("keeps watching every account: the oracle finds no violation", async () => {
    const random = seeded(SEED);
    const book = hostileBook(SEED, PLAIN_ACCOUNTS, 4);
    let faulty = true;
    const faults = injectDynamoFaults(
      runtime().dynamo,
      random,
      { throttle: 0.02, conflict: 0.05, lostReply: 0.02, latencyMs: 20, kill: 0.005 },
      () => faulty,
    );

    await market(p, CRASH[0] ?? "60000.00");
    for (const account of book) for (const item of account.items) await p.put("Accounts", item);
    await drainShuffled(random);
    for (const [step, btc] of CRASH.entries()) {
      p.advance(60);
      await market(p, btc);
      await sweepRun(`chaos-${step}`);
      await drainShuffled(random);
    }
    // The faults stop; a pass starts once the running one finished or went stale, and runs to its end.
    faulty = false;
    for (let run = 0; run < 3; run += 1) {
      p.advance(run === 0 ? 660 : 60);
      await market(p, CRASH.at(-1) ?? "47500.00");
      await sweepRun(`after-${run}`);
      await drainShuffled(random);
    }

    // A notice whose claim's reply was lost waits out the claim's lease, which is wall-clock (60 s): the
    // run settles while the simulated clock moves on, for at most 90 s of real time.
    const settleUntil = Date.now() + 90_000;
    const unsettled = async () =>
      (await p.scan("Outbox")).filter((item) => item.kind === "NOTIFY" && item.outcome === undefined).length;
    while ((await unsettled()) > 0 && Date.now() < settleUntil) {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      p.advance(15);
      await drainShuffled(random);
    }

    const violations: string[] = [];
    const fail = (text: string) => violations.push(text);
    // 1. Nothing given up on; only hostile items quarantined, each breaking one once.
    for (const [name, records] of Object.entries(p.discarded)) {
      for (const record of records)
        fail(`${name} gave up on a record: ${JSON.stringify(record).slice(0, 200)}`);
    }
    const quarantine = await p.scan("Quarantine");
    const entries = quarantine.filter((entry) => entry.status === "OPEN");
    const quarantinedKeys = entries.map((entry) => {
      const keys = JSON.parse(String(entry.keys)) as Record<string, { S?: string }>;
      return `${keys.accountId?.S}|${keys.sk?.S}`;
    });
    const expectedKeys = book.flatMap((account) =>
      account.breaking.map((sk) => `${account.accountId}|${sk}`),
    );
    for (const key of expectedKeys) {
      const count = quarantinedKeys.filter((other) => other === key).length;
      if (count !== 1) fail(`${key} quarantined ${count} times, expected once`);
    }
    for (const key of quarantinedKeys)
      if (!expectedKeys.includes(key)) fail(`${key} quarantined, not hostile`);

    // 2 and 3. The final marks decide what each account must be.
    const engine = runtime();
    const parked = new Set(
      quarantine.filter((entry) => entry.status === PARKED_STATUS).map((entry) => String(entry.accountId)),
    );
    let breached = 0;
    for (const account of book) {
      const expectParked = account.kind !== "PLAIN" && HOSTILE_KINDS[account.kind] === "parked";
      if (expectParked !== parked.has(account.accountId)) {
        fail(
          `${account.accountId} (${account.kind}) ${parked.has(account.accountId) ? "parked" : "not parked"}`,
        );
      }
      if (expectParked) continue;
      const loaded = await loadAccountInputs(
        engine.dynamo,
        engine.tables,
        engine.policies,
        account.accountId,
        Date.parse(p.now()),
      );
      if (!loaded.ok) {
        fail(`${account.accountId}: cannot be loaded: ${loaded.reason}`);
        continue;
      }
      const { inputs } = loaded;
      const valuation = valueAccount(inputs.account, inputs.marks, inputs.policy.policy);
      const state = await p.callState(account.accountId);
      if (ratioBelow(valuation, dec("1"))) {
        breached += 1;
        if (["HEALTHY", "WARNING", undefined].includes(state?.status)) {
          fail(`${account.accountId} (${account.kind}) is in breach and ${state?.status ?? "has no state"}`);
        }
      }
      const keys = await engine.dynamo.send(
        new GetItemCommand({
          TableName: engine.tables.triggerIndex,
          Key: toItem({ line: `ACCOUNT#${account.accountId}`, triggerKey: "KEYS" }),
        }),
      );
      if (!keys.Item) fail(`${account.accountId} (${account.kind}) is not in the trigger index`);
    }
    for (const accountId of parked) {
      const record = quarantine.find((entry) => entry.quarantineId === parkedId(accountId));
      if (!String(record?.reason ?? "")) fail(`${accountId} parked without a reason`);
    }

    // 4. Every decision replays from its snapshot.
    const audit = await p.scan("AuditLog");
    let replayed = 0;
    for (const entry of audit.filter((item) => typeof item.snapshot === "string")) {
      const replay = evaluateSnapshot(JSON.parse(String(entry.snapshot)));
      replayed += 1;
      if (replay.step.next.version !== entry.version)
        fail(`${entry.accountId} v${entry.version} replays to v${replay.step.next.version}`);
      const to = replay.step.effects.find((effect) => effect.kind === "AUDIT");
      if (to?.kind === "AUDIT" && to.to !== entry.to)
        fail(`${entry.accountId} v${entry.version} replays to ${to.to}, recorded ${entry.to}`);
    }

    // 5. Delivery.
    for (const violation of deliveryViolations(await p.scan("Outbox"), {
      published: p.stub.published,
      puts: p.stub.events.filter((put) => put.detailType === "LiquidationRequested"),
    }))
      fail(violation);

    const hostileItems = book.filter((account) => account.kind !== "PLAIN").map((account) => account.kind);
    console.log(
      JSON.stringify({
        seed: SEED,
        accounts: book.length,
        hostile: Object.fromEntries(
          [...new Set(hostileItems)].map((kind) => [kind, hostileItems.filter((k) => k === kind).length]),
        ),
        faults,
        breached,
        parked: parked.size,
        quarantined: entries.length,
        decisionsReplayed: replayed,
        published: p.stub.published.length,
        sweepFailures,
        violations: violations.length,
        found: violations.slice(0, 20),
      }),
    );
    expect(faults.throttled + faults.conflicts + faults.lostReplies + faults.killed).toBeGreaterThan(0);
    expect(breached).toBeGreaterThan(0);
    expect(violations, `CHAOS_SEED=${SEED}`).toEqual([]);
  }, 400_000);
});
