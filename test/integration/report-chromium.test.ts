/**
 * The run report renders in a real browser: headless Chromium opens the written file offline, runs the
 * inline script, and `--dump-dom` gives back the DOM after DOMContentLoaded, from which the test reads each
 * chart's data-rendered / data-points and the body's data-error.
 *
 * Chromium comes from the Debian package (`chromium`, or CHROMIUM_BIN to point at another binary). Without
 * it the tests are skipped, unless REQUIRE_CHROMIUM=1, which turns the missing browser into a failure.
 */

import { type ChildProcess, spawn } from "node:child_process";
import {
  accessSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { seededRandom } from "../../functions/local/demo/book.ts";
import { MAX_TIMELINE_DOTS, type RunReportData, renderReport } from "../../functions/local/report.ts";

const MISSING = "Chromium is required: apt-get install chromium";
const RUN_TIMEOUT_MS = 45_000;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findChromium(): string | undefined {
  const override = process.env.CHROMIUM_BIN;
  if (override !== undefined) return executable(override) ? override : undefined;
  const onPath = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((dir) => dir !== "")
    .map((dir) => join(dir, "chromium"));
  return [...onPath, "/usr/bin/chromium"].find(executable);
}

const CHROMIUM = findChromium();
const REQUIRED = process.env.REQUIRE_CHROMIUM === "1";
if (CHROMIUM === undefined && !REQUIRED) console.warn(`report-chromium: skipped. ${MISSING}`);

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

// ---------------------------------------------------------------------------------------------------------
// Realistic run data: three assets crash and partly recover, ETH prices halt for a while, 500 accounts go
// through warnings, calls, cures and liquidations.

const INJECTED_ACCOUNT = "ACC-</script><script>document.body.dataset.error='injected'</script><!--x";

/** A seeded generator, so the data is the same on every run. */
const random = seededRandom;

const START = Date.parse("2026-03-02T14:00:00.000Z");
const STEP_MS = 30_000;
const STEPS = 240; // two hours
const at = (step: number): string => new Date(START + step * STEP_MS).toISOString();

/** The market's shape: flat, a crash between minutes 30 and 55, then a partial recovery. */
function shock(step: number): number {
  const minute = (step * STEP_MS) / 60_000;
  if (minute < 30) return 0;
  if (minute < 55) return (minute - 30) / 25;
  return Math.max(0.55, 1 - (minute - 55) / 120);
}

type Status = "HEALTHY" | "WARNING" | "CALLED" | "CURED" | "LIQUIDATING" | "LIQUIDATED" | "BAD_DEBT";

function realisticRun(): RunReportData {
  const rand = random(20260302);
  const assets = [
    { asset: "BTC", start: 64_250.5, depth: 0.24, decimals: 2 },
    { asset: "ETH", start: 3_412.75, depth: 0.31, decimals: 2 },
    { asset: "SOL", start: 148.3, depth: 0.42, decimals: 4 },
  ];
  const index: number[] = new Array(STEPS + 1).fill(0);
  const prices = assets.map(({ asset, start, depth, decimals }) => {
    let noise = 0;
    const points = [];
    for (let step = 0; step <= STEPS; step++) {
      noise = noise * 0.9 + (rand() - 0.5) * 0.01;
      const level = start * (1 - depth * shock(step)) * (1 + noise);
      index[step] = (index[step] ?? 0) + level / start / assets.length;
      points.push({ t: at(step), price: level.toFixed(decimals) });
    }
    return { asset, points };
  });
  const halts = [
    {
      asset: "ETH",
      from: at(84),
      to: at(102),
      reason: "sources diverging: 3.1% between the two freshest quotes",
    },
  ];

  const accounts = 500;
  const timeline: RunReportData["timeline"] = [
    { t: at(84), accountId: "ETH", kind: "HALT", detail: halts[0]?.reason ?? "" },
    { t: at(102), accountId: "ETH", kind: "RESUME", detail: "two fresh sources agree within 0.5%" },
  ];
  const status: Status[] = new Array(accounts).fill("HEALTHY");
  const ratio0 = Array.from({ length: accounts }, () => 1.08 + 2.6 * rand() ** 1.7);
  const ratio = [...ratio0];
  const cureAt: number[] = new Array(accounts).fill(-1);
  const deadline: number[] = new Array(accounts).fill(-1);
  const liquidatedAt: number[] = new Array(accounts).fill(-1);
  const willCure = ratio0.map(() => rand() < 0.5);
  const leverage = ratio0.map(() => 2 + 3 * rand());
  const states: RunReportData["states"] = [];
  const id = (n: number): string => `ACC-${String(n).padStart(6, "0")}`;

  for (let step = 0; step <= STEPS; step++) {
    const drop = 1 - (index[step] ?? 1);
    for (let n = 0; n < accounts; n++) {
      const s = status[n];
      if (s === "LIQUIDATED" || s === "BAD_DEBT") continue;
      const r = (ratio0[n] ?? 1) * Math.max(0.05, 1 - (leverage[n] ?? 2) * drop);
      ratio[n] = s === "CURED" ? Math.max(r, 1.3) : r;
      const now = ratio[n] ?? 1;
      if ((s === "HEALTHY" || s === "WARNING" || s === "CURED") && now < 1) {
        status[n] = "CALLED";
        deadline[n] = step + 20;
        cureAt[n] = willCure[n] ? step + 2 + Math.floor(rand() * 16) : -1;
        timeline.push({
          t: at(step),
          accountId: id(n),
          kind: "CALL",
          detail: `margin ratio ${now.toFixed(4)} below 1; deposit due in 10 minutes`,
        });
      } else if (s === "HEALTHY" && now < 1.1) {
        status[n] = "WARNING";
      } else if (s === "WARNING" && now >= 1.15) {
        status[n] = "HEALTHY";
      } else if (s === "CALLED" && step === cureAt[n]) {
        status[n] = "CURED";
        ratio[n] = Math.max(now, 1.3);
        timeline.push({
          t: at(step),
          accountId: id(n),
          kind: "CURED",
          detail: "deposit received, ratio restored",
        });
      } else if (s === "CALLED" && step >= (deadline[n] ?? 0)) {
        status[n] = "LIQUIDATING";
        liquidatedAt[n] = step + 2 + Math.floor(rand() * 8);
        timeline.push({
          t: at(step),
          accountId: id(n),
          kind: "LIQUIDATION",
          detail: "call not met by the deadline",
        });
      } else if (s === "LIQUIDATING" && step === liquidatedAt[n]) {
        const shortfall = rand() < 0.06;
        status[n] = shortfall ? "BAD_DEBT" : "LIQUIDATED";
        ratio[n] = shortfall ? 0 : 1.5 + rand();
        timeline.push({
          t: at(step),
          accountId: id(n),
          kind: shortfall ? "BAD_DEBT" : "LIQUIDATED",
          detail: shortfall
            ? `shortfall ${(rand() * 20_000).toFixed(2)} USD`
            : "positions closed, call settled",
        });
      }
    }
    if (step % 2 === 0) {
      const counts: Partial<Record<Status, number>> = {};
      for (const s of status) counts[s] = (counts[s] ?? 0) + 1;
      states.push({ t: at(step), counts });
    }
  }
  timeline.push({
    t: at(120),
    accountId: INJECTED_ACCOUNT,
    kind: "CALL",
    detail: "detail with <!-- a comment opener --> and </script> and </SCRIPT >",
  });

  const calls = timeline.filter((event) => event.kind === "CALL").length;
  return {
    title: "Market crash: 500 accounts, BTC/ETH/SOL",
    generatedAt: "2026-03-02T16:05:11.000Z",
    scenario: {
      name: "market-crash",
      description:
        "BTC, ETH and SOL fall 24%, 31% and 42% over 25 minutes, then recover about half. ETH quotes diverge " +
        "for nine minutes, halting its prices. Half the called borrowers deposit in time.",
      speed: 60,
      simulatedStart: at(0),
      simulatedEnd: at(STEPS),
    },
    book: { accounts, currency: "USD" },
    prices,
    halts,
    states,
    ratiosBefore: ratio0.map((r) => r.toFixed(4)),
    ratiosAfter: ratio.map((r) => r.toFixed(4)),
    timeline,
    summary: [
      { label: "Accounts", value: String(accounts) },
      { label: "Margin calls issued", value: String(calls) },
      { label: "Cured", value: String(timeline.filter((event) => event.kind === "CURED").length) },
      { label: "Liquidated", value: String(timeline.filter((event) => event.kind === "LIQUIDATED").length) },
      { label: "Tick to call notice, p99", value: "412 ms" },
      { label: "Loss (bad debt)", value: "41,233.17 USD" },
    ],
  };
}

function emptyRun(): RunReportData {
  return {
    title: "Empty run",
    generatedAt: "2026-03-02T16:05:11.000Z",
    scenario: { name: "nothing", description: "", speed: 1, simulatedStart: at(0), simulatedEnd: at(0) },
    book: { accounts: 0, currency: "USD" },
    prices: [],
    halts: [],
    states: [],
    ratiosBefore: [],
    ratiosAfter: [],
    timeline: [],
    summary: [],
  };
}

/** More events than the timeline draws, all at one instant (a zero-width time axis). */
function crowdedRun(): RunReportData {
  const events = MAX_TIMELINE_DOTS + 537;
  return {
    ...emptyRun(),
    title: "Crowded run",
    prices: [{ asset: "BTC", points: [{ t: at(0), price: "64000.00" }] }],
    states: [{ t: at(0), counts: { CALLED: events } }],
    ratiosBefore: ["0.95", "not a number", "Infinity"],
    ratiosAfter: [""],
    timeline: Array.from({ length: events }, (_, n) => ({
      t: at(0),
      accountId: `ACC-${n}`,
      kind: "CALL" as const,
      detail: "",
    })),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Chromium

/** Live (not zombie) processes in a process group, from /proc; empty where /proc is not there. */
function liveGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const live: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") live.push(Number(entry));
  }
  return live;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // ESRCH: the group is already gone.
  }
}

