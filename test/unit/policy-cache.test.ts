/**
 * The functions' policy cache (functions/adapters/policy-cache.ts) on an injected clock: it reads again only
 * after its TTL, shares one read between concurrent invocations, keeps the last good set when a read fails,
 * and fails the invocation when it never had one. And the canonical text behind a document's hash.
 */
import { describe, expect, it } from "vitest";
import { PolicyCache } from "../../functions/adapters/policy-cache.ts";
import { type ActivePolicies, canonicalJson, versionKey } from "../../functions/adapters/policy-store.ts";

const set = (revision: number): ActivePolicies => ({ revision, policies: new Map(), unreadable: [] });

function cacheWith(loads: Array<ActivePolicies | Error>) {
  let nowMs = 0;
  let reads = 0;
  const stale: unknown[] = [];
  const cache = new PolicyCache({
    load: async () => {
      const next = loads[Math.min(reads, loads.length - 1)];
      reads += 1;
      if (next instanceof Error) throw next;
      if (!next) throw new Error("no load scripted");
      return next;
    },
    ttlMs: 60_000,
    nowMs: () => nowMs,
    onStale: (error) => stale.push(error),
  });
  return {
    cache,
    stale,
    reads: () => reads,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

describe("the policy cache", () => {
  it("reads once, again only after its TTL, and once for concurrent invocations", async () => {
    const first = set(1);
    const second = set(2);
    const { cache, reads, advance } = cacheWith([first, second]);
    await Promise.all([cache.refresh(), cache.refresh(), cache.refresh()]);
    expect(reads()).toBe(1);
    expect(cache.policies).toBe(first.policies);
    advance(59_999);
    await cache.refresh();
    expect(reads()).toBe(1);
    advance(1);
    await cache.refresh();
    expect(reads()).toBe(2);
    expect(cache.policies).toBe(second.policies);
  });

  it("keeps the last good set when a read fails, reports it, and tries again after another TTL", async () => {
    const good = set(1);
    const { cache, stale, reads, advance } = cacheWith([good, new Error("throttled"), set(2)]);
    await cache.refresh();
    advance(60_000);
    await cache.refresh();
    expect(cache.policies).toBe(good.policies);
    expect(stale).toEqual([new Error("throttled")]);
    await cache.refresh();
    expect(reads()).toBe(2);
    advance(60_000);
    await cache.refresh();
    expect(reads()).toBe(3);
  });

  it("fails the invocation when it never read a good set", async () => {
    const { cache } = cacheWith([new Error("AccessDenied")]);
    expect(() => cache.policies).toThrow(/no policy set read yet/);
    await expect(cache.refresh()).rejects.toThrow(
      /no policy set: the Policies table could not be read \(AccessDenied\)/,
    );
  });
});

describe("the stored form of a version", () => {
  it("hashes a document's content, not its key order or spacing", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: "x" } })).toBe(
      '{"a":{"c":"x","d":[2,{"e":0,"f":1}]},"b":1}',
    );
  });

  it("sorts versions by number under zero-padded keys, and refuses a version that is not a positive integer", () => {
    expect(versionKey(3)).toBe("V#0000000003");
    expect(versionKey(12) > versionKey(3)).toBe(true);
    expect(() => versionKey(0)).toThrow(/invariant/);
    expect(() => versionKey(1.5)).toThrow(/invariant/);
  });
});
