/**
 * The active policy set as a function keeps it: read from the Policies table at the first invocation, read
 * again at the first invocation after `ttlMs`, so a newly activated version takes effect within a TTL and
 * without a redeploy. A read that fails keeps the last good set (and says so); with no good set yet, the
 * invocation fails, so its records are retried. See docs/policies.md.
 */
import { type ActivePolicies, PolicyStoreError } from "./policy-store.ts";
import type { PolicyEntry } from "./settings.ts";

/** How long a function keeps the active set when POLICY_CACHE_SECONDS is not set. */
export const DEFAULT_POLICY_CACHE_SECONDS = 60;

export interface PolicyCacheOptions {
  /** Reads the active set; given the one held, it may return that one when nothing changed. */
  readonly load: (current: ActivePolicies | undefined) => Promise<ActivePolicies>;
  readonly ttlMs: number;
  /** Told each failed read while a last good set is kept. */
  readonly onStale: (error: unknown, kept: ActivePolicies) => void;
  /** @default Date.now: the cache bounds reads of the table in real time, whatever the engine's clock. */
  readonly nowMs?: () => number;
}

export class PolicyCache {
  private current: ActivePolicies | undefined;
  private readAtMs = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;
  private readonly nowMs: () => number;

  constructor(private readonly options: PolicyCacheOptions) {
    this.nowMs = options.nowMs ?? Date.now;
  }

  /** The set in use. Throws until a refresh has read one. */
  get policies(): ReadonlyMap<string, PolicyEntry> {
    if (!this.current) throw new PolicyStoreError("no policy set read yet: await refresh() first");
    return this.current.policies;
  }

  /** Reads the table again when the set held is older than the TTL; concurrent callers share one read. */
  async refresh(): Promise<void> {
    if (this.current && this.nowMs() - this.readAtMs < this.options.ttlMs) return;
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    await this.reading;
  }

  private async read(): Promise<void> {
    try {
      this.current = await this.options.load(this.current);
    } catch (error) {
      if (!this.current) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new PolicyStoreError(`no policy set: the Policies table could not be read (${reason})`, {
          cause: error,
        });
      }
      this.options.onStale(error, this.current);
    }
    // A failed read is tried again after another TTL, not at every invocation while the table is down.
    this.readAtMs = this.nowMs();
  }
}
