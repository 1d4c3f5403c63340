/**
 * P1 of `npm run bench` (bench/run.ts): revalues generated books three ways in one single-threaded run and
 * prints a markdown table.
 *
 * (a) the exact decimal reference, done naively: valueAccount + sizeCall (+ ratioBelow for the warning
 *     line) per account, over the 100k mixed book and over the first 100k of the five-line book;
 * (b) the same formulas in plain float64, no bound and no recheck: the speed-of-light bound;
 * (c) the screen (functions/domain/screen.ts): float64 with a proven error bound, exact decimals for every
 *     account in breach or too close to call, over 1M five-line accounts and the 100k mixed book.
 *
 * Each timing is the median of several runs after warm-up runs (process.hrtime.bigint; the reference warms
 * up on 5,000 accounts and is run 3 times, the rest 2–3 times and 9 times). The screen's
 * decisions are checked against the reference on every account the reference was run on; `--verify-all`
 * also checks all 1M five-line accounts (slow: the reference does a few tens of thousands a second).
 */

import { dec } from "../functions/domain/money.ts";
import {
  callAmountOf,
  type Decision,
  exactDecision,
  prepareScreen,
  type ScreenResult,
  screenBook,
} from "../functions/domain/screen.ts";
import { BAND_NAMES, type GeneratedBook, generateBook } from "./book.ts";
import { type Figure, ratioGoal } from "./figures.ts";
import { floatDecisions } from "./float64.ts";

/** Book sizes: 1M five-line and 100k mixed accounts, the reference on 100k of each; smaller with --quick. */
export interface EngineSizes {
  readonly five: number;
  readonly mixed: number;
  readonly referenceFive: number;
  readonly verifyAll: boolean;
}

export const FULL_ENGINE_SIZES: EngineSizes = {
  five: 1_000_000,
  mixed: 100_000,
  referenceFive: 100_000,
  verifyAll: false,
};
const GOAL_MS_PER_MILLION = 250;
const GOAL_RATIO = 20;

const elapsedMs = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

interface Timing {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly runs: number;
}

function time(warmups: number, runs: number, run: () => void): Timing {
  for (let index = 0; index < warmups; index++) run();
  const samples: number[] = [];
  for (let index = 0; index < runs; index++) {
    const start = process.hrtime.bigint();
    run();
    samples.push(elapsedMs(start));
  }
  return { medianMs: median(samples), minMs: Math.min(...samples), maxMs: Math.max(...samples), runs };
}

const log = (text: string) => process.stderr.write(`${text}\n`);
const grouped = (value: number) => Math.round(value).toLocaleString("en-US");
const perSecond = (accounts: number, ms: number) => (accounts / ms) * 1000;
const rate = (accounts: number, ms: number) => {
  const value = perSecond(accounts, ms);
  return value >= 1e6 ? `${(value / 1e6).toFixed(2)} M/s` : `${(value / 1e3).toFixed(1)} k/s`;
};
const milliseconds = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const mebibytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

function generate(label: string, make: () => GeneratedBook): GeneratedBook {
  const start = process.hrtime.bigint();
  const generated = make();
  const counts = new Array<number>(BAND_NAMES.length).fill(0);
  for (const band of generated.bands) counts[band] = (counts[band] ?? 0) + 1;
  log(
    `generated ${label}: ${grouped(generated.book.size)} accounts, ${grouped(generated.lineCount)} lines ` +
      `in ${milliseconds(elapsedMs(start))}; bands ${BAND_NAMES.map((name, index) => `${name} ${counts[index]}`).join(", ")}`,
  );
  return generated;
}

/** The reference over accounts [0, count): timed (median of `runs`), and its decisions. */
function reference(generated: GeneratedBook, count: number, runs: number) {
  const { marks, policy } = generated;
  const accounts = generated.accounts(0, count);
  const warning = dec("1").plus(policy.warningCushion);
  let decisions: Decision[] = [];
  for (const account of accounts.slice(0, 5_000)) exactDecision(account, marks, policy, warning); // warm-up
  const timing = time(0, runs, () => {
    decisions = accounts.map((account) => exactDecision(account, marks, policy, warning));
  });
  return { timing, decisions };
}

/** Compares the screen with the reference on accounts [0, decisions.length); returns the mismatches. */
function mismatches(result: ScreenResult, decisions: readonly Decision[]): number {
  let wrong = 0;
  decisions.forEach((decision, index) => {
    if (result.state[index] !== decision.state || callAmountOf(result, index) !== decision.callAmount)
      wrong++;
  });
  return wrong;
}

function floatRun(generated: GeneratedBook) {
  const { book, marks, policy } = generated;
  const call = {
    restoreFactor: Number(policy.restoreBuffer.plus(1).toFixed()),
    threshold: Number(policy.threshold.toFixed()),
    minimumTransfer: Number(policy.minimumTransferAmount.toFixed()),
    unitsPerCurrency: 10 ** policy.currencyScale,
  };
  const state = new Uint8Array(book.size);
  const amount = new Float64Array(book.size);
  let breaches = 0;
  const timing = time(3, 9, () => {
    breaches = floatDecisions(book, prepareScreen(book, marks, policy), call, state, amount);
  });
  return { timing, breaches };
}

