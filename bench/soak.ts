/**
 * `npm run soak [-- --accounts 100000 --minutes 5 --speed 1 --seed 7]`: the engine under sustained ticks
 * on a large book, through the local runtime (the deployed handlers with the template's settings, on
 * DynamoDB Local). It samples every 5 s what must stay bounded: each stream's and queue's backlog (the
 * records and messages waiting: the lag) and the memory of the engine's process and of DynamoDB Local, and
 * writes them to bench/results/soak.json and docs/reliability.md.
 *
 * The book (the demo's generator) is already in the Accounts table when the engine starts: written, whole
 * accounts per TransactWriteItems, before the tables' streams are enabled (LocalRuntime's `preload`), and
 * onboarded by the sweep's first pass (the fan-out worker's exact path, for every account without index
 * entries). Then the demo's market feed publishes every second for `minutes` while the sweep runs on its
 * schedule; then the ticks stop and the backlogs must drain.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parsePolicySet } from "../functions/domain/policy.ts";
import { generateBook, writeAccounts } from "../functions/local/demo/book.ts";
import { MarketFeed } from "../functions/local/demo/feed.ts";
import { OPENING } from "../functions/local/demo/market.ts";
import { DEMO_CONTEXT } from "../functions/local/demo/run.ts";
import { templatePolicyDocuments } from "../functions/local/policy-bootstrap.ts";
import { LocalRuntime } from "../functions/local/runtime.ts";
import { formatWritten } from "./results.ts";
import { renderReliability, type SoakResult, type SoakSample } from "./soak-report.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SAMPLE_MS = 5_000;

const { values } = parseArgs({
  options: {
    accounts: { type: "string", default: "100000" },
    minutes: { type: "string", default: "5" },
    speed: { type: "string", default: "1" },
    seed: { type: "string", default: "7" },
    "drain-timeout": { type: "string", default: "600" },
  },
});
const accounts = Number(values.accounts);
const minutes = Number(values.minutes);
const speed = Number(values.speed);
const seed = Number(values.seed);

function jvmRssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((text) => text.startsWith("VmRSS:"));
    return line ? Math.round(Number(line.replace(/\D+/g, "")) / 1024) : null;
  } catch {
    return null;
  }
}

/** A queued message's `type` (the fan-out's SWEEP_SEGMENT, ACCOUNTS...), or "message" when it has none. */
function messageType(body: string): string {
  try {
    const type = (JSON.parse(body) as { type?: unknown }).type;
    return typeof type === "string" ? type : "message";
  } catch {
    return "message";
  }
}

/**
 * Waits until what the ticks caused is done: every stream read to its end and every queue empty but for the
 * sweep's own pass (SWEEP_SEGMENT pages), which the schedule keeps running: on a book whose pass takes longer
 * than the schedule's minute, the next pass starts as the last one ends, and a queue that must be empty
 * would never be. Five quiet checks 200 ms apart, as LocalRuntime.settle.
 */
