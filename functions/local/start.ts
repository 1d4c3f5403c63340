/**
 * `npm start`: the engine on this machine, with no AWS account. By default, the market-crash demo; with
 * --engine-only, the engine alone, reacting to whatever upstream writes (for example with
 * `npx margin-call local ...` from a second terminal).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runDemo } from "./demo/run.ts";
import { DynamoDbLocalSetupError } from "./dynamodb-local.ts";
import { LocalRuntime } from "./runtime.ts";

const HELP = `npm start [-- options]

Runs the margin-call engine locally: DynamoDB Local with the tables of the synthesized CDK template,
and the deployed handlers driven by its streams, queues and schedules, with the template's settings.

By default it plays the market-crash demo: it seeds a generated book, replays a 30-40% crash over a
compressed hour (with a stale-feed episode, recoveries, deposits and fills), shows progress live, and
ends with a summary and an HTML report in .local/report.html.

Options:
  --scenario NAME     the demo scenario (default: crash; the only one for now)
  --accounts N        borrowers in the generated book (default: 2000)
  --speed X           simulated seconds per real second during the scenario (default: 45)
  --minutes N         simulated minutes of the scenario (default: 60)
  --seed N            seed of the generated book (default: 7)
  --data-dir DIR      keep DynamoDB Local's data in DIR instead of in memory
  --engine-only       no demo: run the engine against what upstream writes, until Ctrl-C
  -h, --help          this text

Set DYNAMODB_ENDPOINT to use a DynamoDB Local that is already running.
Ctrl-C stops everything cleanly at any time.`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) {
    throw new UsageError(`--${name} must be a positive number, not ${value}`);
  }
  return Number(value);
}

class UsageError extends Error {}

let stopped: AbortSignal | undefined;

async function engineOnly(dataDir: string | undefined, log: (line: string) => void, signal: AbortSignal) {
  const runtime = await LocalRuntime.start({ ...(dataDir ? { dataDir } : {}), log });
  try {
    runtime.run();
    const session = {
      endpoint: runtime.dynamodbLocal.endpoint,
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      region: "us-east-1",
    };
    writeFileSync(join(runtime.outputDir, "session.json"), `${JSON.stringify(session, null, 2)}\n`);
    log(
      `The engine is running on DynamoDB Local at ${session.endpoint}${dataDir ? `, data in ${dataDir}` : ""}.`,
    );
    log("From a second terminal, write upstream records, for example:");
    log("  npx margin-call local profile ACC-1 --phone +12125550142 --email you@example.com");
    log("  npx margin-call local holding ACC-1 USD -58000.00");
    log("  npx margin-call local holding ACC-1 BTC 1.25");
    log("  npx margin-call local price BTC 52000.00");
    log("  npx margin-call local deposit ACC-1 2000.00 --settled");
    log("  npx margin-call local state ACC-1");
    log(
      `Notices are rendered to ${join(runtime.outputDir, "outbox")}, events to ${join(runtime.outputDir, "events.jsonl")}.`,
    );
    log("Ctrl-C stops it.");
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  } finally {
    await runtime.stop();
  }
}

/** The command line options of `npm start`. */
function parseOptions() {
  return parseArgs({
    options: {
      scenario: { type: "string", default: "crash" },
      accounts: { type: "string" },
      speed: { type: "string" },
      minutes: { type: "string" },
      seed: { type: "string" },
      "data-dir": { type: "string" },
      "engine-only": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
}

/** Ctrl-C (or SIGTERM) aborts the controller; a second one, or ten seconds later, ends the process. */
function stopOnSignals(controller: AbortController): void {
  let interrupts = 0;
  const stop = () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    console.log("\nStopping...");
    process.exitCode = 130;
    controller.abort();
    process.once("exit", () => console.error("Stopped."));
    // Whatever is still in flight gets a few seconds; then the process ends regardless.
    setTimeout(() => process.exit(130), 10_000).unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // Once stopping, the services go away under whatever is still in flight: say nothing of it.
  process.on("unhandledRejection", (error) => {
    if (controller.signal.aborted) return;
    console.error(error);
    process.exitCode = 1;
  });
}

/** On a terminal, one line rewritten in place; otherwise a line at most every five seconds. */
function progressPrinter(): (line: string) => void {
  const interactive = process.stdout.isTTY === true;
  let lastPrintedMs = 0;
  return (line) => {
    if (interactive) process.stdout.write(`\r\x1b[2K${line.slice(0, (process.stdout.columns ?? 200) - 1)}`);
    else if (Date.now() - lastPrintedMs > 5000) {
      lastPrintedMs = Date.now();
      console.log(line);
    }
  };
}

type DemoResult = Awaited<ReturnType<typeof runDemo>>;

function demoSummary(result: DemoResult, elapsedSeconds: string): string {
  return `
Demo finished in ${elapsedSeconds} s.

Accounts at the end:   ${Object.entries(result.counts)
    .map(([status, count]) => `${status} ${count}`)
    .join(", ")}
Calls issued:          ${result.notices.CALL ?? 0}   cured: ${result.notices.CURED ?? 0}   liquidation requests: ${result.liquidationRequests}
Notices sent:          ${Object.entries(result.notices)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(", ")} (each by SMS and email)
Loss taken:            ${result.loss} USD
Tick -> call recorded: p50 ${result.tickToCallMs.p50.toFixed(0)} ms, p99 ${result.tickToCallMs.p99.toFixed(0)} ms (${result.tickToCallMs.n} calls)
Call -> notice sent:   p50 ${result.callToNoticeMs.p50.toFixed(0)} ms, p99 ${result.callToNoticeMs.p99.toFixed(0)} ms (${result.callToNoticeMs.n} notices)
Peak backlog (crash):  ${
    Object.entries(result.peakBacklog)
      .map(([name, depth]) => `${name} ${depth}`)
      .join(", ") || "none"
  }
Liquidations on halted prices: ${result.haltedLiquidations}; every liquidation had its call first: ${result.accountsWithCallBeforeLiquidation ? "yes" : "NO"}
Liquidations out of attempts (no fill within the limit prices; operator action): ${result.exhaustedLiquidations}

Rendered notices:  ${join(result.outputDir, "outbox")}
Events:            ${join(result.outputDir, "events.jsonl")}
Report:            ${result.reportPath}`;
}

async function main(): Promise<void> {
  const values = parseOptions();
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (values.scenario !== "crash") throw new UsageError(`unknown scenario ${values.scenario}; try: crash`);
  const controller = new AbortController();
  stopOnSignals(controller);
  stopped = controller.signal;
  const log = (line: string) => console.log(line);
  const dataDir = values["data-dir"];
  if (values["engine-only"]) {
    await engineOnly(dataDir, log, controller.signal);
    return;
  }
  const progress = progressPrinter();
  const startedMs = Date.now();
  const result = await runDemo({
    accounts: Math.floor(positive("accounts", values.accounts, 2000)),
    speed: positive("speed", values.speed, 45),
    minutes: positive("minutes", values.minutes, 60),
    seed: Math.floor(positive("seed", values.seed, 7)),
    ...(dataDir ? { dataDir } : {}),
    log,
    progress,
    signal: controller.signal,
  });
  const elapsedSeconds = ((Date.now() - startedMs) / 1000).toFixed(0);
  console.log(demoSummary(result, elapsedSeconds));
}

main().catch((error: unknown) => {
  if (stopped?.aborted) return;
  if (error instanceof DynamoDbLocalSetupError || error instanceof UsageError) console.error(error.message);
  else console.error(error);
  process.exitCode = 1;
});
