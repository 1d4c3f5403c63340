/**
 * The stub's in-memory SQS: queues addressed by URL path, messages with SQS's visibility-timeout and delay
 * semantics, an optional redrive policy, and long polls woken when a message arrives. It holds the state;
 * the HTTP actions (`sqs-actions.ts`) and the in-process API (`sqs-local.ts`) both work through it. There is
 * no FIFO ordering, deduplication or retention period.
 */
import { randomUUID } from "node:crypto";
import { md5Hex, messageAttributesSizeBytes } from "./sqs-message-attributes.ts";
import {
  SQS_ACCOUNT,
  SQS_DEFAULT_VISIBILITY_SECONDS,
  SQS_MAX_MESSAGE_BYTES,
  SQS_POLL_MS,
  SQS_REGION,
  sqsError,
} from "./sqs-protocol.ts";
import type { SqsMessageAttribute, SqsMessageView, SqsReceivedMessage } from "./types.ts";

/** Characters SQS refuses in a message body: anything outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. */
const SQS_INVALID_BODY_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface StoredMessage {
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly messageAttributes: Readonly<Record<string, SqsMessageAttribute>>;
  /** Epoch milliseconds at which it was sent. */
  readonly sentTimestamp: number;
  receiveCount: number;
  /** Epoch milliseconds of the first receive; undefined before it. */
  firstReceiveTimestamp: number | undefined;
  /** Epoch ms from which the message can be received (its delay or visibility timeout ends). */
  visibleAtMs: number;
  /** The handle of the latest receive; undefined before the first. */
  receiptHandle: string | undefined;
}

export interface StoredQueue {
  readonly url: string;
  readonly name: string;
  readonly arn: string;
  readonly createdAtMs: number;
  readonly messages: StoredMessage[];
  visibilityTimeoutSeconds: number;
  delaySeconds: number;
  redrive: { readonly maxReceiveCount: number; readonly deadLetterUrl: string } | undefined;
}

export interface SendInput {
  readonly body: string;
  readonly delaySeconds: number | undefined;
  readonly messageAttributes: Readonly<Record<string, SqsMessageAttribute>>;
}

/** The queue a URL names: its path (`/<account>/<name>`) when it has one, else the whole string. */
export function queueKey(url: string): string {
  try {
    const path = new URL(url).pathname.replace(/\/+$/, "");
    return path === "" ? url : path;
  } catch {
    return url;
  }
}

function newReceiptHandle(messageId: string): string {
  return Buffer.from(`${messageId} ${randomUUID()}`, "utf8").toString("base64url");
}

/** The MessageId a receipt handle of this stub carries, or undefined when it is not one. */
export function receiptHandleMessageId(handle: string): string | undefined {
  const [messageId, nonce, ...rest] = Buffer.from(handle, "base64url").toString("utf8").split(" ");
  if (rest.length > 0 || messageId === undefined || nonce === undefined) return undefined;
  return UUID.test(messageId) && UUID.test(nonce) ? messageId : undefined;
}

export function messageState(message: StoredMessage, nowMs: number): SqsMessageView["state"] {
  if (message.visibleAtMs <= nowMs) return "visible";
  return message.receiveCount > 0 ? "inFlight" : "delayed";
}

/** Marks the message received now, invisible for the timeout, and gives out a fresh receipt handle. */
function markReceived(
  message: StoredMessage,
  nowMs: number,
  visibilityTimeoutSeconds: number,
): SqsReceivedMessage {
  message.receiveCount += 1;
  message.firstReceiveTimestamp ??= nowMs;
  message.visibleAtMs = nowMs + visibilityTimeoutSeconds * 1000;
  const receiptHandle = newReceiptHandle(message.messageId);
  message.receiptHandle = receiptHandle;
  return {
    messageId: message.messageId,
    receiptHandle,
    body: message.body,
    md5OfBody: message.md5OfBody,
    receiveCount: message.receiveCount,
    sentTimestamp: message.sentTimestamp,
    firstReceiveTimestamp: message.firstReceiveTimestamp,
    messageAttributes: message.messageAttributes,
  };
}

/** The in-memory queues, shared by the HTTP handler and the in-process API. */
export class SqsModel {
  private readonly queues = new Map<string, StoredQueue>();
  private readonly waiters = new Set<() => void>();
  private stopped = false;

  constructor(
    readonly endpoint: string,
    /** The clock of the queues, in epoch milliseconds. */
    readonly now: () => number,
  ) {}

  queueUrl(name: string): string {
    return `${this.endpoint}/${SQS_ACCOUNT}/${name}`;
  }

  /** The queue at `url`, created on first use. */
  queueFor(url: string): StoredQueue {
    const key = queueKey(url);
    let queue = this.queues.get(key);
    if (!queue) {
      const segments = key.split("/").filter((segment) => segment !== "");
      const name = segments.at(-1) ?? key;
      const owner = segments.at(-2);
      const account = owner !== undefined && /^\d{12}$/.test(owner) ? owner : SQS_ACCOUNT;
      queue = {
        url,
        name,
        arn: `arn:aws:sqs:${SQS_REGION}:${account}:${name}`,
        createdAtMs: this.now(),
        messages: [],
        visibilityTimeoutSeconds: SQS_DEFAULT_VISIBILITY_SECONDS,
        delaySeconds: 0,
        redrive: undefined,
      };
      this.queues.set(key, queue);
    }
    return queue;
  }

