/**
 * `margin-call policy ...`: an operator's changes to the margin policies, without a redeploy
 * (docs/policies.md).
 *
 *   put FILE                      validates one policy document and writes it as a new version (its
 *                                 `version` must be above every stored one); it is not active yet
 *   activate POLICY_ID VERSION    makes a stored version the active one: the functions use it within
 *                                 POLICY_CACHE_SECONDS (60 s by default)
 *   list                          each policy, its active version and its stored versions
 *
 * It talks to the table named by POLICIES_TABLE (the deployed stack's) with the default AWS credentials, or
 * to the local engine's session (.local/session.json).
 */
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  activate,
  listPolicies,
  PolicyStoreError,
  putPolicyVersion,
  readActiveSet,
  versionHash,
} from "../adapters/policy-store.ts";
import { PolicyError } from "../domain/policy.ts";
import { operatorClient } from "./operator-client.ts";

export const POLICY_USAGE = `usage: margin-call policy put FILE
       margin-call policy activate POLICY_ID VERSION
       margin-call policy list`;

/** A refusal the operator can act on: exit status 2, the message alone. */
export class PolicyCommandError extends Error {}

interface Target {
  readonly client: DynamoDBClient;
  readonly table: string;
}

/** `put`: one line per bad field (JSON path: reason) and status 2, or the new version. */
async function put(store: Target, file: string, author: { at: string; by: string }): Promise<number> {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new PolicyCommandError(`cannot read ${file} as JSON: ${(error as Error).message}`);
  }
  try {
    const { policyId, version, sha256 } = await putPolicyVersion(store.client, store.table, document, author);
    console.log(`put ${policyId} version ${version} (sha256 ${sha256}); not active yet:`);
    console.log(`  margin-call policy activate ${policyId} ${version}`);
    return 0;
  } catch (error) {
    if (error instanceof PolicyError) {
      for (const issue of error.issues) console.error(`${issue.path}: ${issue.message}`);
      return 2;
    }
    throw error;
  }
}

/** `activate`: one conditional write; refused when the version is missing or another activation came first. */
async function activateVersion(
  store: Target,
  policyId: string,
  versionText: string,
  author: { at: string; by: string },
): Promise<number> {
  if (!/^[1-9]\d{0,9}$/.test(versionText)) {
    throw new PolicyCommandError(`VERSION must be a positive integer, not ${versionText || "nothing"}`);
  }
  const version = Number(versionText);
  const read = await readActiveSet(store.client, store.table);
  const sha256 = await versionHash(store.client, store.table, policyId, version);
  if (sha256 === undefined) throw new PolicyCommandError(`policy ${policyId} has no version ${version}`);
  const was = read.active[policyId]?.version;
  await activate(store.client, store.table, read, [{ policyId, version, sha256 }], author);
  console.log(
    `${policyId} version ${version} is active (was ${was ?? "none"}); the functions use it within POLICY_CACHE_SECONDS (60 s by default)`,
  );
  return 0;
}

async function list(store: Target): Promise<number> {
  const { active, versions } = await listPolicies(store.client, store.table);
  for (const policyId of [...versions.keys()].sort()) {
    const entry = active.active[policyId];
    const current = entry
      ? `active ${entry.version} since ${entry.activatedAt} by ${entry.activatedBy}`
      : "inactive";
    console.log(`${policyId}  ${current}  versions ${(versions.get(policyId) ?? []).join(", ")}`);
  }
  return 0;
}

export async function runPolicy(args: string[], now = () => new Date().toISOString()): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const [command, first = "", second = ""] = positionals;
  const table = process.env.POLICIES_TABLE;
  const store: Target = {
    client: operatorClient(
      table !== undefined,
      () =>
        new PolicyCommandError("set POLICIES_TABLE for a deployed stack, or run npm start -- --engine-only"),
    ),
    table: table ?? "Policies",
  };
  const author = { at: now(), by: `cli:${userInfo().username}` };
  try {
    switch (command) {
      case "put":
        return await put(store, first, author);
      case "activate":
        return await activateVersion(store, first, second, author);
      case "list":
        return await list(store);
      default:
        console.error(POLICY_USAGE);
        return 2;
    }
  } catch (error) {
    // Not new, already stored, a stale activation: the store's refusals are the operator's to act on.
    if (error instanceof PolicyStoreError) throw new PolicyCommandError(error.message);
    throw error;
  } finally {
    store.client.destroy();
  }
}
