/**
 * The Policies table (docs/policies.md): every policy document as an append-only version, and one item, the
 * active set, that names the version of each policy the engine uses. A version is validated before it is
 * written and never overwritten; an activation is one conditional write of the active set, so two
 * activators cannot interleave. The functions read the active set (one GetItem) and, when its revision
 * changed, its versions (one BatchGetItem), checking each document's hash, id and version as they read it.
 */
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  BatchGetItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { z } from "zod";
import { assert } from "../domain/assert.ts";
import { PolicyError, parsePolicy, parsePolicySet } from "../domain/policy.ts";
import { fromImage, toItem } from "./codec.ts";
import type { PolicyEntry } from "./settings.ts";

/** A document whose JSON text is longer than this is stored gzipped. */
export const GZIP_ABOVE_BYTES = 100_000;
/** The most a stored document may take (after gzip): a DynamoDB item holds at most 400 KB in all. */
const STORED_DOCUMENT_MAX_BYTES = 350_000;
/** Policies active at once, at most: their versions are read in one BatchGetItem (100 keys). */
export const MAX_ACTIVE_POLICIES = 100;
/** Attempts at the keys a BatchGetItem leaves unprocessed (throttling) before the read fails. */
const BATCH_GET_ATTEMPTS = 5;
/** Scan pages `policy list` reads at most. */
const LIST_PAGES_MAX = 100;

/** The active set's key. No version has it: a version's sort key starts with `V#`. */
const ACTIVE_SET_KEY = { policyId: "*", version: "ACTIVE" } as const;

export class PolicyStoreError extends Error {
  override readonly name: string = "PolicyStoreError";
}

/** The active set changed between its read and an activation: read it again and decide again. */
export class StaleActivationError extends PolicyStoreError {
  override readonly name = "StaleActivationError";
}

/** Who wrote a version or activated one, and when (ISO-8601 UTC). */
export interface Authorship {
  readonly at: string;
  readonly by: string;
}

/** A policy's active version, as the active set records it. */
export interface ActiveEntry {
  readonly version: number;
  /** SHA-256 of the version's canonical document: the activation checked it against the version item. */
  readonly sha256: string;
  readonly activatedAt: string;
  readonly activatedBy: string;
}

/** The active set: revision 0 when none was ever written. */
export interface ActiveSet {
  readonly revision: number;
  readonly active: Readonly<Record<string, ActiveEntry>>;
}

/** The policies in use, compiled, with the revision of the active set they came from. */
export interface ActivePolicies {
  readonly revision: number;
  readonly policies: ReadonlyMap<string, PolicyEntry>;
  /**
   * Active versions this code cannot use (`<policyId>@<version>: <reason>`): a document written for a newer
   * schema, or one whose content does not match its hash. Each such policy keeps the entry held before, if
   * any; without one it is left out, and its accounts are parked as unvaluable until it can be read.
   */
  readonly unreadable: readonly string[];
}

/** One version to activate: the activation checks that the version item exists with this hash. */
export interface Activation {
  readonly policyId: string;
  readonly version: number;
  readonly sha256: string;
}

const activeSetSchema = z.object({
  revision: z.int().min(1),
  active: z.record(
    z.string(),
    z.strictObject({
      version: z.int().min(1),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      activatedAt: z.string(),
      activatedBy: z.string(),
    }),
  ),
});

/** The sort key of a version: zero-padded, so versions sort by number. */
export function versionKey(version: number): string {
  assert(Number.isSafeInteger(version) && version >= 1 && version <= 9_999_999_999, `version ${version}`);
  return `V#${String(version).padStart(10, "0")}`;
}

/** JSON text with every object's keys sorted: the same document always gives the same text and hash. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

function sha256Of(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** The SHA-256 of a document's canonical JSON: what tells one content from another. */
export function documentHash(document: unknown): string {
  return sha256Of(canonicalJson(document));
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}

