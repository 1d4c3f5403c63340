/** Timing, percentiles and heap sampling for the pipeline benchmarks. */

export const elapsedMs = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

export async function timed<T>(body: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await body();
  return { ms: elapsedMs(start), value };
}

/** The nearest-rank percentile (p in 0…100) of a sample. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

const collect = (globalThis as { gc?: () => void }).gc;

/**
 * The peak of heapUsed above its level before `body`, sampled every 2 ms while it runs (after a full
 * collection when node runs with --expose-gc). An approximation: a collection in the middle lowers it,
 * and a synchronous stretch longer than the interval is seen only at its end.
 */
export async function peakHeap<T>(body: () => Promise<T>): Promise<{ bytes: number; value: T }> {
  collect?.();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 2);
  try {
    const value = await body();
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    return { bytes: peak - base, value };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Tracks the largest per-invocation heap peak of a mapping, and the invocations and accounts it saw (the
 * accounts from a counter, such as the proxy's count of the handlers' account reads, or set by the caller).
 */
export class HeapTracker {
  peakBytes = 0;
  invocations = 0;
  accounts = 0;

  constructor(private readonly counter: () => number = () => 0) {}

  /** Runs one poll of a mapping under the sampler. */
  async poll(mapping: { pollOnce(): Promise<number> }): Promise<number> {
    const before = this.counter();
    const { bytes, value } = await peakHeap(() => mapping.pollOnce());
    if (value > 0) {
      this.peakBytes = Math.max(this.peakBytes, bytes);
      this.invocations += value;
      this.accounts += this.counter() - before;
    }
    return value;
  }
}

export const log = (text: string) => process.stderr.write(`${text}\n`);
