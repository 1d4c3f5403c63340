/**
 * The one place the CDK app is built, from CDK context: the CLI (bin/app.ts), the local runtime and the
 * tests all synthesize the same stack through it, with cdk-nag registered.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { App, type AppProps, Duration, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { PolicyDocument } from "../functions/domain/policy.ts";
import { MarginCallStack } from "./margin-call-stack.ts";

export const DEFAULT_STAGE = "dev";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const DEFAULT_POLICIES_FILE = "lib/config/policies.json";

export function stackNameFor(stage: string): string {
  return `MarginCall-${stage}`;
}

function context(app: App, key: string): string | undefined {
  const value = app.node.tryGetContext(key);
  return value === undefined || value === null || value === "" ? undefined : String(value);
}

function positiveInteger(app: App, key: string): number | undefined {
  const value = context(app, key);
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new Error(`context ${key} must be a positive integer, not ${value}`);
  return Number(value);
}

/**
 * Builds the CDK app: the engine stack for one stage, with cdk-nag's AwsSolutions pack registered as a
 * policy-validation plugin. `bin/app.ts` synthesizes it for the CLI; the local runtime and the tests
 * synthesize it in-process to read the same template.
 *
 * Configuration, all through CDK context (`cdk synth -c key=value` or cdk.json):
 *   stage, policiesFile (a JSON array of policy documents), sweepRateMinutes, smsMonthlySpendLimitUsd,
 *   alarmEmail, maxAccountsPerInvocation, sweepSegments, smsPerSecond, reserveConcurrency (true|false).
 */
export function buildApp(props: AppProps = {}): { app: App; stack: MarginCallStack } {
  const app = new App(props);
  const stage = context(app, "stage") ?? DEFAULT_STAGE;
  const policiesFile = resolve(ROOT, context(app, "policiesFile") ?? DEFAULT_POLICIES_FILE);
  // Checked by the stack, which refuses a bad document at synth, naming the policy and the field.
  const policies = JSON.parse(readFileSync(policiesFile, "utf8")) as PolicyDocument[];
  const sweepRateMinutes = positiveInteger(app, "sweepRateMinutes");
  const smsMonthlySpendLimitUsd = positiveInteger(app, "smsMonthlySpendLimitUsd");
  const maxAccountsPerInvocation = positiveInteger(app, "maxAccountsPerInvocation");
  const sweepSegments = positiveInteger(app, "sweepSegments");
  const smsPerSecond = positiveInteger(app, "smsPerSecond");
  const alarmEmail = context(app, "alarmEmail");
  const reserveConcurrency = context(app, "reserveConcurrency");
  if (reserveConcurrency !== undefined && !["true", "false"].includes(reserveConcurrency)) {
    throw new Error(`context reserveConcurrency must be true or false, not ${reserveConcurrency}`);
  }
  const stack = new MarginCallStack(app, stackNameFor(stage), {
    stage,
    description: `Margin-call engine (${stage})`,
    policies,
    ...(sweepRateMinutes ? { sweepRate: Duration.minutes(sweepRateMinutes) } : {}),
    ...(smsMonthlySpendLimitUsd ? { smsMonthlySpendLimitUsd } : {}),
    ...(maxAccountsPerInvocation ? { maxAccountsPerInvocation } : {}),
    ...(sweepSegments ? { sweepSegments } : {}),
    ...(smsPerSecond ? { smsPerSecond } : {}),
    ...(alarmEmail ? { alarmEmail } : {}),
    ...(reserveConcurrency ? { reserveConcurrency: reserveConcurrency === "true" } : {}),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
