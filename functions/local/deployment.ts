/**
 * What the local runtime and the pipeline tests take from the synthesized template, so that nothing is
 * configured twice: each function's handler module and environment, each event source mapping with all
 * its failure settings and filters, and each schedule. References (`Ref`, `Fn::GetAtt`, `Fn::Join`) are
 * resolved to their local equivalents: tables by logical id, queues, topics and the bus by local names.
 */
import { ENTRY_METADATA } from "../../lib/engine-function.ts";
import { type CfnTemplate, resourcesOfType } from "./template.ts";

export const LOCAL_ACCOUNT = "000000000000";
export const LOCAL_REGION = "us-east-1";

export interface LocalFunction {
  readonly logicalId: string;
  /** The handler module, relative to the repository root. */
  readonly entry: string;
  readonly environment: Record<string, string>;
  readonly timeoutSeconds: number;
}

/** The concurrent batches Lambda starts an SQS event source mapping with before it scales up. */
export const SQS_INITIAL_CONCURRENCY = 5;

export type MappingSource =
  | { readonly kind: "dynamodb"; readonly table: string }
  | { readonly kind: "sqs"; readonly queue: string };

export interface LocalMapping {
  readonly logicalId: string;
  readonly functionLogicalId: string;
  readonly source: MappingSource;
  readonly batchSize: number;
  readonly maximumBatchingWindowSeconds: number;
  readonly startingPosition: "TRIM_HORIZON" | "LATEST" | undefined;
  readonly bisectBatchOnFunctionError: boolean;
  /** -1 is Lambda's "retry until the record expires". */
  readonly maximumRetryAttempts: number;
  /** -1 is Lambda's "no limit". */
  readonly maximumRecordAgeSeconds: number;
  readonly parallelizationFactor: number;
  /**
   * A queue mapping's batches at once: its ScalingConfig.MaximumConcurrency, or, without one, the five
   * concurrent batches Lambda starts an SQS mapping with (it scales up from there; one machine does not).
   */
  readonly maximumConcurrency: number;
  readonly reportBatchItemFailures: boolean;
  /** The on-failure destination queue's logical id. */
  readonly onFailureQueue: string | undefined;
  readonly filterPatterns: readonly string[];
}

export interface LocalSchedule {
  readonly logicalId: string;
  readonly rateSeconds: number;
  readonly functionLogicalId: string;
  readonly maximumRetryAttempts: number;
  readonly maximumEventAgeSeconds: number;
  readonly deadLetterQueue: string | undefined;
}

export interface LocalDeployment {
  readonly functions: ReadonlyMap<string, LocalFunction>;
  readonly mappings: readonly LocalMapping[];
  readonly schedules: readonly LocalSchedule[];
  /** Logical ids of every queue, topic and bus, for the local sinks. */
  readonly queues: readonly string[];
  readonly topics: readonly string[];
  readonly buses: ReadonlyMap<string, string>;
}

/** How the local runtime names what the template refers to. */
export interface LocalNames {
  queueUrl(logicalId: string): string;
}

export function topicArn(logicalId: string): string {
  return `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${logicalId}`;
}

export function queueArn(logicalId: string): string {
  return `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${logicalId}`;
}

function typeOf(template: CfnTemplate, logicalId: string): string {
  const resource = template.Resources[logicalId];
  if (!resource) throw new Error(`the template has no resource ${logicalId}`);
  return resource.Type;
}

function refTarget(value: unknown, what: string): string {
  if (typeof value === "object" && value !== null) {
    if ("Ref" in value) return String((value as { Ref: unknown }).Ref);
    if ("Fn::GetAtt" in value) return String((value as { "Fn::GetAtt": unknown[] })["Fn::GetAtt"][0]);
  }
  throw new Error(`${what}: expected a Ref or Fn::GetAtt, got ${JSON.stringify(value)}`);
}

