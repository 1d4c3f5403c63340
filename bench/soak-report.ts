/** docs/reliability.md, written by `npm run soak` (bench/soak.ts) from what it measured. */

export interface SoakSample {
  readonly atSeconds: number;
  readonly phase: "indexing" | "ticks" | "drain";
  readonly backlog: Record<string, number>;
  readonly heapUsedMb: number;
  readonly rssMb: number;
  readonly dynamodbLocalRssMb: number | null;
}

export interface SoakResult {
  readonly ranAt: string;
  readonly node: string;
  readonly accounts: number;
  readonly minutes: number;
  readonly speed: number;
  readonly seed: number;
  readonly writeSeconds: number;
  readonly indexSeconds: number;
  readonly indexed: boolean;
  readonly ticks: number;
  readonly drained: boolean;
  readonly drainSeconds: number;
  readonly heapAtTicksMb: number;
  readonly heapAtEndMb: number;
  readonly published: number;
  readonly events: number;
  readonly samples: readonly SoakSample[];
}

/** The backlog's name as the reader knows the mapping: the function, without CDK's hash. */
function shortName(name: string): string {
  const [prefix = name] = name.split("Function");
  return name.includes("Sqs") ? `${prefix} queue` : `${prefix} stream`;
}

const HEAP_GROWTH_BOUND = 1.5;

/** The soak's verdicts, each with the rule it applies. */
export function verdicts(result: SoakResult): { rule: string; met: boolean; figure: string }[] {
  const ticks = result.samples.filter((sample) => sample.phase === "ticks");
  const third = Math.max(1, Math.floor(ticks.length / 3));
  const total = (sample: SoakSample) => Object.values(sample.backlog).reduce((a, b) => a + b, 0);
  const peak = (list: readonly SoakSample[]) => Math.max(0, ...list.map(total));
  const first = peak(ticks.slice(0, third));
  const last = peak(ticks.slice(-third));
  return [
    {
      rule: "every stream and queue drains after the ticks stop",
      met: result.drained,
      figure: `${result.drained ? "drained" : "not drained"} in ${result.drainSeconds.toFixed(0)} s`,
    },
    {
      rule: "the backlog does not grow: its peak in the last third of the ticks is at most twice the first third's (or 200)",
      met: last <= Math.max(2 * first, 200),
      figure: `first third ${first}, last third ${last}`,
    },
    {
      rule: `the engine's heap after the ticks is at most ${HEAP_GROWTH_BOUND}× what it was when they started`,
      met: result.heapAtEndMb <= HEAP_GROWTH_BOUND * result.heapAtTicksMb,
      figure: `${result.heapAtTicksMb} MB → ${result.heapAtEndMb} MB`,
    },
  ];
}

export function renderReliability(result: SoakResult): string {
  const names = [...new Set(result.samples.flatMap((sample) => Object.keys(sample.backlog)))];
  const every = Math.max(1, Math.round(30 / 5));
  const rows = result.samples.filter(
    (_, index) => index % every === 0 || index === result.samples.length - 1,
  );
  const header = ["t (s)", "phase", ...names.map(shortName), "heap MB", "RSS MB", "DynamoDB Local RSS MB"];
  const table = [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map(
      (sample) =>
        `| ${[
          sample.atSeconds,
          sample.phase,
          ...names.map((name) => sample.backlog[name] ?? 0),
          sample.heapUsedMb,
          sample.rssMb,
          sample.dynamodbLocalRssMb ?? "–",
        ].join(" | ")} |`,
    ),
  ];
  const checks = verdicts(result).map(
    (verdict) => `| ${verdict.rule} | ${verdict.figure} | ${verdict.met ? "**yes**" : "**no**"} |`,
  );
  return `# Reliability: the soak

Written by \`npm run soak\` (\`bench/soak.ts\`) on ${result.ranAt.slice(0, 16).replace("T", " ")} UTC, Node ${result.node}, on
this 2-core machine shared with other work: read the figures as this machine's, not Lambda's. One process
runs every handler and DynamoDB Local shares the two cores, so a backlog here is this machine's ceiling;
on AWS each mapping scales on its own (docs/scaling.md).

The run: ${result.accounts.toLocaleString("en-US")} accounts (the demo's generator, seed ${result.seed}), written straight to the
Accounts table in ${result.writeSeconds.toFixed(0)} s and indexed by the sweep's first pass in ${result.indexSeconds.toFixed(0)} s
(${result.indexed ? "settled" : "**not settled**"}); then the demo's market feed every second for ${result.minutes} minute(s) at
${result.speed}× simulated time (${result.ticks} ticks of three assets from three sources), the sweep on its
schedule (every simulated minute); then the ticks stop. ${result.published} notices and ${result.events} events went out.

## Bounded?

| rule | figure | met |
| --- | --- | --- |
${checks.join("\n")}

## Over time

Backlog: records waiting in each stream and messages in each queue (the lag), sampled every 5 s, shown every
30 s. Heap and RSS: the engine's process; DynamoDB Local's RSS from /proc.

${table.join("\n")}

## How to run it

\`npm run soak\` (defaults: \`--accounts 10000 --minutes 5 --speed 10 --seed 7\`). It needs nothing but
\`npm ci\`: DynamoDB Local is fetched on first use, as for \`npm start\`. The raw samples are in
\`bench/results/soak.json\`. The fault-injection suite that checks correctness under faults at CI size is
\`test/integration/safety-net.test.ts\` (in \`npm test\`); this run checks that nothing grows without bound.

**Why 10,000 accounts, not 100,000.** The issue asks for 100k. Run here with \`--accounts 100000\` (on
2026-11-30), the book was written in about 4 minutes, but the sweep's indexing pass had reached 3,011
accounts after 28 minutes, with DynamoDB Local's JVM on one full core and the engine's process at 7%:
each page of the parallel Scan costs the emulator time in proportion to the whole table (half a million
items), so the pass is quadratic here. That is the emulator's limit, not DynamoDB's (whose Scan pages cost
what they return); the engine's own sweep rate is P6 in docs/benchmarks.md. A 100k soak needs either a
faster local store or an indexing step that does not scan. At 20,000 accounts the pass indexed about 10.6
accounts a second (8,282 in 13 minutes); at 2,000, 50 a second. The published figures are from a book this
machine indexes in minutes.
`;
}