async function drainedOfTicks(timeoutMs: number): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  let quiet = 0;
  while (Date.now() < deadlineMs) {
    let pending = 0;
    for (const mapping of runtime.streamMappings.values())
      pending += mapping.backlog() + mapping.reader.lastFetched;
    for (const mapping of runtime.queueMappings.values()) {
      for (const message of runtime.stub.queue(mapping.queueUrl).messages) {
        if (messageType(message.body) !== "SWEEP_SEGMENT") pending += 1;
      }
    }
    quiet = pending === 0 ? quiet + 1 : 0;
    if (quiet >= 5) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

const log = (line: string) => console.log(`[soak] ${line}`);
const startedMs = Date.now();
const samples: SoakSample[] = [];
let phase: SoakSample["phase"] = "indexing";

// The book is there before the engine is deployed: written while the tables have no streams yet, so the
// sweep's first pass onboards it (the fan-out worker's exact path for every account without index entries).
// Onboarding a book one stream record at a time would measure onboarding (about 55 accounts a second
// here), not the steady state; and DynamoDB Local would then charge every later Prices and Outbox request
// for the book's stream records (functions/local/local-tables.ts).
const start = new Date().toISOString();
let writeSeconds = 0;
const runtime = await LocalRuntime.start({
  speed,
  start,
  context: { ...DEMO_CONTEXT, sweepRateMinutes: "1" },
  outputDir: join(ROOT, ".local", "soak"),
  log,
  idlePollMs: 100,
  preload: async (dynamo, template) => {
    const [entry] = parsePolicySet(
      JSON.parse(templatePolicyDocuments(template)),
      "the template's policy set",
    ).values();
    if (!entry) throw new Error("the soak's template has no policy");
    const { policy } = entry;
    log(`writing ${accounts.toLocaleString("en-US")} accounts...`);
    const book = generateBook(accounts, seed, policy, OPENING, policy.policyId, start);
    const writeStart = Date.now();
    await writeAccounts(dynamo, "Accounts", book);
    writeSeconds = (Date.now() - writeStart) / 1000;
  },
});
const timer = setInterval(() => {
  const memory = process.memoryUsage();
  samples.push({
    atSeconds: Math.round((Date.now() - startedMs) / 1000),
    phase,
    backlog: runtime.backlog(),
    heapUsedMb: Math.round(memory.heapUsed / 2 ** 20),
    rssMb: Math.round(memory.rss / 2 ** 20),
    dynamodbLocalRssMb: jvmRssMb(runtime.dynamodbLocal.pid),
  });
}, SAMPLE_MS);

try {
  const feed = new MarketFeed(runtime);
  await feed.publish();
  runtime.run();
  log("indexing the book through the sweep's first pass...");
  const indexStart = Date.now();
  await runtime.fireSchedule("Sweep");
  const indexed = await runtime.settle(3_600_000);
  const indexSeconds = (Date.now() - indexStart) / 1000;
  log(`indexed in ${indexSeconds.toFixed(0)} s (${indexed ? "settled" : "not settled"})`);

  phase = "ticks";
  // Heap figures after a full collection (npm run soak passes --expose-gc): what is live, not garbage.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapAtTicks = process.memoryUsage().heapUsed;
  feed.startScenario();
  const ticksUntil = Date.now() + minutes * 60_000;
  let ticks = 0;
  while (Date.now() < ticksUntil) {
    const next = Date.now() + 1_000;
    await feed.publish();
    ticks += 1;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
  }
  phase = "drain";
  log(`${ticks} ticks published; draining...`);
  const drainStart = Date.now();
  const drained = await drainedOfTicks(Number(values["drain-timeout"]) * 1000);
  const drainSeconds = (Date.now() - drainStart) / 1000;
  clearInterval(timer);
  gc?.();

  const result: SoakResult = {
    ranAt: new Date().toISOString(),
    node: process.version,
    accounts,
    minutes,
    speed,
    seed,
    writeSeconds,
    indexSeconds,
    indexed,
    ticks,
    drained,
    drainSeconds,
    heapAtTicksMb: Math.round(heapAtTicks / 2 ** 20),
    heapAtEndMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    published: runtime.stub.published.length,
    events: runtime.stub.events.length,
    leftInQueues: Object.fromEntries(
      [...runtime.queueMappings].map(([name, mapping]) => {
        const counts: Record<string, number> = {};
        for (const message of runtime.stub.queue(mapping.queueUrl).messages) {
          const kind = `${messageType(message.body)} ${message.state}`;
          counts[kind] = (counts[kind] ?? 0) + 1;
        }
        return [name, counts];
      }),
    ),
    samples,
  };
  mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
  writeFileSync(join(ROOT, "bench", "results", "soak.json"), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(ROOT, "docs", "reliability.md"), renderReliability(result));
  formatWritten([join(ROOT, "bench", "results", "soak.json"), join(ROOT, "docs", "reliability.md")]);
  log(
    `written bench/results/soak.json and docs/reliability.md (drained: ${drained}, ${drainSeconds.toFixed(0)} s)`,
  );
} finally {
  clearInterval(timer);
  await runtime.stop();
}