function screenRun(generated: GeneratedBook, runs: number) {
  const { book, marks, policy } = generated;
  let result: ScreenResult | undefined;
  const timing = time(2, runs, () => {
    result = screenBook(book, marks, policy);
  });
  if (!result) throw new Error("no screen run");
  return { timing, result };
}

interface Measured {
  readonly sizes: EngineSizes;
  readonly fiveFloat: ReturnType<typeof floatRun>;
  readonly mixedFloat: ReturnType<typeof floatRun>;
  readonly fiveScreen: ReturnType<typeof screenRun>;
  readonly mixedScreen: ReturnType<typeof screenRun>;
  readonly fiveReference: ReturnType<typeof reference>;
  readonly mixedReference: ReturnType<typeof reference>;
  readonly fiveWrong: number;
  readonly mixedWrong: number;
  readonly fullWrong: number | undefined;
  readonly screenMemory: NodeJS.MemoryUsage;
  readonly memory: NodeJS.MemoryUsage;
}

function verifyEvery(five: GeneratedBook, result: ScreenResult): number {
  log(`verifying all ${grouped(five.book.size)} five-line accounts against the reference …`);
  const { marks, policy } = five;
  const warning = dec("1").plus(policy.warningCushion);
  let wrong = 0;
  for (let index = 0; index < five.book.size; index++) {
    const decision = exactDecision(five.book.account(index), marks, policy, warning);
    if (result.state[index] !== decision.state || callAmountOf(result, index) !== decision.callAmount)
      wrong++;
  }
  return wrong;
}

function measure(sizes: EngineSizes): Measured {
  log(`node ${process.version}, ${process.arch}; one thread; medians of several runs after warm-up`);
  const five = generate("five-line book", () => generateBook({ size: sizes.five, seed: 2, lines: 5 }));
  const mixed = generate("mixed book", () => generateBook({ size: sizes.mixed, seed: 1, lines: "mixed" }));
  log("float64 (speed of light) …");
  const fiveFloat = floatRun(five);
  const mixedFloat = floatRun(mixed);
  log("screen with exact recheck …");
  const fiveScreen = screenRun(five, 9);
  const mixedScreen = screenRun(mixed, 9);
  const screenMemory = process.memoryUsage();
  log("decimal reference (valueAccount + sizeCall), the slow part …");
  const fiveReference = reference(five, sizes.referenceFive, 3);
  const mixedReference = reference(mixed, sizes.mixed, 3);
  return {
    sizes,
    fiveFloat,
    mixedFloat,
    fiveScreen,
    mixedScreen,
    fiveReference,
    mixedReference,
    fiveWrong: mismatches(fiveScreen.result, fiveReference.decisions),
    mixedWrong: mismatches(mixedScreen.result, mixedReference.decisions),
    fullWrong: sizes.verifyAll ? verifyEvery(five, fiveScreen.result) : undefined,
    screenMemory,
    memory: process.memoryUsage(),
  };
}

interface Row {
  readonly book: string;
  readonly method: string;
  readonly accounts: number;
  readonly timing: Timing;
  readonly floatMs: number;
  readonly decimalPerSecond: number;
  readonly rechecked: string;
}

const recheckText = (result: ScreenResult) => {
  const { total, byReason } = result.rechecked;
  return `${grouped(total)} (breach ${grouped(byReason.BREACH)}, near a line ${grouped(byReason.NEAR_LINE)}, tier floor ${grouped(byReason.TIER_FLOOR)})`;
};
const short = (count: number) => (count >= 1e6 ? `${count / 1e6}M` : `${count / 1e3}k`);

function rows(m: Measured): Row[] {
  const { five, mixed, referenceFive } = m.sizes;
  const fiveDecimal = perSecond(referenceFive, m.fiveReference.timing.medianMs);
  const mixedDecimal = perSecond(mixed, m.mixedReference.timing.medianMs);
  const fiveBook = {
    book: `${short(five)} × 5 lines`,
    floatMs: m.fiveFloat.timing.medianMs,
    decimalPerSecond: fiveDecimal,
  };
  const mixedBook = {
    book: `${short(mixed)} × 1–20 lines`,
    floatMs: m.mixedFloat.timing.medianMs,
    decimalPerSecond: mixedDecimal,
  };
  const speedOfLight = "float64, no bound (speed of light)";
  const screen = "**screen + exact recheck**";
  const decimal = "decimal reference (valueAccount + sizeCall)";
  return [
    { ...fiveBook, method: speedOfLight, accounts: five, timing: m.fiveFloat.timing, rechecked: "–" },
    {
      ...fiveBook,
      method: screen,
      accounts: five,
      timing: m.fiveScreen.timing,
      rechecked: recheckText(m.fiveScreen.result),
    },
    {
      ...fiveBook,
      book: `first ${short(referenceFive)} × 5 lines`,
      method: decimal,
      accounts: referenceFive,
      timing: m.fiveReference.timing,
      floatMs: (m.fiveFloat.timing.medianMs * referenceFive) / five,
      rechecked: "all",
    },
    { ...mixedBook, method: speedOfLight, accounts: mixed, timing: m.mixedFloat.timing, rechecked: "–" },
    {
      ...mixedBook,
      method: screen,
      accounts: mixed,
      timing: m.mixedScreen.timing,
      rechecked: recheckText(m.mixedScreen.result),
    },
    { ...mixedBook, method: decimal, accounts: mixed, timing: m.mixedReference.timing, rechecked: "all" },
  ];
}

