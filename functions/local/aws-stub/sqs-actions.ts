/**
 * The SQS actions the stub answers over HTTP, one function each, and the table the router dispatches
 * through. Each action checks its JSON input as SQS does, works through the queue model, and returns the
 * JSON reply; a refusal is thrown as a StubError.
 */
import type { Faults } from "./faults.ts";
import {
  attributesDigest,
  parseMessageAttributes,
  selectMessageAttributes,
  wireMessageAttributes,
} from "./sqs-message-attributes.ts";
import type { SendInput, SqsModel } from "./sqs-model.ts";
import {
  batchEntries,
  integerIn,
  optionalInteger,
  requiredString,
  SQS_ACCOUNT,
  SQS_MAX_BATCH_ENTRIES,
  SQS_MAX_DELAY_SECONDS,
  SQS_MAX_MESSAGE_BYTES,
  SQS_MAX_VISIBILITY_SECONDS,
  SQS_MAX_WAIT_SECONDS,
  SQS_QUEUE_NAME,
  sqsError,
  stringList,
} from "./sqs-protocol.ts";
import { applyQueueAttributes, readQueueAttributes } from "./sqs-queue-attributes.ts";
import type { SqsReceivedMessage } from "./types.ts";
import { type Json, StubError } from "./wire.ts";

/** What an action works with: the queues, the pending faults, and whether the caller has hung up. */
export interface SqsActionContext {
  readonly model: SqsModel;
  readonly faults: Faults;
  readonly callerGone: () => boolean;
}

type SqsAction = (input: Json, context: SqsActionContext) => Json | Promise<Json>;

function parseSendInput(input: Json): SendInput {
  const body = input.MessageBody;
  if (typeof body !== "string" || body === "") {
    throw sqsError("MissingParameter", "The request must contain the parameter MessageBody.");
  }
  return {
    body,
    delaySeconds: optionalInteger(input, "DelaySeconds", 0, SQS_MAX_DELAY_SECONDS),
    messageAttributes: parseMessageAttributes(input.MessageAttributes),
  };
}

/**
 * Runs `perform` on each entry of a batch; an injected fault or a StubError lists the entry under Failed,
 * any other error fails the whole request.
 */
function runBatch(
  entries: readonly Json[],
  faults: Faults,
  perform: (entry: Json, id: string) => Json,
): Json {
  const Successful: Json[] = [];
  const Failed: Json[] = [];
  for (const entry of entries) {
    const id = String(entry.Id);
    const injected = faults.takeSqsBatchEntryFailure(id);
    if (injected) {
      Failed.push(injected);
      continue;
    }
    try {
      Successful.push(perform(entry, id));
    } catch (error) {
      if (!(error instanceof StubError)) throw error;
      Failed.push({
        Id: id,
        SenderFault: error.fault === "Sender",
        Code: error.code,
        Message: error.message,
      });
    }
  }
  return { Successful, Failed };
}

function sendMessage(input: Json, { model }: SqsActionContext): Json {
  const message = model.send(model.queueFor(requiredString(input, "QueueUrl")), parseSendInput(input));
  return {
    MessageId: message.messageId,
    MD5OfMessageBody: message.md5OfBody,
    ...attributesDigest(message.messageAttributes),
  };
}

function sendMessageBatch(input: Json, { model, faults }: SqsActionContext): Json {
  const queue = model.queueFor(requiredString(input, "QueueUrl"));
  const entries = batchEntries(input, "SendMessageBatchRequestEntry");
  const sizeBytes = entries.reduce(
    (sum, entry) => sum + (typeof entry.MessageBody === "string" ? Buffer.byteLength(entry.MessageBody) : 0),
    0,
  );
  if (sizeBytes > SQS_MAX_MESSAGE_BYTES) {
    throw sqsError(
      "BatchRequestTooLong",
      `Batch requests cannot be longer than ${SQS_MAX_MESSAGE_BYTES} bytes. You have sent ${sizeBytes} bytes.`,
    );
  }
  return runBatch(entries, faults, (entry, id) => {
    const message = model.send(queue, parseSendInput(entry));
    return {
      Id: id,
      MessageId: message.messageId,
      MD5OfMessageBody: message.md5OfBody,
      ...attributesDigest(message.messageAttributes),
    };
  });
}

/** A received message as ReceiveMessage puts it on the wire, with the attributes the caller asked for. */
function wireReceivedMessage(
  message: SqsReceivedMessage,
  systemNames: readonly string[],
  attributeNames: readonly string[],
): Json {
  const wanted = (name: string) => systemNames.includes("All") || systemNames.includes(name);
  const Attributes: Record<string, string> = {};
  if (wanted("ApproximateReceiveCount")) Attributes.ApproximateReceiveCount = String(message.receiveCount);
  if (wanted("SentTimestamp")) Attributes.SentTimestamp = String(message.sentTimestamp);
  if (wanted("ApproximateFirstReceiveTimestamp")) {
    Attributes.ApproximateFirstReceiveTimestamp = String(message.firstReceiveTimestamp);
  }
  if (wanted("SenderId")) Attributes.SenderId = SQS_ACCOUNT;
  const selected = selectMessageAttributes(message.messageAttributes, attributeNames);
  return {
    MessageId: message.messageId,
    ReceiptHandle: message.receiptHandle,
    MD5OfBody: message.md5OfBody,
    Body: message.body,
    ...(Object.keys(Attributes).length > 0 ? { Attributes } : {}),
    ...(Object.keys(selected).length > 0
      ? { MessageAttributes: wireMessageAttributes(selected), ...attributesDigest(selected) }
      : {}),
  };
}

