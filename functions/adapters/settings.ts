/**
 * The engine's runtime settings, read from the Lambda environment. The variable names live in
 * functions/domain/environment.ts, which the CDK stack (lib/) imports too; they are re-exported here for
 * the handlers.
 */
import { ENV, type EnvName } from "../domain/environment.ts";
import { type Policy, PolicySetError, parsePolicySet } from "../domain/policy.ts";

export { ENV, type EnvName };

export class SettingsError extends Error {
  override readonly name = "SettingsError";
}

export interface Tables {
  readonly accounts: string;
  readonly prices: string;
  readonly marginCalls: string;
  readonly triggerIndex: string;
  readonly outbox: string;
  readonly auditLog: string;
  readonly quarantine: string;
  readonly policies: string;
  readonly insuranceFund: string;
}

export type Environment = Readonly<Record<string, string | undefined>>;

export function required(env: Environment, name: EnvName): string {
  const value = env[name];
  if (value === undefined || value === "") throw new SettingsError(`environment variable ${name} is not set`);
  return value;
}

export function integer(env: Environment, name: EnvName, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (!/^[1-9]\d{0,6}$/.test(value))
    throw new SettingsError(`${name} must be a positive integer, not ${value}`);
  return Number(value);
}

export function tablesFrom(env: Environment): Tables {
  return {
    accounts: required(env, ENV.accountsTable),
    prices: required(env, ENV.pricesTable),
    marginCalls: required(env, ENV.marginCallsTable),
    triggerIndex: required(env, ENV.triggerIndexTable),
    outbox: required(env, ENV.outboxTable),
    auditLog: required(env, ENV.auditLogTable),
    quarantine: required(env, ENV.quarantineTable),
    policies: required(env, ENV.policiesTable),
    insuranceFund: required(env, ENV.insuranceFundTable),
  };
}

/** A compiled policy and the document it came from: the audit log records the document for replay. */
export interface PolicyEntry {
  readonly policy: Policy;
  readonly document: unknown;
}

/** Parses a policy set given as a JSON array. Throws SettingsError naming the policy and field on any bad document. */
export function parsePolicies(json: string): ReadonlyMap<string, PolicyEntry> {
  let documents: unknown;
  try {
    documents = JSON.parse(json);
  } catch {
    throw new SettingsError("the policy set is not valid JSON");
  }
  try {
    return parsePolicySet(documents, "the policy set");
  } catch (error) {
    if (error instanceof PolicySetError) throw new SettingsError(error.message);
    throw error;
  }
}
