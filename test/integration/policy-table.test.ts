/**
 * The Policies table on DynamoDB Local (docs/policies.md): a put validates before it writes and never
 * overwrites, an activation is a conditional write that a stale activator loses, a handler picks up a
 * newly activated version after its cache TTL with no redeploy (and records it on its decision), a policy
 * of 50 assets (far above Lambda's 4 KB environment) deploys through the bootstrap, and a table that cannot
 * be read leaves the last good set in use.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { toItem } from "../../functions/adapters/codec.ts";
import { PolicyCache } from "../../functions/adapters/policy-cache.ts";
import {
  activate,
  canonicalJson,
  documentHash,
  listPolicies,
  loadActivePolicies,
  PolicyStoreError,
  putPolicyVersion,
  readActiveSet,
  StaleActivationError,
  versionHash,
  versionKey,
} from "../../functions/adapters/policy-store.ts";
import { runPolicy } from "../../functions/cli/policy-commands.ts";
import { onPolicySetEvent } from "../../functions/handlers/policy-bootstrap.ts";
import { runtime, runtimeWithPolicies } from "../../functions/handlers/runtime.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { holding } from "../support/upstream.ts";

/** Seconds the functions keep a policy set in this file: short, so the test waits for a real expiry. */
const CACHE_SECONDS = 4;
const TABLE = "Policies";
const author = { at: "2026-11-24T12:00:00.000Z", by: "test" };

// biome-ignore lint/suspicious/noExplicitAny: a policy document is free-form JSON that the tests edit.
type Json = any;
const [base] = JSON.parse(
  readFileSync(new URL("../../lib/config/policies.json", import.meta.url), "utf8"),
) as Json[];
const withVersion = (version: number, edit: (document: Json) => void = () => {}): Json => {
  const document = structuredClone(base);
  document.version = version;
  edit(document);
  return document;
};

let p: Pipeline;
const dirs: string[] = [];

