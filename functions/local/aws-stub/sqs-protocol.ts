/**
 * The SQS protocol as the stub speaks it: the limits SQS enforces, the errors it raises (with the awsQuery
 * codes the SDK's query-compatible error parsing reads), and the checks on a request's JSON input. Kept
 * apart from the queue model so that the model holds state and this file holds the rules of the wire.
 */
import { isRecord, type Json, StubError } from "./wire.ts";

export const SQS_TARGET_PREFIX = "AmazonSQS.";
export const SQS_ACCOUNT = "000000000000";
export const SQS_REGION = "us-east-1";
/** The long-standing default MaximumMessageSize; stricter than the newest limit, which is safe locally. */
export const SQS_MAX_MESSAGE_BYTES = 256 * 1024;
export const SQS_MAX_BATCH_ENTRIES = 10;
export const SQS_MAX_MESSAGE_ATTRIBUTES = 10;
export const SQS_DEFAULT_VISIBILITY_SECONDS = 30;
export const SQS_MAX_VISIBILITY_SECONDS = 43_200;
export const SQS_MAX_DELAY_SECONDS = 900;
export const SQS_MAX_WAIT_SECONDS = 20;
export const SQS_MAX_RECEIVE_COUNT = 1000;
/** How often a long poll looks again for a message whose visibility timeout or delay has passed. */
export const SQS_POLL_MS = 50;
const SQS_BATCH_ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;
export const SQS_QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$|^[A-Za-z0-9_-]{1,75}\.fifo$/;

/** The SQS errors the stub raises: modeled name → [awsQuery code, HTTP status], as in the SQS model. */
const SQS_ERRORS = {
  QueueDoesNotExist: ["AWS.SimpleQueueService.NonExistentQueue", 400],
  ReceiptHandleIsInvalid: ["ReceiptHandleIsInvalid", 404],
  MessageNotInflight: ["AWS.SimpleQueueService.MessageNotInflight", 400],
  EmptyBatchRequest: ["AWS.SimpleQueueService.EmptyBatchRequest", 400],
  TooManyEntriesInBatchRequest: ["AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400],
  BatchEntryIdsNotDistinct: ["AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400],
  InvalidBatchEntryId: ["AWS.SimpleQueueService.InvalidBatchEntryId", 400],
  BatchRequestTooLong: ["AWS.SimpleQueueService.BatchRequestTooLong", 400],
  UnsupportedOperation: ["AWS.SimpleQueueService.UnsupportedOperation", 400],
  InvalidAddress: ["InvalidAddress", 404],
  InvalidAttributeValue: ["InvalidAttributeValue", 400],
  InvalidMessageContents: ["InvalidMessageContents", 400],
  // Not modeled: the SDK raises them as a plain SQSServiceException with this name.
  InvalidParameterValue: ["InvalidParameterValue", 400],
  MissingParameter: ["MissingParameter", 400],
} as const satisfies Record<string, readonly [string, number]>;

export function sqsError(name: keyof typeof SQS_ERRORS, message: string): StubError {
  const [queryCode, status] = SQS_ERRORS[name];
  return new StubError(status, name, message, undefined, queryCode);
}

export function requiredString(input: Json, name: string): string {
  const value = input[name];
  if (value === undefined || value === null || value === "") {
    throw sqsError("MissingParameter", `The request must contain the parameter ${name}.`);
  }
  if (typeof value !== "string") {
    throw sqsError(
      "InvalidParameterValue",
      `Value for parameter ${name} is invalid. Reason: Must be a string.`,
    );
  }
  return value;
}

export function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw sqsError(
      "InvalidParameterValue",
      `Value ${String(value)} for parameter ${name} is invalid. Reason: Must be between ${min} and ${max}, if provided.`,
    );
  }
  return value;
}

export function optionalInteger(input: Json, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  return value === undefined || value === null ? undefined : integerIn(name, value, min, max);
}

export function stringList(input: Json, name: string): string[] {
  const value = input[name];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

/** The entries of a batch request, after the checks SQS makes on the batch as a whole. */
export function batchEntries(input: Json, entryName: string): Json[] {
  const entries = input.Entries;
  if (!Array.isArray(entries) || entries.length === 0) {
    throw sqsError("EmptyBatchRequest", `There should be at least one ${entryName} in the request.`);
  }
  if (entries.length > SQS_MAX_BATCH_ENTRIES) {
    throw sqsError(
      "TooManyEntriesInBatchRequest",
      `Maximum number of entries per request are ${SQS_MAX_BATCH_ENTRIES}. You have sent ${entries.length}.`,
    );
  }
  const seen = new Set<string>();
  return entries.map((raw) => {
    const entry: Json = isRecord(raw) ? raw : {};
    const id = entry.Id;
    if (typeof id !== "string" || !SQS_BATCH_ENTRY_ID.test(id)) {
      throw sqsError(
        "InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
      );
    }
    if (seen.has(id)) throw sqsError("BatchEntryIdsNotDistinct", `Id ${id} repeated.`);
    seen.add(id);
    return entry;
  });
}