interface Dump {
  readonly dom: string;
  readonly ms: number;
  readonly pgid: number;
}

/** Opens the file in headless Chromium (own process group, own profile) and returns the DOM it dumps. */
function dumpDom(chromium: string, file: string, workDir: string): Promise<Dump> {
  const profile = mkdtempSync(join(workDir, "profile-"));
  const started = performance.now();
  const child = spawn(
    chromium,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-extensions",
      `--user-data-dir=${profile}`,
      "--dump-dom",
      pathToFileURL(file).href,
    ],
    { detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const pgid = child.pid ?? -1;
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  return new Promise<Dump>((resolveDump, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, RUN_TIMEOUT_MS);
    // Chromium's helpers may outlive it (and hold the pipes): once it exits, the whole group goes.
    child.once("exit", () => killGroup(child));
    child.once("error", (err) => {
      clearTimeout(timer);
      killGroup(child);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      killGroup(child);
      rmSync(profile, { recursive: true, force: true });
      const ms = Math.round(performance.now() - started);
      if (timedOut) reject(new Error(`Chromium did not finish within ${RUN_TIMEOUT_MS} ms`));
      else if (code !== 0 || !stdout.includes("</html>"))
        reject(new Error(`Chromium exited with ${code ?? signal}: ${stderr.slice(-2000)}`));
      else resolveDump({ dom: stdout, ms, pgid });
    });
  });
}