export async function readActiveSet(client: DynamoDBClient, table: string): Promise<ActiveSet> {
  const result = await client.send(
    new GetItemCommand({ TableName: table, Key: toItem(ACTIVE_SET_KEY), ConsistentRead: true }),
  );
  if (!result.Item) return { revision: 0, active: {} };
  const parsed = activeSetSchema.safeParse(fromImage(result.Item));
  if (!parsed.success)
    throw new PolicyStoreError(`the active set in ${table} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

/** The highest version of a policy in the table, or 0. */
async function latestVersion(client: DynamoDBClient, table: string, policyId: string): Promise<number> {
  const result = await client.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: "policyId = :id AND begins_with(version, :prefix)",
      ExpressionAttributeValues: toItem({ ":id": policyId, ":prefix": "V#" }),
      ProjectionExpression: "policyVersion",
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
    }),
  );
  const [latest] = (result.Items ?? []).map(fromImage);
  return latest ? Number(latest.policyVersion) : 0;
}

/** The hash of a stored version, or undefined when the policy has no such version. */
export async function versionHash(
  client: DynamoDBClient,
  table: string,
  policyId: string,
  version: number,
): Promise<string | undefined> {
  const result = await client.send(
    new GetItemCommand({
      TableName: table,
      Key: toItem({ policyId, version: versionKey(version) }),
      ProjectionExpression: "sha256",
      ConsistentRead: true,
    }),
  );
  return result.Item ? String(fromImage(result.Item).sha256) : undefined;
}

/**
 * Writes a document as a new version of its policy: validated first (PolicyError names every bad field),
 * refused unless its `version` is above every version the policy has, and never over an existing item.
 */
export async function putPolicyVersion(
  client: DynamoDBClient,
  table: string,
  document: unknown,
  author: Authorship,
): Promise<Activation> {
  const policy = parsePolicy(document);
  const text = canonicalJson(document);
  const sha256 = sha256Of(text);
  const stored =
    Buffer.byteLength(text, "utf8") > GZIP_ABOVE_BYTES
      ? { documentGzip: gzipSync(text) }
      : { document: text };
  const storedBytes = "document" in stored ? Buffer.byteLength(text, "utf8") : stored.documentGzip.length;
  if (storedBytes > STORED_DOCUMENT_MAX_BYTES) {
    throw new PolicyStoreError(
      `policy ${policy.policyId} version ${policy.version} takes ${storedBytes} bytes stored, above ${STORED_DOCUMENT_MAX_BYTES}`,
    );
  }
  const latest = await latestVersion(client, table, policy.policyId);
  if (policy.version <= latest) {
    throw new PolicyStoreError(
      `policy ${policy.policyId} version ${policy.version} is not new: version ${latest} exists; give the document a higher version`,
    );
  }
  try {
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: toItem({
          policyId: policy.policyId,
          version: versionKey(policy.version),
          policyVersion: policy.version,
          sha256,
          createdAt: author.at,
          createdBy: author.by,
          ...stored,
        }),
        // Versions are append-only: a version written by someone else meanwhile is not replaced.
        ConditionExpression: "attribute_not_exists(policyId)",
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    throw new PolicyStoreError(
      `policy ${policy.policyId} version ${policy.version} exists already: versions are never overwritten`,
    );
  }
  return { policyId: policy.policyId, version: policy.version, sha256 };
}

/**
 * Makes the given versions active, in one transaction: each version must exist with the hash given, and the
 * active set must still be the one `read` (same revision). Throws StaleActivationError when another
 * activation came first, PolicyStoreError when a version is missing or differs.
 */
export async function activate(
  client: DynamoDBClient,
  table: string,
  read: ActiveSet,
  activations: readonly Activation[],
  author: Authorship,
): Promise<ActiveSet> {
  assert(activations.length >= 1 && activations.length < 100, `activations: ${activations.length}`);
  const active: Record<string, ActiveEntry> = { ...read.active };
  for (const { policyId, version, sha256 } of activations) {
    active[policyId] = { version, sha256, activatedAt: author.at, activatedBy: author.by };
  }
  assert(Object.keys(active).length <= MAX_ACTIVE_POLICIES, `more than ${MAX_ACTIVE_POLICIES} policies`);
  const next: ActiveSet = { revision: read.revision + 1, active };
  try {
    await client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          ...activations.map(({ policyId, version, sha256 }) => ({
            ConditionCheck: {
              TableName: table,
              Key: toItem({ policyId, version: versionKey(version) }),
              ConditionExpression: "sha256 = :sha256",
              ExpressionAttributeValues: toItem({ ":sha256": sha256 }),
            },
          })),
          {
            Put: {
              TableName: table,
              Item: toItem({ ...ACTIVE_SET_KEY, ...next }),
              ...(read.revision === 0
                ? { ConditionExpression: "attribute_not_exists(policyId)" }
                : {
                    ConditionExpression: "revision = :revision",
                    ExpressionAttributeValues: toItem({ ":revision": read.revision }),
                  }),
            },
          },
        ],
      }),
    );
  } catch (error) {
    if (!(error instanceof Error) || error.name !== "TransactionCanceledException") throw error;
    const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
    const failed = reasons.findIndex((reason) => reason.Code === "ConditionalCheckFailed");
    const missing = activations[failed];
    if (missing) {
      throw new PolicyStoreError(
        `policy ${missing.policyId} has no version ${missing.version} with that content: put it first`,
      );
    }
    if (failed === activations.length) {
      throw new StaleActivationError(
        `the active policy set changed since it was read (revision ${read.revision}): read it again`,
      );
    }
    throw error;
  }
  return next;
}

/** Reads the versions the active set names, in one BatchGetItem, retrying only the unprocessed keys. */
async function readVersions(
  client: DynamoDBClient,
  table: string,
  set: ActiveSet,
): Promise<Map<string, Record<string, unknown>>> {
  let keys = Object.entries(set.active).map(([policyId, entry]) =>
    toItem({ policyId, version: versionKey(entry.version) }),
  );
  const items = new Map<string, Record<string, unknown>>();
  for (let attempt = 0; keys.length > 0; attempt += 1) {
    if (attempt === BATCH_GET_ATTEMPTS)
      throw new PolicyStoreError(`${table}: versions left unread after retries`);
    const result = await client.send(
      new BatchGetItemCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }),
    );
    for (const item of (result.Responses?.[table] ?? []).map(fromImage))
      items.set(String(item.policyId), item);
    keys = result.UnprocessedKeys?.[table]?.Keys ?? [];
  }
  return items;
}

/** A stored version as the engine uses it, after checking its hash and that it is what its key says. */
function entryOf(item: Record<string, unknown>, expectedSha256: string): PolicyEntry {
  const name = `policy ${String(item.policyId)} ${String(item.version)}`;
  const text =
    typeof item.document === "string"
      ? item.document
      : gunzipSync(item.documentGzip as Uint8Array).toString("utf8");
  const sha256 = sha256Of(text);
  if (sha256 !== item.sha256 || sha256 !== expectedSha256) {
    throw new PolicyStoreError(`${name}: its document does not match its hash`);
  }
  const document: unknown = JSON.parse(text);
  const policy = parsePolicy(document);
  if (policy.policyId !== item.policyId || versionKey(policy.version) !== item.version) {
    throw new PolicyStoreError(`${name}: the document says ${policy.policyId} version ${policy.version}`);
  }
  return { policy, document };
}

/**
 * The active policies. `current` is returned as it is when the active set's revision has not changed, so a
 * refresh that finds nothing new costs one small GetItem.
 */
export async function loadActivePolicies(
  client: DynamoDBClient,
  table: string,
  current?: ActivePolicies,
): Promise<ActivePolicies> {
  const set = await readActiveSet(client, table);
  if (set.revision === 0) {
    throw new PolicyStoreError(
      `${table} has no active policy set: deploy the stack, or margin-call policy activate`,
    );
  }
  if (current?.revision === set.revision) return current;
  const items = await readVersions(client, table, set);
  const policies = new Map<string, PolicyEntry>();
  const unreadable: string[] = [];
  for (const [policyId, entry] of Object.entries(set.active)) {
    const item = items.get(policyId);
    if (!item)
      throw new PolicyStoreError(`policy ${policyId}: its active version ${entry.version} is missing`);
    // One document this code cannot read must not take the others down with it: a deploy that activates
    // a document with a new field before the new code runs would otherwise fail every cold start.
    try {
      policies.set(policyId, entryOf(item, entry.sha256));
    } catch (error) {
      if (!(error instanceof PolicyError || error instanceof PolicyStoreError)) throw error;
      const kept = current?.policies.get(policyId);
      if (kept) policies.set(policyId, kept);
      unreadable.push(`${policyId}@${entry.version}: ${error.message}`);
    }
  }
  return { revision: set.revision, policies, unreadable };
}

/**
 * One stored version, active or not, checked against its own hash: what decided a step that recorded
 * `<policyId>@<version>` (versions are never overwritten, so the answer never changes). Throws
 * PolicyStoreError when it is not there.
 */
export async function readPolicyVersion(
  client: DynamoDBClient,
  table: string,
  policyId: string,
  version: number,
): Promise<PolicyEntry> {
  const result = await client.send(
    new GetItemCommand({
      TableName: table,
      Key: toItem({ policyId, version: versionKey(version) }),
      ConsistentRead: true,
    }),
  );
  if (!result.Item) throw new PolicyStoreError(`policy ${policyId} has no version ${version} in ${table}`);
  const item = fromImage(result.Item);
  return entryOf(item, String(item.sha256));
}

/** Every policy with its versions, ascending, and the active set: for `margin-call policy list`. */
export async function listPolicies(
  client: DynamoDBClient,
  table: string,
): Promise<{ readonly active: ActiveSet; readonly versions: ReadonlyMap<string, readonly number[]> }> {
  const versions = new Map<string, number[]>();
  let start: ScanCommand["input"]["ExclusiveStartKey"];
  for (let page = 0; page === 0 || start; page += 1) {
    if (page === LIST_PAGES_MAX)
      throw new PolicyStoreError(`${table}: more than ${LIST_PAGES_MAX} pages of versions`);
    const result = await client.send(
      new ScanCommand({
        TableName: table,
        ProjectionExpression: "policyId, policyVersion",
        FilterExpression: "begins_with(version, :prefix)",
        ExpressionAttributeValues: toItem({ ":prefix": "V#" }),
        ExclusiveStartKey: start,
      }),
    );
    for (const item of (result.Items ?? []).map(fromImage)) {
      const list = versions.get(String(item.policyId)) ?? [];
      list.push(Number(item.policyVersion));
      versions.set(String(item.policyId), list);
    }
    start = result.LastEvaluatedKey;
  }
  for (const list of versions.values()) list.sort((a, b) => a - b);
  return { active: await readActiveSet(client, table), versions };
}

/**
 * Deploys a policy set (the stack's bootstrap): validates every document first, then, for each one whose
 * content differs from its policy's active version, writes it as a new version (or finds that version
 * already stored with the same content) and activates all of them in one conditional write. Documents in
 * `unchanged` (the set the last deploy gave) are left alone, so a deploy never undoes an operator's later
 * activation of a policy the stack's file did not change. Returns what it wrote and activated.
 */
export async function deployPolicySet(
  client: DynamoDBClient,
  table: string,
  documents: unknown,
  author: Authorship,
  unchanged: readonly unknown[] = [],
): Promise<{ readonly written: readonly string[]; readonly activated: readonly string[] }> {
  const set = parsePolicySet(documents, "the stack's policy set");
  const previous = new Set(unchanged.map(canonicalJson));
  const read = await readActiveSet(client, table);
  const activations: Activation[] = [];
  const written: string[] = [];
  for (const [policyId, { policy, document }] of set) {
    const sha256 = documentHash(document);
    if (previous.has(canonicalJson(document)) || read.active[policyId]?.sha256 === sha256) continue;
    const stored = await versionHash(client, table, policyId, policy.version);
    if (stored === undefined) {
      await putPolicyVersion(client, table, document, author);
      written.push(`${policyId}@${policy.version}`);
    } else if (stored !== sha256) {
      throw new PolicyStoreError(
        `policy ${policyId} version ${policy.version} is stored with other content: give the changed document a higher version`,
      );
    }
    activations.push({ policyId, version: policy.version, sha256 });
  }
  if (activations.length > 0) await activate(client, table, read, activations, author);
  return { written, activated: activations.map((entry) => `${entry.policyId}@${entry.version}`) };
}