function table(m: Measured): string[] {
  const lines = [
    "| Book | Method | Median (min–max, runs) | Accounts/s | × float64 time | × decimal speed | Exact rechecks |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const row of rows(m)) {
    const { medianMs, minMs, maxMs, runs } = row.timing;
    const ratioToFloat = medianMs / row.floatMs;
    const speedup = perSecond(row.accounts, medianMs) / row.decimalPerSecond;
    lines.push(
      `| ${row.book} | ${row.method} | ${milliseconds(medianMs)} (${milliseconds(minMs)}–${milliseconds(maxMs)}, ${runs}) ` +
        `| ${rate(row.accounts, medianMs)} | ${ratioToFloat.toFixed(1)}× | ${speedup.toFixed(speedup >= 10 ? 0 : 1)}× | ${row.rechecked} |`,
    );
  }
  return lines;
}

const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const identical = (wrong: number, count: number) =>
  wrong === 0 ? `identical on all ${grouped(count)}` : `${grouped(wrong)} of ${grouped(count)} DIFFER`;

function summary(m: Measured): string[] {
  const { five, mixed, referenceFive } = m.sizes;
  const screenMs = m.fiveScreen.timing.medianMs;
  const goalMs = (GOAL_MS_PER_MILLION * five) / 1e6;
  const ratio = screenMs / m.fiveFloat.timing.medianMs;
  return [
    `- Goal: ${short(five)} five-line accounts in ≤ ${goalMs} ms on one core: ${milliseconds(screenMs)}, ${verdict(screenMs <= goalMs)}; ` +
      `${ratio.toFixed(1)}× the float64 bound (goal ≤ ${GOAL_RATIO}×: ${verdict(ratio <= GOAL_RATIO)}).`,
    `- Decisions (state, call amount) against the decimal reference: five-line book ${identical(m.fiveWrong, referenceFive)}` +
      `${m.fullWrong === undefined ? " (run with --verify-all for the whole book)" : `, whole book: ${identical(m.fullWrong, five)}`}; ` +
      `mixed book ${identical(m.mixedWrong, mixed)}.`,
    `- Accounts in breach (float64 count): ${grouped(m.fiveFloat.breaches)} of ${short(five)} five-line, ${grouped(m.mixedFloat.breaches)} of ${short(mixed)} mixed; ` +
      "each one's call amount is computed in decimals.",
    `- Memory after the float and screen runs (both books generated): heap used ${mebibytes(m.screenMemory.heapUsed)}, ` +
      `typed arrays ${mebibytes(m.screenMemory.arrayBuffers)}, RSS ${mebibytes(m.screenMemory.rss)}; at the end, with ` +
      `the reference accounts built as decimals: heap used ${mebibytes(m.memory.heapUsed)}, RSS ${mebibytes(m.memory.rss)}.`,
    `- ${process.version}, ${process.arch}, one thread; each time is the median of the runs shown, after warm-up runs.`,
  ];
}

/**
 * Runs P1, prints its table, and returns its figures: the screen's time on the five-line book against the
 * float64 bound (goal ≤ 250 ms per million accounts and ≤ 20× the bound). Throws when a decision differs.
 */
export function engineBench(sizes: EngineSizes): Figure[] {
  const m = measure(sizes);
  process.stdout.write(`${["", ...table(m), "", ...summary(m), ""].join("\n")}\n`);
  if (m.fiveWrong || m.mixedWrong || m.fullWrong)
    throw new Error("the screen's decisions differ from the reference");
  const screenMs = m.fiveScreen.timing.medianMs;
  const base = {
    benchmark: `engine: ${short(sizes.five)} five-line accounts, screen + exact recheck, one core`,
    unit: "ms",
    measured: screenMs,
    reference: m.fiveFloat.timing.medianMs,
    referenceLabel: "float64, no error bound (speed of light)",
    notes: `decisions identical to the decimal reference on ${grouped(sizes.referenceFive)} + ${grouped(sizes.mixed)} accounts`,
  };
  // The time goal is for a million accounts: a small book's time says little about it.
  const full = sizes.five >= 1_000_000;
  const goalMs = (GOAL_MS_PER_MILLION * sizes.five) / 1e6;
  return [
    { ...ratioGoal({ ...base, id: "P1 ratio" }, GOAL_RATIO) },
    full
      ? { ...base, id: "P1 time", goal: `≤ ${goalMs} ms`, met: screenMs <= goalMs }
      : {
          ...base,
          id: "P1 time",
          goal: `≤ ${GOAL_MS_PER_MILLION} ms at 1M accounts (full run only)`,
          met: null,
        },
  ];
}
