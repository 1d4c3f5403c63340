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
  /** What each queue still held at the end, by message type and state (e.g. "SWEEP_SEGMENT inFlight": 4). */
  readonly leftInQueues?: Record<string, Record<string, number>>;
  readonly samples: readonly SoakSample[];
}

/** The backlog's name as the reader knows the mapping: the function, without CDK's hash. */
function shortName(name: string): string {
  const [prefix = name] = name.split("Function");
  return name.includes("Sqs") ? `${prefix} queue` : `${prefix} stream`;
}

const HEAP_GROWTH_BOUND = 1.5;

function leftText(result: SoakResult): string {
  const lines = Object.entries(result.leftInQueues ?? {})
    .filter(([, counts]) => Object.keys(counts).length > 0)
    .map(
      ([queue, counts]) =>
        `- ${shortName(queue)}: ${Object.entries(counts)
          .map(([kind, count]) => `${count} × ${kind}`)
          .join(", ")}`,
    );
  return lines.length === 0 ? "" : `\nWhat the queues still held at the end:\n\n${lines.join("\n")}\n`;
}

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
      rule: "every stream and queue drains after the ticks stop (but for the sweep's own pass, which runs on)",
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

The run: ${result.accounts.toLocaleString("en-US")} accounts (the demo's generator, seed ${result.seed}), written to the
Accounts table before its stream was enabled in ${result.writeSeconds.toFixed(0)} s and onboarded by the sweep's first pass in ${result.indexSeconds.toFixed(0)} s
(${result.indexed ? "settled" : "**not settled**"}); then the demo's market feed every second for ${result.minutes} minute(s) at
${result.speed}× simulated time (${result.ticks} ticks of three assets from three sources), the sweep on its
schedule (every simulated minute); then the ticks stop. ${result.published} notices and ${result.events} events went out.

## Bounded?

| rule | figure | met |
| --- | --- | --- |
${checks.join("\n")}
${leftText(result)}
## Over time

Backlog: records waiting in each stream and messages in each queue (the lag), sampled every 5 s, shown every
30 s. Heap and RSS: the engine's process; DynamoDB Local's RSS from /proc.

${table.join("\n")}

## How to run it

\`npm run soak\` (defaults: \`--accounts 100000 --minutes 5 --speed 1 --seed 7\`: about 40 minutes here,
most of it the first pass onboarding the book). It needs nothing but \`npm ci\`: DynamoDB Local is fetched
on first use, as for \`npm start\`. The raw samples are in \`bench/results/soak.json\`. The fault-injection
suite that checks correctness under faults at CI size is \`test/integration/safety-net.test.ts\` (in
\`npm test\`); this run checks that nothing grows without bound. The market moves at its own speed
(\`--speed 1\`): at 10× on 10,000 accounts (2026-11-30), the crash's calls alone (9,542 notices in five
minutes) outran what one process and the emulator on two cores can send, and the outbox's backlog grew to
4,933 records: more than one process and the emulator on two cores could send; on AWS each mapping
scales on its own (docs/scaling.md). DynamoDB Local's RSS is shown as measured: it grows through a run, also
while the engine has nothing to do but the sweep, and is the emulator's, not the engine's; the bound is on
the engine's heap.

**What DynamoDB Local costs here, and how the soak avoids it.** DynamoDB Local 1.25 charges every request
on a table with a stream for the stream records the other tables hold: on an otherwise idle emulator, a Query
on an empty stream-enabled table took 11.7 ms beside 10,000 records of another table's stream and 37.8 ms
beside 100,000, where a table without a stream answered in 3 to 4 ms (measured 2026-11-30). A book written
through the Accounts stream (five records an account) therefore slowed every later Prices and Outbox request
of the run: the first soaks here, which wrote their book that way, onboarded 2,000 accounts at 50 a second,
20,000 at 10.6 and 100,000 at 1.8, and blamed the parallel Scan, wrongly (its pages cost the same at 20,000
and 300,000 items). The soak now writes its book before the streams are enabled (LocalRuntime's
\`preload\`), as a deployment onto a book that is already there finds it; DynamoDB does not charge for
other tables' streams at all.
`;
}