async function render(data: RunReportData, name: string): Promise<Dump> {
  if (CHROMIUM === undefined) throw new Error(MISSING);
  const dir = tempDir("margin-call-report-");
  const file = join(dir, `${name}.html`);
  writeFileSync(file, renderReport(data), "utf8");
  const dump = await dumpDom(CHROMIUM, file, dir);
  console.log(`report-chromium: ${name} rendered by Chromium in ${dump.ms} ms`);
  // Nothing of Chromium is left running.
  await waitFor(() => liveGroupMembers(dump.pgid).length === 0, 5_000);
  expect(liveGroupMembers(dump.pgid)).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
  return dump;
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((wait) => setTimeout(wait, 50));
}

interface ChartState {
  readonly rendered: string | undefined;
  readonly points: number;
}

function attribute(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
}

function chart(dom: string, name: string): ChartState {
  const tag = new RegExp(`<div[^>]*\\sdata-chart="${name}"[^>]*>`).exec(dom)?.[0];
  if (tag === undefined) throw new Error(`no data-chart="${name}" container in the dumped DOM`);
  return { rendered: attribute(tag, "data-rendered"), points: Number(attribute(tag, "data-points")) };
}

/** The svg element inside a chart's container, as the browser left it. */
function chartSvg(dom: string, name: string): string {
  const svg = new RegExp(`<div[^>]*\\sdata-chart="${name}"[^>]*>\\s*(<svg[\\s\\S]*?</svg>)`).exec(dom)?.[1];
  if (svg === undefined) throw new Error(`no svg in the data-chart="${name}" container`);
  return svg;
}

interface DataMark {
  readonly seriesIndex: number;
  readonly dataIndex: number;
  readonly hover: string | undefined;
}

/** The marks ECharts drew for data items (each tagged with its series and data index), with their hover titles. */
function dataMarks(svg: string): DataMark[] {
  const marks = svg.matchAll(
    /<[a-z]+\s[^>]*\secmeta_series_index="(\d+)"[^>]*\secmeta_data_index="(\d+)"[^>]*>(?:<title>([^<]*)<\/title>)?/g,
  );
  return [...marks].map((mark) => ({
    seriesIndex: Number(mark[1]),
    dataIndex: Number(mark[2]),
    hover: mark[3],
  }));
}

function bodyTag(dom: string): string {
  const tag = /<body[^>]*>/.exec(dom)?.[0];
  if (tag === undefined) throw new Error("no body in the dumped DOM");
  return tag;
}

