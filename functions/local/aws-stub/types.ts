/**
 * The public shapes of the AWS stub: what it records (SNS publishes, EventBridge entries), the views of its
 * SQS queues, its options and the `AwsStub` handle itself. Kept in one file so that a reader of the stub's
 * API, or an importer of its types, need not read how any service works.
 */
import type { FaultControl, FaultInjection } from "./faults.ts";
import type { Callback } from "./wire.ts";

export interface SnsMessageAttribute {
  readonly dataType: string;
  /** The StringValue as sent; "" for a Binary attribute. */
  readonly stringValue: string;
  /** The BinaryValue as sent on the wire (base64), for a Binary attribute. */
  readonly binaryValue?: string;
}

export interface SnsPublish {
  readonly action: "Publish";
  readonly phoneNumber?: string;
  readonly topicArn?: string;
  readonly targetArn?: string;
  readonly subject?: string;
  readonly message: string;
  readonly messageStructure?: string;
  readonly messageGroupId?: string;
  readonly messageDeduplicationId?: string;
  readonly messageAttributes: Record<string, SnsMessageAttribute>;
  readonly messageId: string;
  readonly receivedAt: string;
  /**
   * The stub's record counter, shared by SNS publishes and EventBridge entries and never reset: a later
   * record has a greater seq, whatever its service.
   */
  readonly seq: number;
  /** Present when the Publish was accepted and recorded but its reply failed (`faults.acceptThenFail`). */
  readonly replyFailed?: true;
  /** Present when the SMS was answered as a success but not delivered (`faults.smsSpendLimit`). */
  readonly dropped?: true;
}

export interface PutEventsEntry {
  readonly source: string;
  readonly detailType: string;
  /** The Detail string exactly as sent. */
  readonly detail: string;
  readonly eventBusName: string;
  readonly resources: string[];
  /** The entry's Time (the SDK sends epoch seconds) as an ISO-8601 string, when the caller set one. */
  readonly time?: string;
  readonly traceHeader?: string;
  readonly eventId: string;
  readonly receivedAt: string;
  /** The stub's record counter, shared with SNS publishes (see `SnsPublish.seq`). */
  readonly seq: number;
  /** Present when the PutEvents request was accepted but its reply failed (`faults.acceptThenFail`). */
  readonly replyFailed?: true;
}

/** An SQS message attribute. */
export interface SqsMessageAttribute {
  /** `String`, `Number`, `Binary`, or one of those with a `.<custom>` suffix. */
  readonly dataType: string;
  /** For the String and Number types. */
  readonly stringValue?: string;
  /** For the Binary type: the bytes, base64-encoded (as on the wire). */
  readonly binaryValue?: string;
}

/** One message of a queue as `AwsStub.queue(url).messages` shows it. */
export interface SqsMessageView {
  readonly messageId: string;
  readonly body: string;
  /** How many times the message has been received (ApproximateReceiveCount). */
  readonly receiveCount: number;
  /** Epoch milliseconds at which it was sent (SentTimestamp). */
  readonly sentTimestamp: number;
  /** `inFlight`: received and its visibility timeout not yet passed; `delayed`: DelaySeconds not yet passed. */
  readonly state: "visible" | "inFlight" | "delayed";
  readonly messageAttributes: Readonly<Record<string, SqsMessageAttribute>>;
}

/** A read-only, live view of one queue; a queue not created yet shows as empty. */
export interface SqsQueueView {
  /** The URL the queue was created under (the first one used for it), or the URL asked for. */
  readonly url: string;
  readonly exists: boolean;
  /** Every message still in the queue (visible, in flight or delayed), in the order sent. */
  readonly messages: readonly SqsMessageView[];
  /** messages.length */
  readonly depth: number;
  /** ApproximateNumberOfMessages: messages receivable now. */
  readonly visible: number;
  /** ApproximateNumberOfMessagesNotVisible: messages in flight. */
  readonly inFlight: number;
}

/** A message handed out by `AwsStub.receiveLocal`. */
export interface SqsReceivedMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly md5OfBody: string;
  /** ApproximateReceiveCount, this receive included. */
  readonly receiveCount: number;
  readonly sentTimestamp: number;
  readonly firstReceiveTimestamp: number;
  readonly messageAttributes: Readonly<Record<string, SqsMessageAttribute>>;
}

