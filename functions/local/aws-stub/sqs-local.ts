/**
 * The stub's in-process SQS API: configuring a queue, viewing it, and sending, receiving and deleting without
 * HTTP, so that the local runtime can drive queue consumers directly and tests can look at a queue without a
 * client. It works on the same queue model as the HTTP actions, with the same checks.
 */
import { parseMessageAttributes, wireMessageAttributes } from "./sqs-message-attributes.ts";
import { messageState, queueKey, receiptHandleMessageId, type SqsModel } from "./sqs-model.ts";
import {
  integerIn,
  SQS_MAX_BATCH_ENTRIES,
  SQS_MAX_DELAY_SECONDS,
  SQS_MAX_RECEIVE_COUNT,
  SQS_MAX_VISIBILITY_SECONDS,
} from "./sqs-protocol.ts";
import type { AwsStub, SqsMessageView, SqsQueueConfig, SqsQueueView, SqsSendOptions } from "./types.ts";

export type SqsLocalApi = Pick<
  AwsStub,
  "queueUrl" | "configureQueue" | "queue" | "sendLocal" | "receiveLocal" | "deleteLocal"
>;

function checkRange(name: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max)) {
    throw new RangeError(`configureQueue: ${name} must be an integer from ${min} to ${max}`);
  }
}

function configureQueue(model: SqsModel, url: string, config: SqsQueueConfig): void {
  const { visibilityTimeoutSeconds, delaySeconds, maxReceiveCount, deadLetterUrl } = config;
  checkRange("visibilityTimeoutSeconds", visibilityTimeoutSeconds, 0, SQS_MAX_VISIBILITY_SECONDS);
  checkRange("delaySeconds", delaySeconds, 0, SQS_MAX_DELAY_SECONDS);
  checkRange("maxReceiveCount", maxReceiveCount, 1, SQS_MAX_RECEIVE_COUNT);
  if ((maxReceiveCount === undefined) !== (deadLetterUrl === undefined)) {
    throw new RangeError("configureQueue: maxReceiveCount and deadLetterUrl go together");
  }
  if (deadLetterUrl !== undefined && queueKey(deadLetterUrl) === queueKey(url)) {
    throw new RangeError("configureQueue: a queue cannot be its own dead-letter queue");
  }
  const queue = model.queueFor(url);
  if (visibilityTimeoutSeconds !== undefined) queue.visibilityTimeoutSeconds = visibilityTimeoutSeconds;
  if (delaySeconds !== undefined) queue.delaySeconds = delaySeconds;
  if (maxReceiveCount !== undefined && deadLetterUrl !== undefined) {
    model.setRedrive(queue, maxReceiveCount, deadLetterUrl);
  }
}

/** A live read-only view of the queue at `url`; asking does not create it. */
function queueView(model: SqsModel, url: string): SqsQueueView {
  const snapshot = () => {
    const nowMs = model.now();
    return (model.existing(url)?.messages ?? []).map(
      (message): SqsMessageView => ({
        messageId: message.messageId,
        body: message.body,
        receiveCount: message.receiveCount,
        sentTimestamp: message.sentTimestamp,
        state: messageState(message, nowMs),
        messageAttributes: message.messageAttributes,
      }),
    );
  };
  return {
    get url() {
      return model.existing(url)?.url ?? url;
    },
    get exists() {
      return model.existing(url) !== undefined;
    },
    get messages() {
      return snapshot();
    },
    get depth() {
      return model.existing(url)?.messages.length ?? 0;
    },
    get visible() {
      return snapshot().filter((message) => message.state === "visible").length;
    },
    get inFlight() {
      return snapshot().filter((message) => message.state === "inFlight").length;
    },
  };
}

/** The in-process SQS methods of `AwsStub`, over `model`. */
export function sqsLocalApi(model: SqsModel): SqsLocalApi {
  return {
    queueUrl: (name: string) => model.queueUrl(name),
    configureQueue: (url: string, config: SqsQueueConfig) => configureQueue(model, url, config),
    queue: (url: string) => queueView(model, url),
    sendLocal(url: string, body: string, sendOptions: SqsSendOptions = {}) {
      const message = model.send(model.queueFor(url), {
        body,
        delaySeconds:
          sendOptions.delaySeconds === undefined
            ? undefined
            : integerIn("DelaySeconds", sendOptions.delaySeconds, 0, SQS_MAX_DELAY_SECONDS),
        messageAttributes: parseMessageAttributes(wireMessageAttributes(sendOptions.messageAttributes ?? {})),
      });
      return { messageId: message.messageId };
    },
    receiveLocal(url: string, maxMessages = 1, visibilityTimeoutSeconds?: number) {
      integerIn("MaxNumberOfMessages", maxMessages, 1, SQS_MAX_BATCH_ENTRIES);
      if (visibilityTimeoutSeconds !== undefined) {
        integerIn("VisibilityTimeout", visibilityTimeoutSeconds, 0, SQS_MAX_VISIBILITY_SECONDS);
      }
      return model.receive(model.queueFor(url), maxMessages, visibilityTimeoutSeconds);
    },
    deleteLocal(url: string, receiptHandle: string) {
      if (receiptHandleMessageId(receiptHandle) === undefined) return false;
      return model.delete(model.queueFor(url), receiptHandle);
    },
  };
}
