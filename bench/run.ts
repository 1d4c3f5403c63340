/**
 * `npm run bench`: P1 (the engine, bench/revalue.ts), then the pipeline benchmarks P3, P5 and P4 on one
 * deployed pipeline and P6 and P2 on a second one with the generated book (bench/pipeline/), each figure
 * printed beside its reference from the same run. Writes bench/results/latest.json, docs/benchmarks.md,
 * docs/cost.md (bench/cost.ts) and the README's table.
 *
 *   npm run bench                      full sizes
 *   npm run bench -- --quick           small sizes, to prove it still runs; JSON to bench/results/quick.json
 *   npm run bench -- --republish       docs/benchmarks.md and the README's table again from latest.json
 *   options: --json PATH  --book N  --burst N  --repetitions N  --verify-all
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { usageRecorded } from "./cost.ts";
import { BENCHMARK_KEYS, type BenchmarkKey, type Figure } from "./figures.ts";
import { fanOut, seedBook, sweepVsScan } from "./pipeline/book-runs.ts";
import { burst } from "./pipeline/burst.ts";
import { withPipeline } from "./pipeline/harness.ts";
import { tickToCall } from "./pipeline/latency.ts";
import { memoryFigures } from "./pipeline/memory.ts";
import { log } from "./pipeline/stats.ts";
import { writesAndRequests } from "./pipeline/writes.ts";
import { publish, type Results, results, table } from "./results.ts";
import { engineBench, FULL_ENGINE_SIZES } from "./revalue.ts";

const argv = process.argv.slice(2);
const ROOT = new URL("../", import.meta.url);
const path = (relative: string) => fileURLToPath(new URL(relative, ROOT));
const docs = {
  benchmarks: path("docs/benchmarks.md"),
  cost: path("docs/cost.md"),
  readme: path("README.md"),
};
if (argv.includes("--republish")) {
  const latest = path("bench/results/latest.json");
  publish(JSON.parse(readFileSync(latest, "utf8")) as Results, latest, docs);
  process.exit(0);
}
const quick = argv.includes("--quick");
const option = (name: string): string | undefined => {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : undefined;
};
const count = (name: string, fallback: number) => {
  const text = option(name);
  if (text === undefined) return fallback;
  if (!/^[1-9]\d*$/.test(text)) throw new Error(`${name} takes a positive integer, not ${text}`);
  return Number(text);
};

const sizes = {
  five: quick ? 20_000 : FULL_ENGINE_SIZES.five,
  mixed: quick ? 5_000 : FULL_ENGINE_SIZES.mixed,
  referenceFive: quick ? 2_000 : FULL_ENGINE_SIZES.referenceFive,
  repetitions: count("--repetitions", quick ? 5 : 50),
  warmups: quick ? 1 : 5,
  burst: count("--burst", quick ? 500 : 10_000),
  book: count("--book", quick ? 500 : 100_000),
};

const figures = Object.fromEntries(BENCHMARK_KEYS.map((key) => [key, [] as Figure[]])) as Record<
  BenchmarkKey,
  Figure[]
>;
const started = Date.now();
const show = (list: Figure[]): Figure[] => {
  for (const figure of list) {
    log(
      `  ${figure.id}: ${figure.measured.toFixed(2)} ${figure.unit} against ${figure.reference.toFixed(2)} (${figure.referenceLabel}); goal ${figure.goal}: ${figure.met === null ? "–" : figure.met ? "met" : "NOT met"}`,
    );
  }
  return list;
};

const errors: string[] = [];
const json = option("--json") ?? path(quick ? "bench/results/quick.json" : "bench/results/latest.json");
const snapshot = () => ({
  ...results(quick ? "quick" : "full", (Date.now() - started) / 1000, sizes, figures, errors),
  usage: usageRecorded(),
});

/** Runs one part; a failure is recorded and the run goes on. The JSON is written after each part. */
async function part(name: string, body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`${name} failed: ${message}`);
    errors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  publish(snapshot(), json);
}

await part("P1", () => {
  log(`P1: the engine (${quick ? "quick" : "full"} sizes)`);
  figures.P1 = show(
    engineBench({
      five: sizes.five,
      mixed: sizes.mixed,
      referenceFive: sizes.referenceFive,
      verifyAll: argv.includes("--verify-all"),
    }),
  );
});

await part("P3, P5, P4", () =>
  withPipeline(log, async (pipeline) => {
    log(`P3: tick → call, ${sizes.repetitions} repetitions`);
    figures.P3 = show(await tickToCall(pipeline, sizes.repetitions, sizes.warmups));
    log("P5: writes and requests");
    figures.P5 = show(await writesAndRequests(pipeline, sizes.repetitions + sizes.warmups));
    log(`P4: a burst of ${sizes.burst} calls`);
    const result = await burst(pipeline, sizes.burst);
    figures.P4 = show(result.figures);
    figures.memory.push(...show(memoryFigures(pipeline, result.heap, "burst")));
  }),
);

await part("P6, P2", () =>
  withPipeline(log, async (pipeline) => {
    log(`P6, P2: the generated book of ${sizes.book} accounts, indexed by AccountChanges …`);
    const seeded = await seedBook(pipeline, sizes.book);
    log(`  indexed in ${(seeded.ms / 1000).toFixed(1)} s`);
    const sweep = await sweepVsScan(pipeline, sizes.book);
    figures.P6 = show([sweep.figure]);
    figures.P2 = show([await fanOut(pipeline, sizes.book)]);
    figures.memory.push(...show(memoryFigures(pipeline, { FanOutWorker: sweep.heap }, "sweep")));
  }),
);

const all = snapshot();
if (!quick) publish(all, json, docs);
process.stdout.write(
  `\n${table(all).join("\n")}\n\nwritten: ${json}${quick ? "" : ", docs/benchmarks.md, docs/cost.md, README.md"}\n`,
);
if (errors.length > 0) process.exitCode = 1;
