/**
 * SQS queue attributes: the ones CreateQueue and SetQueueAttributes set (VisibilityTimeout, DelaySeconds,
 * RedrivePolicy, all as strings on the wire) and the ones GetQueueAttributes reports. Attributes the stub does
 * not model are accepted and ignored when set, and never reported.
 */

import { messageState, type SqsModel, type StoredQueue } from "./sqs-model.ts";
import {
  SQS_MAX_DELAY_SECONDS,
  SQS_MAX_MESSAGE_BYTES,
  SQS_MAX_RECEIVE_COUNT,
  SQS_MAX_VISIBILITY_SECONDS,
  sqsError,
} from "./sqs-protocol.ts";
import type { SqsMessageView } from "./types.ts";
import { isRecord } from "./wire.ts";

function attributeInteger(name: string, value: unknown, max: number): number {
  if (typeof value !== "string" || !/^\d+$/.test(value) || Number(value) > max) {
    throw sqsError("InvalidAttributeValue", `Invalid value for the parameter ${name}.`);
  }
  return Number(value);
}

/** A RedrivePolicy attribute as the dead-letter URL it names and its maxReceiveCount. */
function parseRedrivePolicy(
  model: SqsModel,
  redrivePolicy: unknown,
): { readonly maxReceiveCount: number; readonly deadLetterUrl: string } {
  const invalid = () => sqsError("InvalidAttributeValue", "Invalid value for the parameter RedrivePolicy.");
  let policy: unknown;
  try {
    policy = typeof redrivePolicy === "string" ? JSON.parse(redrivePolicy) : undefined;
  } catch {
    throw invalid();
  }
  const arn = isRecord(policy) ? policy.deadLetterTargetArn : undefined;
  const maxReceiveCount = isRecord(policy) ? Number(policy.maxReceiveCount) : Number.NaN;
  const match = typeof arn === "string" ? /^arn:aws[\w-]*:sqs:[^:]*:([^:]+):([^:]+)$/.exec(arn) : null;
  if (
    !match ||
    !Number.isInteger(maxReceiveCount) ||
    maxReceiveCount < 1 ||
    maxReceiveCount > SQS_MAX_RECEIVE_COUNT
  ) {
    throw invalid();
  }
  return { maxReceiveCount, deadLetterUrl: `${model.endpoint}/${match[1]}/${match[2]}` };
}

/** Applies queue attributes as CreateQueue and SetQueueAttributes take them (strings); ignores the rest. */
export function applyQueueAttributes(model: SqsModel, queue: StoredQueue, attributes: unknown): void {
  if (attributes === undefined || attributes === null) return;
  if (!isRecord(attributes)) throw sqsError("InvalidAttributeValue", "Attributes must be a map.");
  const { VisibilityTimeout, DelaySeconds, RedrivePolicy } = attributes;
  if (VisibilityTimeout !== undefined) {
    queue.visibilityTimeoutSeconds = attributeInteger(
      "VisibilityTimeout",
      VisibilityTimeout,
      SQS_MAX_VISIBILITY_SECONDS,
    );
  }
  if (DelaySeconds !== undefined) {
    queue.delaySeconds = attributeInteger("DelaySeconds", DelaySeconds, SQS_MAX_DELAY_SECONDS);
  }
  if (RedrivePolicy === "") {
    queue.redrive = undefined;
  } else if (RedrivePolicy !== undefined) {
    const { maxReceiveCount, deadLetterUrl } = parseRedrivePolicy(model, RedrivePolicy);
    model.setRedrive(queue, maxReceiveCount, deadLetterUrl);
  }
}

/** The attributes GetQueueAttributes reports for `names` (`All` for every one the stub knows). */
export function readQueueAttributes(
  model: SqsModel,
  queue: StoredQueue,
  names: readonly string[],
): Record<string, string> {
  const nowMs = model.now();
  const count = (state: SqsMessageView["state"]) =>
    String(queue.messages.filter((message) => messageState(message, nowMs) === state).length);
  const all: Record<string, () => string | undefined> = {
    ApproximateNumberOfMessages: () => count("visible"),
    ApproximateNumberOfMessagesNotVisible: () => count("inFlight"),
    ApproximateNumberOfMessagesDelayed: () => count("delayed"),
    VisibilityTimeout: () => String(queue.visibilityTimeoutSeconds),
    DelaySeconds: () => String(queue.delaySeconds),
    QueueArn: () => queue.arn,
    CreatedTimestamp: () => String(Math.floor(queue.createdAtMs / 1000)),
    MaximumMessageSize: () => String(SQS_MAX_MESSAGE_BYTES),
    RedrivePolicy: () => {
      const redrive = queue.redrive;
      if (!redrive) return undefined;
      const deadLetterTargetArn = model.queueFor(redrive.deadLetterUrl).arn;
      return JSON.stringify({ deadLetterTargetArn, maxReceiveCount: redrive.maxReceiveCount });
    },
  };
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) {
    if (!names.includes("All") && !names.includes(name)) continue;
    const text = value();
    if (text !== undefined) attributes[name] = text;
  }
  return attributes;
}