  existing(url: string): StoredQueue | undefined {
    return this.queues.get(queueKey(url));
  }

  send(queue: StoredQueue, input: SendInput): StoredMessage {
    if (SQS_INVALID_BODY_CHARACTER.test(input.body)) {
      throw sqsError(
        "InvalidMessageContents",
        "Invalid binary character in the message body. Refer to the SQS documentation for the characters allowed.",
      );
    }
    const sizeBytes = Buffer.byteLength(input.body) + messageAttributesSizeBytes(input.messageAttributes);
    if (sizeBytes > SQS_MAX_MESSAGE_BYTES) {
      throw sqsError(
        "InvalidParameterValue",
        `One or more parameters are invalid. Reason: Message must be shorter than ${SQS_MAX_MESSAGE_BYTES} bytes.`,
      );
    }
    const nowMs = this.now();
    const message: StoredMessage = {
      messageId: randomUUID(),
      body: input.body,
      md5OfBody: md5Hex(input.body),
      messageAttributes: input.messageAttributes,
      sentTimestamp: nowMs,
      receiveCount: 0,
      firstReceiveTimestamp: undefined,
      visibleAtMs: nowMs + (input.delaySeconds ?? queue.delaySeconds) * 1000,
      receiptHandle: undefined,
    };
    queue.messages.push(message);
    this.wake();
    return message;
  }

  /** Receives without waiting; moves to the dead-letter queue what has been received too often. */
  receive(
    queue: StoredQueue,
    maxMessages: number,
    visibilityTimeoutSeconds: number | undefined,
  ): SqsReceivedMessage[] {
    const nowMs = this.now();
    const timeoutSeconds = visibilityTimeoutSeconds ?? queue.visibilityTimeoutSeconds;
    const received: SqsReceivedMessage[] = [];
    for (let index = 0; index < queue.messages.length && received.length < maxMessages; ) {
      const message = queue.messages[index];
      if (message === undefined || message.visibleAtMs > nowMs) {
        index += 1;
        continue;
      }
      if (queue.redrive && message.receiveCount >= queue.redrive.maxReceiveCount) {
        const deadLetter = this.queueFor(queue.redrive.deadLetterUrl);
        if (deadLetter !== queue) {
          queue.messages.splice(index, 1);
          message.receiptHandle = undefined;
          deadLetter.messages.push(message);
          continue;
        }
      }
      received.push(markReceived(message, nowMs, timeoutSeconds));
      index += 1;
    }
    return received;
  }

  /** Receives, waiting up to `waitSeconds` (real time) for a message while none is visible. */
  async receiveWaiting(
    url: string,
    maxMessages: number,
    visibilityTimeoutSeconds: number | undefined,
    waitSeconds: number,
    callerGone: () => boolean,
  ): Promise<SqsReceivedMessage[]> {
    const deadlineMs = Date.now() + waitSeconds * 1000;
    for (;;) {
      if (this.stopped || callerGone()) return [];
      const received = this.receive(this.queueFor(url), maxMessages, visibilityTimeoutSeconds);
      const remainingMs = deadlineMs - Date.now();
      if (received.length > 0 || remainingMs <= 0) return received;
      await this.nextWake(Math.min(SQS_POLL_MS, remainingMs));
    }
  }

  /** Resolves at the next wake() or after `delayMs`, whichever comes first. */
  private nextWake(delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, delayMs);
      this.waiters.add(done);
    });
  }

  private findByHandle(queue: StoredQueue, receiptHandle: string): StoredMessage | undefined {
    const messageId = receiptHandleMessageId(receiptHandle);
    if (messageId === undefined) {
      throw sqsError(
        "ReceiptHandleIsInvalid",
        `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`,
      );
    }
    const message = queue.messages.find((candidate) => candidate.messageId === messageId);
    return message?.receiptHandle === receiptHandle ? message : undefined;
  }

  /** Deletes the message if the handle is its latest; a stale handle deletes nothing, without error. */
  delete(queue: StoredQueue, receiptHandle: string): boolean {
    const message = this.findByHandle(queue, receiptHandle);
    if (!message) return false;
    queue.messages.splice(queue.messages.indexOf(message), 1);
    return true;
  }

  changeVisibility(queue: StoredQueue, receiptHandle: string, visibilityTimeoutSeconds: number): void {
    const message = this.findByHandle(queue, receiptHandle);
    if (!message) {
      throw sqsError(
        "InvalidParameterValue",
        `Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.`,
      );
    }
    const nowMs = this.now();
    if (message.visibleAtMs <= nowMs) {
      throw sqsError("MessageNotInflight", "The message referred to isn't in flight.");
    }
    message.visibleAtMs = nowMs + visibilityTimeoutSeconds * 1000;
    if (visibilityTimeoutSeconds === 0) this.wake();
  }

  setRedrive(queue: StoredQueue, maxReceiveCount: number, deadLetterUrl: string): void {
    const deadLetter = this.queueFor(deadLetterUrl);
    if (deadLetter === queue) {
      throw sqsError("InvalidAttributeValue", "A queue cannot be its own dead-letter queue.");
    }
    queue.redrive = { maxReceiveCount, deadLetterUrl: deadLetter.url };
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Forgets every queue and wakes the long polls. */
  reset(): void {
    this.queues.clear();
    this.wake();
  }

  /** Ends every long poll, now and from now on. */
  stop(): void {
    this.stopped = true;
    this.wake();
  }
}