async function receiveMessage(input: Json, { model, callerGone }: SqsActionContext): Promise<Json> {
  const url = requiredString(input, "QueueUrl");
  const maxMessages = optionalInteger(input, "MaxNumberOfMessages", 1, SQS_MAX_BATCH_ENTRIES) ?? 1;
  const visibilityTimeoutSeconds = optionalInteger(input, "VisibilityTimeout", 0, SQS_MAX_VISIBILITY_SECONDS);
  const waitSeconds = optionalInteger(input, "WaitTimeSeconds", 0, SQS_MAX_WAIT_SECONDS) ?? 0;
  const systemNames = [
    ...stringList(input, "AttributeNames"),
    ...stringList(input, "MessageSystemAttributeNames"),
  ];
  const attributeNames = stringList(input, "MessageAttributeNames");
  const received = await model.receiveWaiting(
    url,
    maxMessages,
    visibilityTimeoutSeconds,
    waitSeconds,
    callerGone,
  );
  if (received.length === 0) return {};
  return { Messages: received.map((message) => wireReceivedMessage(message, systemNames, attributeNames)) };
}

function deleteMessage(input: Json, { model }: SqsActionContext): Json {
  const queue = model.queueFor(requiredString(input, "QueueUrl"));
  model.delete(queue, requiredString(input, "ReceiptHandle"));
  return {};
}

function deleteMessageBatch(input: Json, { model, faults }: SqsActionContext): Json {
  const queue = model.queueFor(requiredString(input, "QueueUrl"));
  return runBatch(batchEntries(input, "DeleteMessageBatchRequestEntry"), faults, (entry, id) => {
    model.delete(queue, requiredString(entry, "ReceiptHandle"));
    return { Id: id };
  });
}

function changeMessageVisibility(input: Json, { model }: SqsActionContext): Json {
  const queue = model.queueFor(requiredString(input, "QueueUrl"));
  const receiptHandle = requiredString(input, "ReceiptHandle");
  if (input.VisibilityTimeout === undefined) {
    throw sqsError("MissingParameter", "The request must contain the parameter VisibilityTimeout.");
  }
  const visibilityTimeoutSeconds = integerIn(
    "VisibilityTimeout",
    input.VisibilityTimeout,
    0,
    SQS_MAX_VISIBILITY_SECONDS,
  );
  model.changeVisibility(queue, receiptHandle, visibilityTimeoutSeconds);
  return {};
}

function getQueueAttributes(input: Json, { model }: SqsActionContext): Json {
  const queue = model.queueFor(requiredString(input, "QueueUrl"));
  const Attributes = readQueueAttributes(model, queue, stringList(input, "AttributeNames"));
  return Object.keys(Attributes).length > 0 ? { Attributes } : {};
}

function setQueueAttributes(input: Json, { model }: SqsActionContext): Json {
  const queue = model.queueFor(requiredString(input, "QueueUrl"));
  applyQueueAttributes(model, queue, input.Attributes);
  return {};
}

function getQueueUrl(input: Json, { model }: SqsActionContext): Json {
  const name = requiredString(input, "QueueName");
  const owner = input.QueueOwnerAWSAccountId;
  const queue = model.existing(`/${typeof owner === "string" && owner !== "" ? owner : SQS_ACCOUNT}/${name}`);
  if (!queue) throw sqsError("QueueDoesNotExist", "The specified queue does not exist.");
  return { QueueUrl: queue.url };
}

function createQueue(input: Json, { model }: SqsActionContext): Json {
  const name = requiredString(input, "QueueName");
  if (!SQS_QUEUE_NAME.test(name)) {
    throw sqsError(
      "InvalidParameterValue",
      "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
    );
  }
  const queue = model.queueFor(model.queueUrl(name));
  applyQueueAttributes(model, queue, input.Attributes);
  return { QueueUrl: queue.url };
}

const SQS_ACTIONS: ReadonlyMap<string, SqsAction> = new Map<string, SqsAction>([
  ["SendMessage", sendMessage],
  ["SendMessageBatch", sendMessageBatch],
  ["ReceiveMessage", receiveMessage],
  ["DeleteMessage", deleteMessage],
  ["DeleteMessageBatch", deleteMessageBatch],
  ["ChangeMessageVisibility", changeMessageVisibility],
  ["GetQueueAttributes", getQueueAttributes],
  ["SetQueueAttributes", setQueueAttributes],
  ["GetQueueUrl", getQueueUrl],
  ["CreateQueue", createQueue],
]);

/** One SQS action received over HTTP (`X-Amz-Target: AmazonSQS.<action>`); returns the JSON reply. */
export async function handleSqsAction(action: string, input: Json, context: SqsActionContext): Promise<Json> {
  const perform = SQS_ACTIONS.get(action);
  if (!perform) {
    throw sqsError(
      "UnsupportedOperation",
      `aws-stub does not implement SQS ${action || "(none)"}; it implements SendMessage, SendMessageBatch, ReceiveMessage, DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility, GetQueueAttributes, SetQueueAttributes, GetQueueUrl and CreateQueue.`,
    );
  }
  return perform(input, context);
}
