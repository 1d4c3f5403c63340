/**
 * `npm run bench`: revalues generated books three ways in one single-threaded run and prints a markdown
 * table for the README.
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
import { floatDecisions } from "./float64.ts";

const FIVE_SIZE = 1_000_000;
const MIXED_SIZE = 100_000;
const REFERENCE_FIVE_SIZE = 100_000;
const GOAL_MS = 250;
const GOAL_RATIO = 20;
const verifyAll = process.argv.includes("--verify-all");

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

log(`node ${process.version}, ${process.arch}; one thread; medians of several runs after warm-up`);
const five = generate("five-line book", () => generateBook({ size: FIVE_SIZE, seed: 2, lines: 5 }));
const mixed = generate("mixed book", () => generateBook({ size: MIXED_SIZE, seed: 1, lines: "mixed" }));

log("float64 (speed of light) …");
const fiveFloat = floatRun(five);
const mixedFloat = floatRun(mixed);

log("screen with exact recheck …");
const fiveScreen = screenRun(five, 9);
const mixedScreen = screenRun(mixed, 9);
const screenMemory = process.memoryUsage();

log("decimal reference (valueAccount + sizeCall), the slow part …");
const fiveReference = reference(five, REFERENCE_FIVE_SIZE, 3);
const mixedReference = reference(mixed, MIXED_SIZE, 3);

const fiveWrong = mismatches(fiveScreen.result, fiveReference.decisions);
const mixedWrong = mismatches(mixedScreen.result, mixedReference.decisions);
let fullWrong: number | undefined;
if (verifyAll) {
  log("verifying all 1M five-line accounts against the reference …");
  const { marks, policy } = five;
  const warning = dec("1").plus(policy.warningCushion);
  fullWrong = 0;
  for (let index = 0; index < five.book.size; index++) {
    const decision = exactDecision(five.book.account(index), marks, policy, warning);
    const result = fiveScreen.result;
    if (result.state[index] !== decision.state || callAmountOf(result, index) !== decision.callAmount)
      fullWrong++;
  }
}
const memory = process.memoryUsage();

interface Row {
  readonly book: string;
  readonly method: string;
  readonly accounts: number;
  readonly timing: Timing;
  readonly floatMs: number;
  readonly decimalPerSecond: number;
  readonly rechecked: string;
}
const fivePerSecondDecimal = perSecond(REFERENCE_FIVE_SIZE, fiveReference.timing.medianMs);
const mixedPerSecondDecimal = perSecond(MIXED_SIZE, mixedReference.timing.medianMs);
const recheckText = (result: ScreenResult) => {
  const { total, byReason } = result.rechecked;
  return `${grouped(total)} (breach ${grouped(byReason.BREACH)}, near a line ${grouped(byReason.NEAR_LINE)}, tier floor ${grouped(byReason.TIER_FLOOR)})`;
};
const rows: Row[] = [
  {
    book: "1M × 5 lines",
    method: "float64, no bound (speed of light)",
    accounts: FIVE_SIZE,
    timing: fiveFloat.timing,
    floatMs: fiveFloat.timing.medianMs,
    decimalPerSecond: fivePerSecondDecimal,
    rechecked: "–",
  },
  {
    book: "1M × 5 lines",
    method: "**screen + exact recheck**",
    accounts: FIVE_SIZE,
    timing: fiveScreen.timing,
    floatMs: fiveFloat.timing.medianMs,
    decimalPerSecond: fivePerSecondDecimal,
    rechecked: recheckText(fiveScreen.result),
  },
  {
    book: "first 100k × 5 lines",
    method: "decimal reference (valueAccount + sizeCall)",
    accounts: REFERENCE_FIVE_SIZE,
    timing: fiveReference.timing,
    floatMs: (fiveFloat.timing.medianMs * REFERENCE_FIVE_SIZE) / FIVE_SIZE,
    decimalPerSecond: fivePerSecondDecimal,
    rechecked: "all",
  },
  {
    book: "100k × 1–20 lines",
    method: "float64, no bound (speed of light)",
    accounts: MIXED_SIZE,
    timing: mixedFloat.timing,
    floatMs: mixedFloat.timing.medianMs,
    decimalPerSecond: mixedPerSecondDecimal,
    rechecked: "–",
  },
  {
    book: "100k × 1–20 lines",
    method: "**screen + exact recheck**",
    accounts: MIXED_SIZE,
    timing: mixedScreen.timing,
    floatMs: mixedFloat.timing.medianMs,
    decimalPerSecond: mixedPerSecondDecimal,
    rechecked: recheckText(mixedScreen.result),
  },
  {
    book: "100k × 1–20 lines",
    method: "decimal reference (valueAccount + sizeCall)",
    accounts: MIXED_SIZE,
    timing: mixedReference.timing,
    floatMs: mixedFloat.timing.medianMs,
    decimalPerSecond: mixedPerSecondDecimal,
    rechecked: "all",
  },
];

const lines: string[] = [];
lines.push(
  "| Book | Method | Median (min–max, runs) | Accounts/s | × float64 time | × decimal speed | Exact rechecks |",
  "|---|---|---|---|---|---|---|",
);
for (const row of rows) {
  const { medianMs, minMs, maxMs, runs } = row.timing;
  const ratioToFloat = medianMs / row.floatMs;
  const speedup = perSecond(row.accounts, medianMs) / row.decimalPerSecond;
  lines.push(
    `| ${row.book} | ${row.method} | ${milliseconds(medianMs)} (${milliseconds(minMs)}–${milliseconds(maxMs)}, ${runs}) ` +
      `| ${rate(row.accounts, medianMs)} | ${ratioToFloat.toFixed(1)}× | ${speedup.toFixed(speedup >= 10 ? 0 : 1)}× | ${row.rechecked} |`,
  );
}

const screenMs = fiveScreen.timing.medianMs;
const ratio = screenMs / fiveFloat.timing.medianMs;
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const identical = (wrong: number, count: number) =>
  wrong === 0 ? `identical on all ${grouped(count)}` : `${grouped(wrong)} of ${grouped(count)} DIFFER`;
const output = [
  "",
  ...lines,
  "",
  `- Goal: 1M five-line accounts in ≤ ${GOAL_MS} ms on one core: ${milliseconds(screenMs)}, ${verdict(screenMs <= GOAL_MS)}; ` +
    `${ratio.toFixed(1)}× the float64 bound (goal ≤ ${GOAL_RATIO}×: ${verdict(ratio <= GOAL_RATIO)}).`,
  `- Decisions (state, call amount) against the decimal reference: five-line book ${identical(fiveWrong, REFERENCE_FIVE_SIZE)}` +
    `${fullWrong === undefined ? " (run with --verify-all for all 1M)" : `, all 1M: ${identical(fullWrong, FIVE_SIZE)}`}; ` +
    `mixed book ${identical(mixedWrong, MIXED_SIZE)}.`,
  `- Accounts in breach (float64 count): ${grouped(fiveFloat.breaches)} of 1M five-line, ${grouped(mixedFloat.breaches)} of 100k mixed; ` +
    "each one's call amount is computed in decimals.",
  `- Memory after the float and screen runs (both books generated): heap used ${mebibytes(screenMemory.heapUsed)}, ` +
    `typed arrays ${mebibytes(screenMemory.arrayBuffers)}, RSS ${mebibytes(screenMemory.rss)}; at the end, with ` +
    `200k reference accounts built as decimals: heap used ${mebibytes(memory.heapUsed)}, RSS ${mebibytes(memory.rss)}.`,
  `- ${process.version}, ${process.arch}, one thread; each time is the median of the runs shown, after warm-up runs.`,
  "",
];
process.stdout.write(`${output.join("\n")}\n`);
if (fiveWrong || mixedWrong || fullWrong) process.exitCode = 1;