/** Resolves an environment value of the template to its local value. */
export function resolveValue(template: CfnTemplate, value: unknown, names: LocalNames): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "object" && value !== null) {
    if ("Fn::Join" in value) {
      const [separator, parts] = (value as { "Fn::Join": [string, unknown[]] })["Fn::Join"];
      return parts.map((part) => resolveValue(template, part, names)).join(separator);
    }
    if ("Ref" in value) {
      const id = String((value as { Ref: unknown }).Ref);
      if (id === "AWS::Region") return LOCAL_REGION;
      if (id === "AWS::AccountId") return LOCAL_ACCOUNT;
      if (id === "AWS::Partition") return "aws";
      if (id === "AWS::URLSuffix") return "amazonaws.com";
      const type = typeOf(template, id);
      if (type === "AWS::DynamoDB::Table") return id;
      if (type === "AWS::SQS::Queue") return names.queueUrl(id);
      if (type === "AWS::SNS::Topic") return topicArn(id);
      if (type === "AWS::Events::EventBus") {
        return String(template.Resources[id]?.Properties?.Name ?? id);
      }
      throw new Error(`no local equivalent for a Ref to ${type} (${id})`);
    }
    if ("Fn::GetAtt" in value) {
      const [id, attribute] = (value as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"];
      const type = typeOf(template, id);
      if (type === "AWS::SQS::Queue" && attribute === "Arn") return queueArn(id);
      if (type === "AWS::SQS::Queue" && attribute === "QueueUrl") return names.queueUrl(id);
      if (type === "AWS::SQS::Queue" && attribute === "QueueName") return id;
      if (type === "AWS::DynamoDB::Table" && attribute === "Arn") {
        return `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/${id}`;
      }
      throw new Error(`no local equivalent for Fn::GetAtt ${id}.${attribute} (${type})`);
    }
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)} locally`);
}

function rateSeconds(expression: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!match) throw new Error(`schedule ${expression}: only rate(...) expressions run locally`);
  const unit = match[2]?.startsWith("minute") ? 60 : match[2]?.startsWith("hour") ? 3600 : 86_400;
  return Number(match[1]) * unit;
}

/** Each of our Lambda functions (those with a handler entry), by logical id, its environment resolved. */
function readFunctions(template: CfnTemplate, names: LocalNames): Map<string, LocalFunction> {
  const functions = new Map<string, LocalFunction>();
  for (const [logicalId, resource] of resourcesOfType(template, "AWS::Lambda::Function")) {
    const entry = resource.Metadata?.[ENTRY_METADATA];
    if (typeof entry !== "string") continue; // CDK's own helper functions have no handler of ours.
    const variables = (resource.Properties?.Environment as { Variables?: Record<string, unknown> })
      ?.Variables;
    const environment: Record<string, string> = {};
    for (const [name, value] of Object.entries(variables ?? {})) {
      environment[name] = resolveValue(template, value, names);
    }
    functions.set(logicalId, {
      logicalId,
      entry,
      environment,
      timeoutSeconds: Number(resource.Properties?.Timeout ?? 3),
    });
  }
  return functions;
}

/** One event source mapping with its failure settings and filters, Lambda's defaults filled in. */
function readMapping(
  template: CfnTemplate,
  logicalId: string,
  properties: Record<string, unknown>,
): LocalMapping {
  const sourceId = refTarget(properties.EventSourceArn, `${logicalId}.EventSourceArn`);
  const sourceType = typeOf(template, sourceId);
  const source: MappingSource =
    sourceType === "AWS::DynamoDB::Table"
      ? { kind: "dynamodb", table: sourceId }
      : { kind: "sqs", queue: sourceId };
  const destination = (properties.DestinationConfig as { OnFailure?: { Destination?: unknown } } | undefined)
    ?.OnFailure?.Destination;
  const filters = (
    (properties.FilterCriteria as { Filters?: { Pattern?: string }[] } | undefined)?.Filters ?? []
  ).map((filter) => {
    if (typeof filter.Pattern !== "string") {
      throw new Error(`${logicalId}: a filter without a Pattern would match nothing in AWS`);
    }
    return filter.Pattern;
  });
  const isStream = source.kind === "dynamodb";
  return {
    logicalId,
    functionLogicalId: refTarget(properties.FunctionName, `${logicalId}.FunctionName`),
    source,
    batchSize: Number(properties.BatchSize ?? (isStream ? 100 : 10)),
    maximumBatchingWindowSeconds: Number(properties.MaximumBatchingWindowInSeconds ?? 0),
    startingPosition: properties.StartingPosition as LocalMapping["startingPosition"],
    bisectBatchOnFunctionError: properties.BisectBatchOnFunctionError === true,
    maximumRetryAttempts: Number(properties.MaximumRetryAttempts ?? -1),
    maximumRecordAgeSeconds: Number(properties.MaximumRecordAgeInSeconds ?? -1),
    parallelizationFactor: Number(properties.ParallelizationFactor ?? 1),
    maximumConcurrency: isStream
      ? 1
      : Number(
          (properties.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency ??
            SQS_INITIAL_CONCURRENCY,
        ),
    reportBatchItemFailures: ((properties.FunctionResponseTypes as string[] | undefined) ?? []).includes(
      "ReportBatchItemFailures",
    ),
    onFailureQueue: destination ? refTarget(destination, `${logicalId}.OnFailure`) : undefined,
    filterPatterns: filters,
  };
}

/** Each rate(...) rule's Lambda targets, with their retry policy and dead-letter queue. */
function readSchedules(template: CfnTemplate): LocalSchedule[] {
  const schedules: LocalSchedule[] = [];
  for (const [logicalId, resource] of resourcesOfType(template, "AWS::Events::Rule")) {
    const expression = resource.Properties?.ScheduleExpression;
    if (typeof expression !== "string") continue;
    for (const target of (resource.Properties?.Targets as Record<string, unknown>[] | undefined) ?? []) {
      const functionLogicalId = refTarget(target.Arn, `${logicalId}.Targets.Arn`);
      if (typeOf(template, functionLogicalId) !== "AWS::Lambda::Function") continue;
      const retry = (target.RetryPolicy ?? {}) as {
        MaximumRetryAttempts?: number;
        MaximumEventAgeInSeconds?: number;
      };
      const deadLetter = (target.DeadLetterConfig as { Arn?: unknown } | undefined)?.Arn;
      schedules.push({
        logicalId,
        rateSeconds: rateSeconds(expression),
        functionLogicalId,
        maximumRetryAttempts: retry.MaximumRetryAttempts ?? 185,
        maximumEventAgeSeconds: retry.MaximumEventAgeInSeconds ?? 86_400,
        deadLetterQueue: deadLetter ? refTarget(deadLetter, `${logicalId}.DeadLetterConfig`) : undefined,
      });
    }
  }
  return schedules;
}

export function readDeployment(template: CfnTemplate, names: LocalNames): LocalDeployment {
  const functions = readFunctions(template, names);
  const mappings: LocalMapping[] = resourcesOfType(template, "AWS::Lambda::EventSourceMapping").map(
    ([logicalId, resource]) => readMapping(template, logicalId, resource.Properties ?? {}),
  );
  const schedules = readSchedules(template);
  const buses = new Map<string, string>();
  for (const [logicalId, resource] of resourcesOfType(template, "AWS::Events::EventBus")) {
    buses.set(logicalId, String(resource.Properties?.Name ?? logicalId));
  }
  return {
    functions,
    mappings,
    schedules,
    queues: resourcesOfType(template, "AWS::SQS::Queue").map(([id]) => id),
    topics: resourcesOfType(template, "AWS::SNS::Topic").map(([id]) => id),
    buses,
  };
}

/** A Lambda context for a local invocation: the function's name and its remaining time, from its timeout. */
export function lambdaContext(
  fn: LocalFunction,
  requestId: string,
  timeoutMs = fn.timeoutSeconds * 1000,
): import("aws-lambda").Context {
  const deadlineMs = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: fn.logicalId,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${fn.logicalId}`,
    memoryLimitInMB: "512",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${fn.logicalId}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
