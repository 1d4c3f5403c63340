/**
 * The settings every function reads, as Lambda environment variables: table names (the Policies table among
 * them: the policies themselves are read from it, docs/policies.md), and the queue, topic and bus they talk
 * to. Built and checked here at synth time, so an environment too large for Lambda fails `cdk synth`, not
 * every function at cold start.
 */
import { Token } from "aws-cdk-lib";
import type { EventBus } from "aws-cdk-lib/aws-events";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { ENV } from "../functions/domain/environment.ts";
import type { EngineTables } from "./tables.ts";

/** Lambda's limit on a function's environment, all variables together. */
const ENVIRONMENT_LIMIT_BYTES = 4096;

/** What an unresolved name, ARN or URL (a token) may take at deploy time, at most, in bytes. */
const TOKEN_ESTIMATE_BYTES = 128;

/** Lambda's own overhead of the environment, in bytes, in the estimate. */
const ENVIRONMENT_OVERHEAD_BYTES = 64;

export interface EngineEnvironmentProps {
  readonly tables: EngineTables;
  readonly fanOutQueue: IQueue;
  /** The queue the outbox relay puts notices on, for the notifier. */
  readonly noticeQueue: IQueue;
  /** SMS per second the notifier may publish in all (the account's SNS SMS throughput). */
  readonly smsPerSecond: number;
  /** The notifier's invocations at once, at most. */
  readonly notifierConcurrency: number;
  readonly emailTopic: ITopic;
  readonly eventBus: EventBus;
  /**
   * Accounts one invocation revalues before handing the rest to the fan-out queue.
   * @default 500
   */
  readonly maxAccountsPerInvocation?: number | undefined;
  /**
   * Segments of the sweep's parallel scan.
   * @default 4
   */
  readonly sweepSegments?: number | undefined;
}

/** The environment of every function, after checking that it fits Lambda's 4 KB. */
export function engineEnvironment(props: EngineEnvironmentProps): Record<string, string> {
  const { tables } = props;
  const environment: Record<string, string> = {
    [ENV.accountsTable]: tables.accounts.tableName,
    [ENV.pricesTable]: tables.prices.tableName,
    [ENV.marginCallsTable]: tables.marginCalls.tableName,
    [ENV.triggerIndexTable]: tables.triggerIndex.tableName,
    [ENV.outboxTable]: tables.outbox.tableName,
    [ENV.auditLogTable]: tables.auditLog.tableName,
    [ENV.quarantineTable]: tables.quarantine.tableName,
    [ENV.policiesTable]: tables.policies.tableName,
    [ENV.insuranceFundTable]: tables.insuranceFund.tableName,
    [ENV.fanOutQueueUrl]: props.fanOutQueue.queueUrl,
    [ENV.noticeQueueUrl]: props.noticeQueue.queueUrl,
    [ENV.smsPerSecond]: String(props.smsPerSecond),
    [ENV.notifierConcurrency]: String(props.notifierConcurrency),
    [ENV.emailTopicArn]: props.emailTopic.topicArn,
    [ENV.eventBusName]: props.eventBus.eventBusName,
    [ENV.maxAccountsPerInvocation]: String(props.maxAccountsPerInvocation ?? 500),
    [ENV.sweepSegments]: String(props.sweepSegments ?? 4),
  };
  const estimatedBytes = Object.entries(environment).reduce(
    (total, [key, value]) =>
      total + key.length + (Token.isUnresolved(value) ? TOKEN_ESTIMATE_BYTES : value.length),
    ENVIRONMENT_OVERHEAD_BYTES,
  );
  if (estimatedBytes > ENVIRONMENT_LIMIT_BYTES) {
    throw new Error(
      `the functions' settings (about ${estimatedBytes} bytes) do not fit Lambda's 4 KB environment`,
    );
  }
  return environment;
}