/** Queue settings for `AwsStub.configureQueue`; the two redrive fields go together. */
export interface SqsQueueConfig {
  /** The default visibility timeout of ReceiveMessage (30 unless set). */
  readonly visibilityTimeoutSeconds?: number;
  /** The default DelaySeconds of SendMessage (0 unless set). */
  readonly delaySeconds?: number;
  /** A message received more than this many times moves to `deadLetterUrl` on its next receive. */
  readonly maxReceiveCount?: number;
  readonly deadLetterUrl?: string;
}

export interface SqsSendOptions {
  readonly delaySeconds?: number;
  readonly messageAttributes?: Readonly<Record<string, SqsMessageAttribute>>;
}

export interface AwsStubOptions {
  /** Called (and awaited before the reply) for each Publish to a PhoneNumber, unless dropped. */
  readonly onSms?: Callback<SnsPublish>;
  /** Called (and awaited before the reply) for each Publish to a TopicArn or TargetArn. */
  readonly onTopicMessage?: Callback<SnsPublish>;
  /** Called (and awaited before the reply) for each PutEvents entry that succeeds. */
  readonly onEvent?: Callback<PutEventsEntry>;
  /**
   * The clock of the SQS queues (epoch milliseconds): visibility timeouts, delays and timestamps. Tests may
   * pass a hand-moved clock to step over a visibility timeout without waiting. Defaults to Date.now.
   */
  readonly now?: () => number;
}

/**
 * A running stub. Its fault-injection methods (`failNextPutEvents`, `failNextSqsBatchEntries`,
 * `failNextRequests`) and `faults` are a test seam; see `FaultInjection` and `FaultControl`.
 */
export interface AwsStub extends FaultInjection {
  /** `http://127.0.0.1:<port>`, for the `endpoint` of SNSClient and EventBridgeClient. */
  readonly endpoint: string;
  /** AWS_ENDPOINT_URL_SNS, AWS_ENDPOINT_URL_EVENTBRIDGE and AWS_ENDPOINT_URL_SQS, all set to `endpoint`. */
  readonly env: Readonly<
    Record<"AWS_ENDPOINT_URL_SNS" | "AWS_ENDPOINT_URL_EVENTBRIDGE" | "AWS_ENDPOINT_URL_SQS", string>
  >;
  /**
   * Accepted SNS Publish calls, in the order recorded (ascending seq); this includes the ones whose reply
   * was failed on purpose (`replyFailed`) and the SMS dropped past the spend limit (`dropped`).
   */
  readonly published: SnsPublish[];
  /**
   * Accepted PutEvents entries, in the order recorded (ascending seq), including those of a request whose
   * reply was failed on purpose (`replyFailed`); entries that failed are not here.
   */
  readonly events: PutEventsEntry[];
  /** The SMS attributes set so far through SetSMSAttributes. */
  readonly smsAttributes: Record<string, string>;
  /** HTTP requests received (including the ones failed on purpose). */
  readonly requests: number;
  /** Whether the server still listens (false once stop() has begun). */
  readonly listening: boolean;
  /** `${endpoint}/000000000000/${name}`: the URL CreateQueue and GetQueueUrl give for a queue name. */
  queueUrl(name: string): string;
  /** Creates the queue if needed and applies the settings; throws RangeError on a bad value. */
  configureQueue(url: string, config: SqsQueueConfig): void;
  /** A live read-only view of the queue at `url` (which is not created by asking). */
  queue(url: string): SqsQueueView;
  /** SendMessage without HTTP (and without failNextRequests); wakes long polls. Creates the queue. */
  sendLocal(url: string, body: string, options?: SqsSendOptions): { readonly messageId: string };
  /**
   * ReceiveMessage without HTTP and without waiting: up to `maxMessages` (1–10) visible messages, each made
   * invisible for `visibilityTimeoutSeconds` (the queue's default unless given). Creates the queue.
   */
  receiveLocal(url: string, maxMessages?: number, visibilityTimeoutSeconds?: number): SqsReceivedMessage[];
  /**
   * DeleteMessage without HTTP: true if the message was deleted, false if the handle is not the latest one
   * of a message still in the queue (as SQS, which then succeeds without deleting).
   */
  deleteLocal(url: string, receiptHandle: string): boolean;
  /** Every fault mode (including the three above), and what was injected so far. */
  readonly faults: FaultControl;
  /** Forgets what was received, every SQS queue, and every fault and its counts (not the seq counter). */
  reset(): void;
  /** Closes the server and every socket. Safe to call twice. */
  stop(): Promise<void>;
}
