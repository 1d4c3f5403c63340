/** The method section of docs/benchmarks.md, and what the benchmark does not measure. */

export const NOT_MEASURED: readonly string[] = [
  "Anything on AWS: network round trips, Lambda cold starts, Streams and SQS delivery delays, DynamoDB's " +
    "own latency. Everything here runs in one node process against DynamoDB Local through a counting proxy.",
  "Memory of OutboxRelay and Notifier (they handle notices, not accounts) and of the Sweep handler itself " +
    "(it only queues the segments; its pages are the FanOutWorker's).",
  "The cost on AWS (issue 11, item 6): not computed by the benchmark yet.",
];

export const METHOD: readonly string[] = [
  "## Method",
  "",
  "`npm run bench` (bench/run.ts) runs P1 in the node process, then starts DynamoDB Local, a counting HTTP",
  "proxy in front of it (bench/pipeline/proxy.ts) and the local runtime (functions/local/runtime.ts) with the",
  "template's handlers and mappings, pointed at the proxy, on a frozen clock. The benchmark polls the stream",
  "and queue mappings itself (`pollOnce`, as the runtime's pollers do). Every request goes through the proxy:",
  "the handlers', the stream readers' and the references', so each pays the same hop. The policy is the demo's",
  "with one price source per asset and two plain assets, LAT and BURST (bench/pipeline/policy.ts).",
  "`npm run bench -- --quick` runs everything at small sizes; its JSON goes to bench/results/quick.json and",
  "the docs are left alone.",
  "",
  "- **P1** (bench/revalue.ts): the float screen with exact rechecks over generated books, against plain",
  "  float64 with no error bound; decisions checked against the exact decimal reference.",
  "- **P2** (bench/pipeline/book-runs.ts): the demo's generated book, indexed by AccountChanges; BTC drops",
  "  30%; items read and written by the handlers (PriceTicks, then FanOutWorker until idle) per account whose",
  "  state changed, against a naive peer that reads every item and the state of every BTC holder (a parallel",
  "  Scan, as there is no index by asset, and BatchGetItem) and writes the same transactions.",
  "- **P3** (bench/pipeline/latency.ts): one account per repetition, each tick crossing only its lines; the",
  "  price PutItem, then PriceTicks deliveries until a consistent read of the state says CALLED. p50 and p99",
  "  are held against the median of the floor, measured alternately in a database of its own: the PutItem,",
  "  GetRecords until the record, one state GetItem and the handler's own TransactWriteItems of that",
  "  repetition (account renamed).",
  "- **P4** (bench/pipeline/burst.ts): N accounts called by one tick, PriceTicks and the FanOutWorker",
  "  continuations until idle, against the N captured TransactWriteItems sent one at a time to a fresh",
  "  database.",
  "- **P5** (bench/pipeline/writes.ts): items written by the handlers for a tick at the same price, a tick",
  "  that crosses no line, unchanged account items written again and a sweep, per revaluation; requests",
  "  for one transition (and through its notice) against the minimum: state, account and price reads and",
  "  one TransactWriteItems.",
  "- **P6** (bench/pipeline/book-runs.ts): the Sweep handler, then the FanOutWorker mapping drained by one",
  "  poller per segment, against a raw parallel Scan of the same table with as many segments.",
  "- **memory**: the largest rise of heapUsed during one invocation (node --expose-gc, a full collection",
  "  before it), beside the function's MemorySize: per 1,000 accounts where invocations take 200 accounts or",
  "  more on average, else per invocation. It counts garbage not yet collected, so it is an upper estimate",
  "  of what an invocation keeps.",
];