/** The DOM without its script elements: what the page shows, not the data it embeds. */
function visible(dom: string): string {
  return dom.replace(/<script[^>]*>[\s\S]*?<\/script>/g, "");
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

// ---------------------------------------------------------------------------------------------------------

describe("run report in headless Chromium", () => {
  it.runIf(CHROMIUM === undefined && REQUIRED)("has Chromium to render with (REQUIRE_CHROMIUM=1)", () => {
    throw new Error(MISSING);
  });

  describe.skipIf(CHROMIUM === undefined)(CHROMIUM === undefined ? `skipped: ${MISSING}` : "renders", () => {
    it("draws all four charts from a realistic run, with every mark accounted for", async () => {
      const data = realisticRun();
      expect(data.timeline.length).toBeGreaterThan(200);
      expect(data.timeline.length).toBeLessThanOrEqual(MAX_TIMELINE_DOTS);
      const { dom } = await render(data, "realistic");

      expect(attribute(bodyTag(dom), "data-error")).toBeUndefined();
      const pricePoints = data.prices.reduce((sum, series) => sum + series.points.length, 0);
      expect(chart(dom, "prices")).toEqual({ rendered: "true", points: pricePoints });
      expect(chart(dom, "states")).toEqual({ rendered: "true", points: data.states.length });
      expect(chart(dom, "ratios")).toEqual({
        rendered: "true",
        points: data.ratiosBefore.length + data.ratiosAfter.length,
      });
      expect(chart(dom, "timeline")).toEqual({ rendered: "true", points: data.timeline.length });
      // One dot per event in the timeline's svg, each its own data item, each with its hover title.
      const dots = dataMarks(chartSvg(dom, "timeline"));
      expect(dots).toHaveLength(data.timeline.length);
      expect(new Set(dots.map((dot) => dot.dataIndex)).size).toBe(data.timeline.length);
      expect(dots.filter((dot) => dot.hover === undefined)).toEqual([]);

      // Each chart is an svg with a title; the halt is shaded and labelled; the maintenance line is there.
      expect(count(dom, "<svg")).toBe(4);
      expect(dom.match(/<svg[^>]*>\s*<title id="svg-title-/g)).toHaveLength(4);
      expect(dom).toContain("prices halted: ETH");
      expect(dom).toContain(
        "<title>prices halted: ETH, 2026-03-02T14:42:00.000Z to 2026-03-02T14:51:00.000Z (sources diverging: 3.1% between the two freshest quotes)</title>",
      );
      expect(dom).toContain("1.0 maintenance");
      expect(visible(dom)).not.toContain("no data");
      expect(visible(dom)).not.toContain("showing the first");

      // The account id holding </script> stayed data: no extra script element, nothing ran, and it shows
      // (escaped) in its dot's hover title; the embedded JSON is intact.
      expect(count(dom, "<script")).toBe(3);
      expect(visible(dom)).not.toContain("data-error");
      expect(dom).toContain("ACC-&lt;/script&gt;&lt;script&gt;document.body.dataset.error=");
      const json = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(dom)?.[1];
      expect(JSON.parse(json ?? "null")).toEqual(data);
    });

    it("caps the timeline and says so, with a zero-width time axis and unreadable ratios", async () => {
      const data = crowdedRun();
      const { dom } = await render(data, "crowded");

      expect(attribute(bodyTag(dom), "data-error")).toBeUndefined();
      expect(chart(dom, "timeline")).toEqual({ rendered: "true", points: MAX_TIMELINE_DOTS });
      expect(dom).toContain(
        `showing the first 2,000 of ${(data.timeline.length).toLocaleString("en-US")} events`,
      );
      expect(chart(dom, "prices")).toEqual({ rendered: "true", points: 1 });
      expect(chart(dom, "states")).toEqual({ rendered: "true", points: 1 });
      expect(chart(dom, "ratios")).toEqual({ rendered: "true", points: 2 });
      expect(dom).toContain("2 ratios could not be read");
      expect(visible(dom)).not.toMatch(/NaN|Infinity|undefined/);
    });

    it("says 'no data' for every chart of an empty run, without an error", async () => {
      const { dom } = await render(emptyRun(), "empty");

      expect(attribute(bodyTag(dom), "data-error")).toBeUndefined();
      for (const name of ["prices", "states", "ratios", "timeline"]) {
        expect(chart(dom, name)).toEqual({ rendered: "true", points: 0 });
      }
      expect(count(dom, ">no data<")).toBe(4);
      expect(dom).toContain("No summary figures were recorded");
      expect(visible(dom)).not.toMatch(/NaN|Infinity|undefined/);
    });
  });
});