beforeAll(async () => {
  process.env.POLICY_CACHE_SECONDS = String(CACHE_SECONDS);
  p = await startPipeline(import.meta.url, "2026-11-24T12:00:00.000Z");
});
afterAll(async () => {
  delete process.env.POLICY_CACHE_SECONDS;
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await p?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function storedVersions(policyId: string): Promise<readonly number[]> {
  return (await listPolicies(p.db.dynamodb, TABLE)).versions.get(policyId) ?? [];
}

describe("the bootstrap", () => {
  it("deployed the stack's policy file as version 3, active, before any handler ran", async () => {
    const set = await readActiveSet(p.db.dynamodb, TABLE);
    expect(set.active[base.policyId]).toMatchObject({ version: base.version, sha256: documentHash(base) });
    expect(await storedVersions(base.policyId)).toEqual([3]);
    expect(runtime().policies.get(base.policyId)?.policy.version).toBe(3);
  });
});

describe("margin-call policy put", () => {
  it("refuses an invalid document with the JSON path and reason, exit 2, and writes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "policy-put-"));
    dirs.push(dir);
    const file = join(dir, "bad.json");
    const bad = withVersion(4, (d) => {
      d.call.exitBuffer = "0.5";
    });
    writeFileSync(file, JSON.stringify(bad));
    const errors: string[] = [];
    const spy = vi
      .spyOn(console, "error")
      .mockImplementation((line: unknown) => void errors.push(String(line)));
    try {
      expect(await runPolicy(["put", file])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(errors.join("\n")).toMatch(/^\$\.call\.exitBuffer: /m);
    expect(await storedVersions(base.policyId)).toEqual([3]);
  });
});

describe("versions", () => {
  it("are append-only: a version that is not new is refused, and of two writers of one version one wins", async () => {
    const rewrite = withVersion(3, (d) => {
      d.assets.BTC.haircut = "0.20";
    });
    await expect(putPolicyVersion(p.db.dynamodb, TABLE, rewrite, author)).rejects.toThrow(
      /version 3 is not new: version 3 exists/,
    );
    expect(await versionHash(p.db.dynamodb, TABLE, base.policyId, 3)).toBe(documentHash(base));

    const one = withVersion(4, (d) => {
      d.notices = { deliverWithinSeconds: 300 };
    });
    const other = withVersion(4, (d) => {
      d.notices = { deliverWithinSeconds: 900 };
    });
    const results = await Promise.allSettled([
      putPolicyVersion(p.db.dynamodb, TABLE, one, author),
      putPolicyVersion(p.db.dynamodb, TABLE, other, author),
    ]);
    const won = results.filter((result) => result.status === "fulfilled");
    expect(won).toHaveLength(1);
    const lost = results.find((result) => result.status === "rejected");
    expect(lost?.status === "rejected" && lost.reason).toBeInstanceOf(PolicyStoreError);
    const stored = await versionHash(p.db.dynamodb, TABLE, base.policyId, 4);
    expect(won[0]?.status === "fulfilled" && won[0].value.sha256).toBe(stored);
    expect(await storedVersions(base.policyId)).toEqual([3, 4]);
  });
});

describe("activation", () => {
  it("is conditional on the active set read: of two activators that read the same set, the second loses", async () => {
    const read = await readActiveSet(p.db.dynamodb, TABLE);
    const v4 = {
      policyId: base.policyId,
      version: 4,
      sha256: String(await versionHash(p.db.dynamodb, TABLE, base.policyId, 4)),
    };
    const v3 = { policyId: base.policyId, version: 3, sha256: documentHash(base) };
    await activate(p.db.dynamodb, TABLE, read, [v4], author);
    await expect(activate(p.db.dynamodb, TABLE, read, [v3], author)).rejects.toBeInstanceOf(
      StaleActivationError,
    );
    expect((await readActiveSet(p.db.dynamodb, TABLE)).active[base.policyId]?.version).toBe(4);
    // A version that is not stored cannot be activated.
    await expect(
      activate(
        p.db.dynamodb,
        TABLE,
        await readActiveSet(p.db.dynamodb, TABLE),
        [{ ...v4, version: 9 }],
        author,
      ),
    ).rejects.toThrow(/has no version 9/);
  });
});

/** Version 5: 50 assets (far above 4 KB), and BTC's requirement five times version 3's. */
function fiftyAssets(): Json {
  return withVersion(5, (d) => {
    d.assets.BTC.longTiers = [{ notionalFloor: "0", maintenanceRate: "0.25", initialRate: "0.30" }];
    for (let index = 0; Object.keys(d.assets).length < 50; index += 1) {
      d.assets[`X${String(index).padStart(2, "0")}`] = {
        quantityScale: 8,
        priceScale: 2,
        haircut: "0.50",
        longTiers: [{ notionalFloor: "0", maintenanceRate: "0.10", initialRate: "0.20" }],
      };
    }
  });
}

describe("a handler", () => {
  it("uses a newly deployed version after its cache TTL, without a redeploy, and records it on its decision", async () => {
    await market(p, "56000.00");
    await leveredAccount(p, "ACC-POLICY");
    await p.drain();
    expect((await p.callState("ACC-POLICY"))?.status ?? "HEALTHY").toBe("HEALTHY");

    // A fresh read of the set (version 4), then the stack deploys version 5 through its custom resource.
    await sleep(CACHE_SECONDS * 1000);
    expect((await runtimeWithPolicies()).policies.get(base.policyId)?.policy.version).toBe(4);
    const document = fiftyAssets();
    expect(Object.keys(document.assets)).toHaveLength(50);
    expect(JSON.stringify(document).length).toBeGreaterThan(4096);
    const response = await onPolicySetEvent(
      p.db.dynamodb,
      {
        RequestType: "Update",
        ServiceToken: "test",
        ResponseURL: "test",
        StackId: "test",
        RequestId: "update",
        LogicalResourceId: "PolicySet",
        PhysicalResourceId: `policy-set:${TABLE}`,
        ResourceType: "Custom::PolicySet",
        ResourceProperties: {
          ServiceToken: "test",
          PoliciesTable: TABLE,
          PolicyDocuments: JSON.stringify([document]),
        },
        OldResourceProperties: {
          ServiceToken: "test",
          PoliciesTable: TABLE,
          PolicyDocuments: JSON.stringify([base]),
        },
      },
      p.now(),
    );
    expect(response.Data).toEqual({ Written: "crypto-lending@5", Activated: "crypto-lending@5" });

    // Within the TTL the handlers still decide under version 4: the account's next change leaves it healthy.
    p.advance(5);
    await market(p, "55000.00");
    await p.put("Accounts", holding("ACC-POLICY", "ETH", "6.00000000", 2));
    await p.drain();
    expect((await p.callState("ACC-POLICY"))?.status ?? "HEALTHY").toBe("HEALTHY");
    expect(runtime().policies.get(base.policyId)?.policy.version).toBe(4);

    // After it, the account's next change is decided under version 5, which calls it, and says so.
    await sleep(CACHE_SECONDS * 1000);
    p.advance(5);
    await market(p, "55000.00");
    await p.put("Accounts", holding("ACC-POLICY", "ETH", "6.00000000", 3));
    await p.drain();
    expect((await p.callState("ACC-POLICY"))?.status).not.toBe("HEALTHY");
    const [item] = await p.query("MarginCalls", "accountId", "ACC-POLICY");
    expect(item?.policy).toBe("crypto-lending@5");
    expect(runtime().policies.get(base.policyId)?.policy.assets.size).toBe(50);
  });
});

describe("a Policies table that cannot be read", () => {
  /** A client on this file's database that fails every request while `broken.now` is true. */
  function breakableClient() {
    const broken = { now: false };
    const client = new DynamoDBClient({
      endpoint: p.db.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: p.db.accessKeyId, secretAccessKey: "local" },
      maxAttempts: 1,
    });
    client.middlewareStack.add(
      (next) => async (args) => {
        if (broken.now) throw Object.assign(new Error("connect ECONNREFUSED"), { name: "NetworkingError" });
        return next(args);
      },
      { step: "initialize", name: "breakable" },
    );
    return { client, broken };
  }

  it("leaves the last good set in use, and says so; with no good set yet, the invocation fails", async () => {
    const { client, broken } = breakableClient();
    let nowMs = 0;
    const stale: unknown[] = [];
    const cache = new PolicyCache({
      load: (current) => loadActivePolicies(client, TABLE, current),
      ttlMs: 60_000,
      nowMs: () => nowMs,
      onStale: (error) => stale.push(error),
    });
    await cache.refresh();
    const good = cache.policies;
    expect(good.get(base.policyId)?.policy.version).toBe(5);

    broken.now = true;
    nowMs += 61_000;
    await cache.refresh();
    expect(cache.policies).toBe(good);
    expect(stale).toHaveLength(1);

    const cold = new PolicyCache({
      load: (current) => loadActivePolicies(client, TABLE, current),
      ttlMs: 60_000,
      onStale: () => {},
    });
    await expect(cold.refresh()).rejects.toThrow(/no policy set: the Policies table could not be read/);
    expect(() => cold.policies).toThrow(PolicyStoreError);
    client.destroy();
  });
});

describe("an active version this code cannot read", () => {
  it("leaves the other policies in use, keeps the version held before, and names it", async () => {
    const held = await loadActivePolicies(p.db.dynamodb, TABLE);
    const version = (held.policies.get(base.policyId)?.policy.version ?? 0) + 1;
    // A version written for a newer schema (a section this code does not know), stored as the CLI of that
    // newer code would store it, and activated.
    const document = withVersion(version, (d) => {
      d.futureSection = { enabled: true };
    });
    const text = canonicalJson(document);
    await p.db.dynamodb.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: toItem({
          policyId: base.policyId,
          version: versionKey(version),
          policyVersion: version,
          sha256: documentHash(document),
          createdAt: author.at,
          createdBy: author.by,
          document: text,
        }),
      }),
    );
    const read = await readActiveSet(p.db.dynamodb, TABLE);
    await activate(
      p.db.dynamodb,
      TABLE,
      read,
      [{ policyId: base.policyId, version, sha256: documentHash(document) }],
      author,
    );

    const warm = await loadActivePolicies(p.db.dynamodb, TABLE, held);
    expect(warm.policies.get(base.policyId)).toBe(held.policies.get(base.policyId));
    expect(warm.unreadable).toEqual([
      expect.stringMatching(new RegExp(`^${base.policyId}@${version}: [\\s\\S]*futureSection`)),
    ]);
    // A cold start holds nothing for it: the policy is left out (its accounts are parked), nothing fails.
    const cold = await loadActivePolicies(p.db.dynamodb, TABLE);
    expect(cold.policies.has(base.policyId)).toBe(false);
    expect(cold.unreadable).toHaveLength(1);
  });
});
