/**
 * An in-process stand-in for the AWS services the engine talks to besides DynamoDB: SNS (Publish,
 * SetSMSAttributes; awsQuery protocol), EventBridge (PutEvents; awsJson1_1 protocol) and a minimal in-memory
 * SQS (awsJson1_0 protocol, `X-Amz-Target: AmazonSQS.<Action>`, errors with `__type` and the
 * `x-amzn-query-error` header the SDK's query-compatible error parsing reads). The real SDK v3 clients are
 * pointed at it through `endpoint` in their config, or AWS_ENDPOINT_URL_SNS / AWS_ENDPOINT_URL_EVENTBRIDGE /
 * AWS_ENDPOINT_URL_SQS (see `AwsStub.env`). SigV4 signatures are accepted without checking.
 *
 * SQS queues are addressed by QueueUrl. Any URL is accepted and its queue created on first use; two URLs with
 * the same path (`/<account>/<name>`) name the same queue, whatever their host. Messages keep SQS's
 * visibility-timeout semantics (a received message is invisible until its timeout passes, then is received
 * again with ApproximateReceiveCount incremented) and an optional redrive policy. There is no FIFO ordering,
 * deduplication or retention period.
 *
 * Used by the tests and by the local runtime, which renders each SMS, e-mail and event to files through the
 * callbacks as they arrive, and which can drive queue consumers through the in-process SQS API (`sendLocal`,
 * `receiveLocal`, `deleteLocal`) without HTTP. The stub never logs: message bodies and phone numbers are personal data.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

const SNS_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/";
const MAX_BODY_BYTES = 1024 * 1024;
const PUT_EVENTS_MAX_ENTRIES = 10;

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

type Callback<T> = (item: T) => void | Promise<void>;

export interface AwsStubOptions {
  /** Called (and awaited before the reply) for each Publish to a PhoneNumber. */
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

export interface AwsStub {
  /** `http://127.0.0.1:<port>`, for the `endpoint` of SNSClient and EventBridgeClient. */
  readonly endpoint: string;
  /** AWS_ENDPOINT_URL_SNS, AWS_ENDPOINT_URL_EVENTBRIDGE and AWS_ENDPOINT_URL_SQS, all set to `endpoint`. */
  readonly env: Readonly<
    Record<"AWS_ENDPOINT_URL_SNS" | "AWS_ENDPOINT_URL_EVENTBRIDGE" | "AWS_ENDPOINT_URL_SQS", string>
  >;
  /** Successful SNS Publish calls, in arrival order. */
  readonly published: SnsPublish[];
  /** Successful PutEvents entries, in arrival order (entries that failed are not here). */
  readonly events: PutEventsEntry[];
  /** The SMS attributes set so far through SetSMSAttributes. */
  readonly smsAttributes: Record<string, string>;
  /** HTTP requests received (including the ones failed on purpose). */
  readonly requests: number;
  /** Whether the server still listens (false once stop() has begun). */
  readonly listening: boolean;
  /** The next `count` PutEvents entries fail inside a 200 reply, with this ErrorCode. */
  failNextPutEvents(count: number, errorCode?: string): void;
  /**
   * The next `count` SendMessageBatch or DeleteMessageBatch entries fail inside a 200 reply (listed under
   * Failed with this Code and SenderFault false); nothing is sent or deleted for them.
   */
  failNextSqsBatchEntries(count: number, errorCode?: string): void;
  /**
   * The next `count` HTTP requests, to any service, fail with a throttling error: SNS an awsQuery XML
   * error with Code `Throttling`, EventBridge a JSON error with __type `ThrottlingException`, SQS a JSON
   * error with __type `com.amazonaws.sqs#RequestThrottled` (and x-amzn-query-error `RequestThrottled`), all
   * with this HTTP status (400, 429 or 5xx are all retried by the SDK).
   */
  failNextRequests(count: number, status?: number): void;
  /** `${endpoint}/000000000000/${name}`: the URL CreateQueue and GetQueueUrl give for a queue name. */
  queueUrl(name: string): string;
  /** Creates the queue if needed and applies the settings; throws RangeError on a bad value. */
  configureQueue(url: string, config: SqsQueueConfig): void;
  /** A live read-only view of the queue at `url` (which is not created by asking). */
  queue(url: string): SqsQueueView;
  /** SendMessage without HTTP (and without failNextRequests); wakes long polls. Creates the queue. */
  sendLocal(url: string, body: string, options?: SqsSendOptions): { readonly messageId: string };
  /**
   * ReceiveMessage without HTTP and without waiting: up to `max` (1–10) visible messages, each made
   * invisible for `visibilityTimeoutSeconds` (the queue's default unless given). Creates the queue.
   */
  receiveLocal(url: string, max?: number, visibilityTimeoutSeconds?: number): SqsReceivedMessage[];
  /**
   * DeleteMessage without HTTP: true if the message was deleted, false if the handle is not the latest one
   * of a message still in the queue (as SQS, which then succeeds without deleting).
   */
  deleteLocal(url: string, receiptHandle: string): boolean;
  /** Forgets what was received, every SQS queue, and any fault still pending. */
  reset(): void;
  /** Closes the server and every socket. Safe to call twice. */
  stop(): Promise<void>;
}

/** A failure to report to the caller as a service error. */
class StubError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fault: "Sender" | "Receiver" = status >= 500 ? "Receiver" : "Sender",
    /** The awsQuery error code, for SQS's x-amzn-query-error header. */
    readonly queryCode: string = code,
  ) {
    super(message);
  }
}

function xmlEscape(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) {
        reject(
          new StubError(413, "RequestEntityTooLarge", `Request body larger than ${MAX_BODY_BYTES} bytes`),
        );
      } else {
        resolve(Buffer.concat(chunks).toString("utf8"));
      }
    });
    req.on("error", reject);
  });
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  requestId: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(status, {
    ...headers,
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
    "x-amzn-requestid": requestId,
  });
  res.end(body);
}

function sendSnsXml(res: ServerResponse, action: string, result: string, requestId: string): void {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<${action}Response xmlns="${SNS_XMLNS}">${result}` +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
  send(res, 200, "text/xml", body, requestId);
}

function sendSnsError(res: ServerResponse, error: StubError, requestId: string): void {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<ErrorResponse xmlns="${SNS_XMLNS}"><Error><Type>${error.fault}</Type>` +
    `<Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message></Error>` +
    `<RequestId>${requestId}</RequestId></ErrorResponse>`;
  send(res, error.status, "text/xml", body, requestId);
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  requestId: string,
  contentType = "application/x-amz-json-1.1",
  headers: Readonly<Record<string, string>> = {},
): void {
  send(res, status, contentType, JSON.stringify(value), requestId, headers);
}

function sendJsonError(res: ServerResponse, error: StubError, requestId: string): void {
  sendJson(res, error.status, { __type: error.code, message: error.message }, requestId);
}

function sendSqsError(res: ServerResponse, error: StubError, requestId: string): void {
  sendJson(
    res,
    error.status,
    { __type: `com.amazonaws.sqs#${error.code}`, message: error.message },
    requestId,
    SQS_CONTENT_TYPE,
    { "x-amzn-query-error": `${error.queryCode};${error.fault}` },
  );
}

/** Decodes `<prefix>.entry.N.<rest>` keys of an awsQuery map into N → {rest → value}. */
function queryMapEntries(form: URLSearchParams, prefix: string): Map<number, Map<string, string>> {
  const entries = new Map<number, Map<string, string>>();
  const head = `${prefix}.entry.`;
  for (const [key, value] of form) {
    if (!key.startsWith(head)) continue;
    const rest = key.slice(head.length);
    const dot = rest.indexOf(".");
    if (dot < 0) continue;
    const index = Number(rest.slice(0, dot));
    if (!Number.isInteger(index)) continue;
    let entry = entries.get(index);
    if (!entry) {
      entry = new Map();
      entries.set(index, entry);
    }
    entry.set(rest.slice(dot + 1), value);
  }
  return new Map([...entries].sort(([a], [b]) => a - b));
}

function optional<K extends string>(key: K, value: string | null): { [P in K]?: string } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: string };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------------------
// SQS

const SQS_TARGET_PREFIX = "AmazonSQS.";
const SQS_CONTENT_TYPE = "application/x-amz-json-1.0";
const SQS_ACCOUNT = "000000000000";
const SQS_REGION = "us-east-1";
/** The long-standing default MaximumMessageSize; stricter than the newest limit, which is safe locally. */
const SQS_MAX_MESSAGE_BYTES = 256 * 1024;
const SQS_MAX_BATCH_ENTRIES = 10;
const SQS_MAX_MESSAGE_ATTRIBUTES = 10;
const SQS_DEFAULT_VISIBILITY_SECONDS = 30;
const SQS_MAX_VISIBILITY_SECONDS = 43_200;
const SQS_MAX_DELAY_SECONDS = 900;
const SQS_MAX_WAIT_SECONDS = 20;
const SQS_MAX_RECEIVE_COUNT = 1000;
/** How often a long poll looks again for a message whose visibility timeout or delay has passed. */
const SQS_POLL_MS = 50;
const SQS_BATCH_ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;
const SQS_QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$|^[A-Za-z0-9_-]{1,75}\.fifo$/;
/** Characters SQS refuses in a message body: anything outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. */
const SQS_INVALID_BODY_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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

function sqsError(name: keyof typeof SQS_ERRORS, message: string): StubError {
  const [queryCode, status] = SQS_ERRORS[name];
  return new StubError(status, name, message, undefined, queryCode);
}

function md5Hex(data: string | Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

/**
 * MD5OfMessageAttributes as SQS computes it: over the attributes sorted by name, each as the name, the data
 * type (both length-prefixed UTF-8), a transport byte (1 string, 2 binary) and the length-prefixed value.
 */
function md5OfMessageAttributes(attributes: Readonly<Record<string, SqsMessageAttribute>>): string {
  const parts: Buffer[] = [];
  const prefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const attribute = attributes[name];
    if (attribute === undefined) continue;
    prefixed(Buffer.from(name, "utf8"));
    prefixed(Buffer.from(attribute.dataType, "utf8"));
    if (attribute.binaryValue !== undefined) {
      parts.push(Buffer.from([2]));
      prefixed(Buffer.from(attribute.binaryValue, "base64"));
    } else {
      parts.push(Buffer.from([1]));
      prefixed(Buffer.from(attribute.stringValue ?? "", "utf8"));
    }
  }
  return md5Hex(Buffer.concat(parts));
}

/** The queue a URL names: its path (`/<account>/<name>`) when it has one, else the whole string. */
function queueKey(url: string): string {
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
function receiptHandleMessageId(handle: string): string | undefined {
  const [messageId, nonce, ...rest] = Buffer.from(handle, "base64url").toString("utf8").split(" ");
  if (rest.length > 0 || messageId === undefined || nonce === undefined) return undefined;
  return UUID.test(messageId) && UUID.test(nonce) ? messageId : undefined;
}

interface StoredMessage {
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly messageAttributes: Readonly<Record<string, SqsMessageAttribute>>;
  readonly sentTimestamp: number;
  receiveCount: number;
  firstReceiveTimestamp: number | undefined;
  /** Epoch ms from which the message can be received (its delay or visibility timeout ends). */
  visibleAt: number;
  /** The handle of the latest receive; undefined before the first. */
  receiptHandle: string | undefined;
}

interface StoredQueue {
  readonly url: string;
  readonly name: string;
  readonly arn: string;
  readonly createdTimestamp: number;
  readonly messages: StoredMessage[];
  visibilityTimeoutSeconds: number;
  delaySeconds: number;
  redrive: { readonly maxReceiveCount: number; readonly deadLetterUrl: string } | undefined;
}

interface SendInput {
  readonly body: string;
  readonly delaySeconds: number | undefined;
  readonly messageAttributes: Readonly<Record<string, SqsMessageAttribute>>;
}

type Json = Record<string, unknown>;

function messageState(message: StoredMessage, now: number): SqsMessageView["state"] {
  if (message.visibleAt <= now) return "visible";
  return message.receiveCount > 0 ? "inFlight" : "delayed";
}

function requiredString(input: Json, name: string): string {
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

function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw sqsError(
      "InvalidParameterValue",
      `Value ${String(value)} for parameter ${name} is invalid. Reason: Must be between ${min} and ${max}, if provided.`,
    );
  }
  return value;
}

function optionalInteger(input: Json, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  return value === undefined || value === null ? undefined : integerIn(name, value, min, max);
}

function stringList(input: Json, name: string): string[] {
  const value = input[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function parseMessageAttributes(value: unknown): Record<string, SqsMessageAttribute> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    throw sqsError("InvalidParameterValue", "MessageAttributes must be a map of attribute name to value.");
  }
  const names = Object.keys(value);
  if (names.length > SQS_MAX_MESSAGE_ATTRIBUTES) {
    throw sqsError(
      "InvalidParameterValue",
      `Number of message attributes [${names.length}] exceeds the allowed maximum [${SQS_MAX_MESSAGE_ATTRIBUTES}].`,
    );
  }
  const attributes: Record<string, SqsMessageAttribute> = {};
  for (const name of names) {
    const raw = value[name];
    const dataType = isRecord(raw) ? raw.DataType : undefined;
    if (!isRecord(raw) || typeof dataType !== "string" || dataType === "") {
      throw sqsError(
        "InvalidParameterValue",
        `The message attribute '${name}' must contain a non-empty DataType.`,
      );
    }
    const binary = dataType === "Binary" || dataType.startsWith("Binary.");
    const attributeValue = binary ? raw.BinaryValue : raw.StringValue;
    if (typeof attributeValue !== "string") {
      throw sqsError(
        "InvalidParameterValue",
        `The message attribute '${name}' with type '${dataType}' must use field '${binary ? "Binary" : "String"}'.`,
      );
    }
    attributes[name] = binary
      ? { dataType, binaryValue: attributeValue }
      : { dataType, stringValue: attributeValue };
  }
  return attributes;
}

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

function messageAttributesSize(attributes: Readonly<Record<string, SqsMessageAttribute>>): number {
  let size = 0;
  for (const [name, attribute] of Object.entries(attributes)) {
    size += Buffer.byteLength(name) + Buffer.byteLength(attribute.dataType);
    size +=
      attribute.binaryValue !== undefined
        ? Buffer.from(attribute.binaryValue, "base64").length
        : Buffer.byteLength(attribute.stringValue ?? "");
  }
  return size;
}

/** The entries of a batch request, after the checks SQS makes on the batch as a whole. */
function batchEntries(input: Json, entryName: string): Json[] {
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

/** Selects the message attributes ReceiveMessage's MessageAttributeNames asks for (`All`, `.*`, `prefix.*`). */
function selectMessageAttributes(
  attributes: Readonly<Record<string, SqsMessageAttribute>>,
  names: readonly string[],
): Record<string, SqsMessageAttribute> {
  const wanted = (name: string) =>
    names.some(
      (pattern) =>
        pattern === "All" ||
        pattern === ".*" ||
        pattern === name ||
        (pattern.endsWith(".*") && name.startsWith(pattern.slice(0, -1))),
    );
  const selected: Record<string, SqsMessageAttribute> = {};
  for (const [name, attribute] of Object.entries(attributes)) {
    if (wanted(name)) selected[name] = attribute;
  }
  return selected;
}

function wireMessageAttributes(attributes: Readonly<Record<string, SqsMessageAttribute>>): Json {
  const wire: Json = {};
  for (const [name, attribute] of Object.entries(attributes)) {
    wire[name] =
      attribute.binaryValue !== undefined
        ? { DataType: attribute.dataType, BinaryValue: attribute.binaryValue }
        : { DataType: attribute.dataType, StringValue: attribute.stringValue ?? "" };
  }
  return wire;
}

/** The in-memory queues, shared by the HTTP handler and the in-process API. */
class SqsModel {
  private readonly queues = new Map<string, StoredQueue>();
  private readonly waiters = new Set<() => void>();
  private batchFailures = { remaining: 0, code: "" };
  private stopped = false;

  constructor(
    private readonly endpoint: string,
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
        createdTimestamp: this.now(),
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
    const size = Buffer.byteLength(input.body) + messageAttributesSize(input.messageAttributes);
    if (size > SQS_MAX_MESSAGE_BYTES) {
      throw sqsError(
        "InvalidParameterValue",
        `One or more parameters are invalid. Reason: Message must be shorter than ${SQS_MAX_MESSAGE_BYTES} bytes.`,
      );
    }
    const now = this.now();
    const message: StoredMessage = {
      messageId: randomUUID(),
      body: input.body,
      md5OfBody: md5Hex(input.body),
      messageAttributes: input.messageAttributes,
      sentTimestamp: now,
      receiveCount: 0,
      firstReceiveTimestamp: undefined,
      visibleAt: now + (input.delaySeconds ?? queue.delaySeconds) * 1000,
      receiptHandle: undefined,
    };
    queue.messages.push(message);
    this.wake();
    return message;
  }

  /** Receives without waiting; moves to the dead-letter queue what has been received too often. */
  receive(
    queue: StoredQueue,
    max: number,
    visibilityTimeoutSeconds: number | undefined,
  ): SqsReceivedMessage[] {
    const now = this.now();
    const timeout = visibilityTimeoutSeconds ?? queue.visibilityTimeoutSeconds;
    const received: SqsReceivedMessage[] = [];
    for (let i = 0; i < queue.messages.length && received.length < max; ) {
      const message = queue.messages[i];
      if (message === undefined || message.visibleAt > now) {
        i += 1;
        continue;
      }
      if (queue.redrive && message.receiveCount >= queue.redrive.maxReceiveCount) {
        const deadLetter = this.queueFor(queue.redrive.deadLetterUrl);
        if (deadLetter !== queue) {
          queue.messages.splice(i, 1);
          message.receiptHandle = undefined;
          deadLetter.messages.push(message);
          continue;
        }
      }
      message.receiveCount += 1;
      message.firstReceiveTimestamp ??= now;
      message.visibleAt = now + timeout * 1000;
      const receiptHandle = newReceiptHandle(message.messageId);
      message.receiptHandle = receiptHandle;
      received.push({
        messageId: message.messageId,
        receiptHandle,
        body: message.body,
        md5OfBody: message.md5OfBody,
        receiveCount: message.receiveCount,
        sentTimestamp: message.sentTimestamp,
        firstReceiveTimestamp: message.firstReceiveTimestamp,
        messageAttributes: message.messageAttributes,
      });
      i += 1;
    }
    return received;
  }

  /** Receives, waiting up to `waitSeconds` (real time) for a message while none is visible. */
  async receiveWaiting(
    url: string,
    max: number,
    visibilityTimeoutSeconds: number | undefined,
    waitSeconds: number,
    callerGone: () => boolean,
  ): Promise<SqsReceivedMessage[]> {
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      if (this.stopped || callerGone()) return [];
      const received = this.receive(this.queueFor(url), max, visibilityTimeoutSeconds);
      const left = deadline - Date.now();
      if (received.length > 0 || left <= 0) return received;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(SQS_POLL_MS, left));
        this.waiters.add(done);
      });
    }
  }

  private findByHandle(queue: StoredQueue, receiptHandle: string): StoredMessage | undefined {
    const messageId = receiptHandleMessageId(receiptHandle);
    if (messageId === undefined) {
      throw sqsError(
        "ReceiptHandleIsInvalid",
        `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`,
      );
    }
    const message = queue.messages.find((m) => m.messageId === messageId);
    return message?.receiptHandle === receiptHandle ? message : undefined;
  }

  /** Deletes the message if the handle is its latest; a stale handle deletes nothing, without error. */
  delete(queue: StoredQueue, receiptHandle: string): boolean {
    const message = this.findByHandle(queue, receiptHandle);
    if (!message) return false;
    queue.messages.splice(queue.messages.indexOf(message), 1);
    return true;
  }

  changeVisibility(queue: StoredQueue, receiptHandle: string, seconds: number): void {
    const message = this.findByHandle(queue, receiptHandle);
    if (!message) {
      throw sqsError(
        "InvalidParameterValue",
        `Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.`,
      );
    }
    const now = this.now();
    if (message.visibleAt <= now) {
      throw sqsError("MessageNotInflight", "The message referred to isn't in flight.");
    }
    message.visibleAt = now + seconds * 1000;
    if (seconds === 0) this.wake();
  }

  /** Applies queue attributes as CreateQueue and SetQueueAttributes take them (strings); ignores the rest. */
  applyAttributes(queue: StoredQueue, attributes: unknown): void {
    if (attributes === undefined || attributes === null) return;
    if (!isRecord(attributes)) throw sqsError("InvalidAttributeValue", "Attributes must be a map.");
    const integer = (name: string, value: unknown, max: number): number => {
      if (typeof value !== "string" || !/^\d+$/.test(value) || Number(value) > max) {
        throw sqsError("InvalidAttributeValue", `Invalid value for the parameter ${name}.`);
      }
      return Number(value);
    };
    const { VisibilityTimeout, DelaySeconds, RedrivePolicy } = attributes;
    if (VisibilityTimeout !== undefined) {
      queue.visibilityTimeoutSeconds = integer(
        "VisibilityTimeout",
        VisibilityTimeout,
        SQS_MAX_VISIBILITY_SECONDS,
      );
    }
    if (DelaySeconds !== undefined) {
      queue.delaySeconds = integer("DelaySeconds", DelaySeconds, SQS_MAX_DELAY_SECONDS);
    }
    if (RedrivePolicy === "") {
      queue.redrive = undefined;
    } else if (RedrivePolicy !== undefined) {
      const invalid = () =>
        sqsError("InvalidAttributeValue", "Invalid value for the parameter RedrivePolicy.");
      let policy: unknown;
      try {
        policy = typeof RedrivePolicy === "string" ? JSON.parse(RedrivePolicy) : undefined;
      } catch {
        throw invalid();
      }
      const arn = isRecord(policy) ? policy.deadLetterTargetArn : undefined;
      const count = isRecord(policy) ? Number(policy.maxReceiveCount) : Number.NaN;
      const match = typeof arn === "string" ? /^arn:aws[\w-]*:sqs:[^:]*:([^:]+):([^:]+)$/.exec(arn) : null;
      if (!match || !Number.isInteger(count) || count < 1 || count > SQS_MAX_RECEIVE_COUNT) throw invalid();
      this.setRedrive(queue, count, `${this.endpoint}/${match[1]}/${match[2]}`);
    }
  }

  setRedrive(queue: StoredQueue, maxReceiveCount: number, deadLetterUrl: string): void {
    const deadLetter = this.queueFor(deadLetterUrl);
    if (deadLetter === queue) {
      throw sqsError("InvalidAttributeValue", "A queue cannot be its own dead-letter queue.");
    }
    queue.redrive = { maxReceiveCount, deadLetterUrl: deadLetter.url };
  }

  failNextBatchEntries(count: number, code: string): void {
    this.batchFailures = { remaining: Math.max(0, Math.trunc(count)), code };
  }

  /** The injected failure for the next batch entry, if one is pending. */
  private takeBatchFailure(id: string): Json | undefined {
    if (this.batchFailures.remaining <= 0) return undefined;
    this.batchFailures.remaining -= 1;
    const code = this.batchFailures.code;
    return { Id: id, SenderFault: false, Code: code, Message: `Injected failure (${code}) by aws-stub` };
  }

  view(url: string): SqsQueueView {
    const model = this;
    const snapshot = () => {
      const now = model.now();
      return (model.existing(url)?.messages ?? []).map(
        (m): SqsMessageView => ({
          messageId: m.messageId,
          body: m.body,
          receiveCount: m.receiveCount,
          sentTimestamp: m.sentTimestamp,
          state: messageState(m, now),
          messageAttributes: m.messageAttributes,
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
        return snapshot().filter((m) => m.state === "visible").length;
      },
      get inFlight() {
        return snapshot().filter((m) => m.state === "inFlight").length;
      },
    };
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  reset(): void {
    this.queues.clear();
    this.batchFailures = { remaining: 0, code: "" };
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  /** One SQS action received over HTTP; returns the JSON reply. */
  async handle(action: string, input: Json, callerGone: () => boolean): Promise<Json> {
    switch (action) {
      case "SendMessage": {
        const message = this.send(this.queueFor(requiredString(input, "QueueUrl")), parseSendInput(input));
        return {
          MessageId: message.messageId,
          MD5OfMessageBody: message.md5OfBody,
          ...this.attributesDigest(message.messageAttributes),
        };
      }
      case "SendMessageBatch": {
        const queue = this.queueFor(requiredString(input, "QueueUrl"));
        const entries = batchEntries(input, "SendMessageBatchRequestEntry");
        const size = entries.reduce(
          (sum, entry) =>
            sum + (typeof entry.MessageBody === "string" ? Buffer.byteLength(entry.MessageBody) : 0),
          0,
        );
        if (size > SQS_MAX_MESSAGE_BYTES) {
          throw sqsError(
            "BatchRequestTooLong",
            `Batch requests cannot be longer than ${SQS_MAX_MESSAGE_BYTES} bytes. You have sent ${size} bytes.`,
          );
        }
        const Successful: Json[] = [];
        const Failed: Json[] = [];
        for (const entry of entries) {
          const id = String(entry.Id);
          const injected = this.takeBatchFailure(id);
          if (injected) {
            Failed.push(injected);
            continue;
          }
          try {
            const message = this.send(queue, parseSendInput(entry));
            Successful.push({
              Id: id,
              MessageId: message.messageId,
              MD5OfMessageBody: message.md5OfBody,
              ...this.attributesDigest(message.messageAttributes),
            });
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
      case "ReceiveMessage": {
        const url = requiredString(input, "QueueUrl");
        const max = optionalInteger(input, "MaxNumberOfMessages", 1, SQS_MAX_BATCH_ENTRIES) ?? 1;
        const visibility = optionalInteger(input, "VisibilityTimeout", 0, SQS_MAX_VISIBILITY_SECONDS);
        const wait = optionalInteger(input, "WaitTimeSeconds", 0, SQS_MAX_WAIT_SECONDS) ?? 0;
        const systemNames = [
          ...stringList(input, "AttributeNames"),
          ...stringList(input, "MessageSystemAttributeNames"),
        ];
        const attributeNames = stringList(input, "MessageAttributeNames");
        const received = await this.receiveWaiting(url, max, visibility, wait, callerGone);
        if (received.length === 0) return {};
        const wanted = (name: string) => systemNames.includes("All") || systemNames.includes(name);
        return {
          Messages: received.map((message) => {
            const Attributes: Record<string, string> = {};
            if (wanted("ApproximateReceiveCount"))
              Attributes.ApproximateReceiveCount = String(message.receiveCount);
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
                ? { MessageAttributes: wireMessageAttributes(selected), ...this.attributesDigest(selected) }
                : {}),
            };
          }),
        };
      }
      case "DeleteMessage": {
        const queue = this.queueFor(requiredString(input, "QueueUrl"));
        this.delete(queue, requiredString(input, "ReceiptHandle"));
        return {};
      }
      case "DeleteMessageBatch": {
        const queue = this.queueFor(requiredString(input, "QueueUrl"));
        const Successful: Json[] = [];
        const Failed: Json[] = [];
        for (const entry of batchEntries(input, "DeleteMessageBatchRequestEntry")) {
          const id = String(entry.Id);
          const injected = this.takeBatchFailure(id);
          if (injected) {
            Failed.push(injected);
            continue;
          }
          try {
            this.delete(queue, requiredString(entry, "ReceiptHandle"));
            Successful.push({ Id: id });
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
      case "ChangeMessageVisibility": {
        const queue = this.queueFor(requiredString(input, "QueueUrl"));
        const receiptHandle = requiredString(input, "ReceiptHandle");
        if (input.VisibilityTimeout === undefined) {
          throw sqsError("MissingParameter", "The request must contain the parameter VisibilityTimeout.");
        }
        const seconds = integerIn(
          "VisibilityTimeout",
          input.VisibilityTimeout,
          0,
          SQS_MAX_VISIBILITY_SECONDS,
        );
        this.changeVisibility(queue, receiptHandle, seconds);
        return {};
      }
      case "GetQueueAttributes": {
        const queue = this.queueFor(requiredString(input, "QueueUrl"));
        const names = stringList(input, "AttributeNames");
        const now = this.now();
        const count = (state: SqsMessageView["state"]) =>
          String(queue.messages.filter((m) => messageState(m, now) === state).length);
        const all: Record<string, () => string | undefined> = {
          ApproximateNumberOfMessages: () => count("visible"),
          ApproximateNumberOfMessagesNotVisible: () => count("inFlight"),
          ApproximateNumberOfMessagesDelayed: () => count("delayed"),
          VisibilityTimeout: () => String(queue.visibilityTimeoutSeconds),
          DelaySeconds: () => String(queue.delaySeconds),
          QueueArn: () => queue.arn,
          CreatedTimestamp: () => String(Math.floor(queue.createdTimestamp / 1000)),
          MaximumMessageSize: () => String(SQS_MAX_MESSAGE_BYTES),
          RedrivePolicy: () => {
            const redrive = queue.redrive;
            if (!redrive) return undefined;
            const deadLetterTargetArn = this.queueFor(redrive.deadLetterUrl).arn;
            return JSON.stringify({ deadLetterTargetArn, maxReceiveCount: redrive.maxReceiveCount });
          },
        };
        const Attributes: Record<string, string> = {};
        for (const [name, value] of Object.entries(all)) {
          if (!names.includes("All") && !names.includes(name)) continue;
          const text = value();
          if (text !== undefined) Attributes[name] = text;
        }
        return Object.keys(Attributes).length > 0 ? { Attributes } : {};
      }
      case "SetQueueAttributes": {
        const queue = this.queueFor(requiredString(input, "QueueUrl"));
        this.applyAttributes(queue, input.Attributes);
        return {};
      }
      case "GetQueueUrl": {
        const name = requiredString(input, "QueueName");
        const owner = input.QueueOwnerAWSAccountId;
        const queue = this.existing(
          `/${typeof owner === "string" && owner !== "" ? owner : SQS_ACCOUNT}/${name}`,
        );
        if (!queue) throw sqsError("QueueDoesNotExist", "The specified queue does not exist.");
        return { QueueUrl: queue.url };
      }
      case "CreateQueue": {
        const name = requiredString(input, "QueueName");
        if (!SQS_QUEUE_NAME.test(name)) {
          throw sqsError(
            "InvalidParameterValue",
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
          );
        }
        const queue = this.queueFor(this.queueUrl(name));
        this.applyAttributes(queue, input.Attributes);
        return { QueueUrl: queue.url };
      }
      default:
        throw sqsError(
          "UnsupportedOperation",
          `aws-stub does not implement SQS ${action || "(none)"}; it implements SendMessage, SendMessageBatch, ReceiveMessage, DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility, GetQueueAttributes, SetQueueAttributes, GetQueueUrl and CreateQueue.`,
        );
    }
  }

  private attributesDigest(attributes: Readonly<Record<string, SqsMessageAttribute>>): Json {
    return Object.keys(attributes).length > 0
      ? { MD5OfMessageAttributes: md5OfMessageAttributes(attributes) }
      : {};
  }
}

/** Starts the stub on a free loopback port. */
export async function startAwsStub(options: AwsStubOptions = {}): Promise<AwsStub> {
  const published: SnsPublish[] = [];
  const events: PutEventsEntry[] = [];
  const smsAttributes: Record<string, string> = {};
  let requests = 0;
  let putEventsFailures: { remaining: number; errorCode: string } = { remaining: 0, errorCode: "" };
  let requestFailures: { remaining: number; status: number } = { remaining: 0, status: 500 };

  async function runCallback<T>(callback: Callback<T> | undefined, item: T): Promise<void> {
    if (!callback) return;
    try {
      await callback(item);
    } catch (error) {
      const reason = error instanceof Error ? error.name : "non-Error value";
      throw new StubError(500, "InternalFailure", `aws-stub callback failed (${reason})`);
    }
  }

  async function handleSns(form: URLSearchParams, res: ServerResponse, requestId: string): Promise<void> {
    const action = form.get("Action") ?? "";
    switch (action) {
      case "Publish": {
        const message = form.get("Message");
        if (message === null) {
          throw new StubError(400, "InvalidParameter", "Invalid parameter: Message is required");
        }
        const targets = ["PhoneNumber", "TopicArn", "TargetArn"].filter((name) => form.get(name) !== null);
        if (targets.length !== 1) {
          throw new StubError(
            400,
            "InvalidParameter",
            "Invalid parameter: exactly one of PhoneNumber, TopicArn or TargetArn is required",
          );
        }
        const messageAttributes: Record<string, SnsMessageAttribute> = {};
        for (const entry of queryMapEntries(form, "MessageAttributes").values()) {
          const name = entry.get("Name");
          if (name === undefined) continue;
          const binaryValue = entry.get("Value.BinaryValue");
          messageAttributes[name] = {
            dataType: entry.get("Value.DataType") ?? "",
            stringValue: entry.get("Value.StringValue") ?? "",
            ...(binaryValue === undefined ? {} : { binaryValue }),
          };
        }
        const publish: SnsPublish = {
          action: "Publish",
          ...optional("phoneNumber", form.get("PhoneNumber")),
          ...optional("topicArn", form.get("TopicArn")),
          ...optional("targetArn", form.get("TargetArn")),
          ...optional("subject", form.get("Subject")),
          message,
          ...optional("messageStructure", form.get("MessageStructure")),
          ...optional("messageGroupId", form.get("MessageGroupId")),
          ...optional("messageDeduplicationId", form.get("MessageDeduplicationId")),
          messageAttributes,
          messageId: randomUUID(),
          receivedAt: new Date().toISOString(),
        };
        published.push(publish);
        await runCallback(
          publish.phoneNumber === undefined ? options.onTopicMessage : options.onSms,
          publish,
        );
        sendSnsXml(
          res,
          "Publish",
          `<PublishResult><MessageId>${publish.messageId}</MessageId></PublishResult>`,
          requestId,
        );
        return;
      }
      case "SetSMSAttributes": {
        // The SDK sends this map in lower case: attributes.entry.N.key / attributes.entry.N.value.
        for (const entry of queryMapEntries(form, "attributes").values()) {
          const key = entry.get("key");
          const value = entry.get("value");
          if (key !== undefined && value !== undefined) smsAttributes[key] = value;
        }
        sendSnsXml(res, "SetSMSAttributes", "<SetSMSAttributesResult/>", requestId);
        return;
      }
      default:
        throw new StubError(
          400,
          "InvalidAction",
          `The action ${action || "(none)"} is not valid for this endpoint (aws-stub implements Publish and SetSMSAttributes).`,
        );
    }
  }

  async function handlePutEvents(body: string, res: ServerResponse, requestId: string): Promise<void> {
    let input: unknown;
    try {
      input = JSON.parse(body);
    } catch {
      throw new StubError(400, "SerializationException", "Request body is not valid JSON");
    }
    const entries = isRecord(input) ? input.Entries : undefined;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > PUT_EVENTS_MAX_ENTRIES) {
      throw new StubError(
        400,
        "ValidationException",
        `Entries must be a list of 1 to ${PUT_EVENTS_MAX_ENTRIES} entries`,
      );
    }
    const results: Record<string, string>[] = [];
    let failed = 0;
    for (const raw of entries) {
      const entry: Record<string, unknown> = isRecord(raw) ? raw : {};
      const fail = (ErrorCode: string, ErrorMessage: string) => {
        failed += 1;
        results.push({ ErrorCode, ErrorMessage });
      };
      if (putEventsFailures.remaining > 0) {
        putEventsFailures.remaining -= 1;
        fail(putEventsFailures.errorCode, `Injected failure (${putEventsFailures.errorCode}) by aws-stub`);
        continue;
      }
      const { Source, DetailType, Detail, EventBusName, Resources, Time, TraceHeader } = entry;
      if (typeof Source !== "string" || Source === "") {
        fail("InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument.");
        continue;
      }
      if (typeof DetailType !== "string" || DetailType === "") {
        fail(
          "InvalidArgument",
          "Parameter DetailType is not valid. Reason: DetailType is a required argument.",
        );
        continue;
      }
      if (typeof Detail !== "string") {
        fail("InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument.");
        continue;
      }
      let detailIsObject = false;
      try {
        detailIsObject = isRecord(JSON.parse(Detail));
      } catch {
        detailIsObject = false;
      }
      if (!detailIsObject) {
        fail("MalformedDetail", "Detail is malformed.");
        continue;
      }
      const event: PutEventsEntry = {
        source: Source,
        detailType: DetailType,
        detail: Detail,
        eventBusName: typeof EventBusName === "string" && EventBusName !== "" ? EventBusName : "default",
        resources: Array.isArray(Resources)
          ? Resources.filter((r): r is string => typeof r === "string")
          : [],
        ...(typeof Time === "number" ? { time: new Date(Time * 1000).toISOString() } : {}),
        ...(typeof TraceHeader === "string" ? { traceHeader: TraceHeader } : {}),
        eventId: randomUUID(),
        receivedAt: new Date().toISOString(),
      };
      events.push(event);
      await runCallback(options.onEvent, event);
      results.push({ EventId: event.eventId });
    }
    sendJson(res, 200, { FailedEntryCount: failed, Entries: results }, requestId);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requests += 1;
    const requestId = randomUUID();
    const header = req.headers["x-amz-target"];
    const target = typeof header === "string" ? header : undefined;
    const service =
      target === undefined ? "sns" : target.startsWith(SQS_TARGET_PREFIX) ? "sqs" : "eventbridge";
    const fail = (error: StubError) => {
      if (service === "sns") sendSnsError(res, error, requestId);
      else if (service === "sqs") sendSqsError(res, error, requestId);
      else sendJsonError(res, error, requestId);
    };
    try {
      const body = await readBody(req);
      if (requestFailures.remaining > 0) {
        requestFailures.remaining -= 1;
        const code = { sns: "Throttling", eventbridge: "ThrottlingException", sqs: "RequestThrottled" }[
          service
        ];
        throw new StubError(requestFailures.status, code, "Rate exceeded (injected by aws-stub)");
      }
      if (req.method !== "POST") {
        throw new StubError(405, "MethodNotAllowed", "aws-stub only accepts POST");
      }
      if (service === "sqs") {
        let input: unknown;
        try {
          input = JSON.parse(body === "" ? "{}" : body);
        } catch {
          throw new StubError(400, "SerializationException", "Request body is not valid JSON");
        }
        const gone = () => res.destroyed || req.socket.destroyed;
        const reply = await sqs.handle(
          (target ?? "").slice(SQS_TARGET_PREFIX.length),
          isRecord(input) ? input : {},
          gone,
        );
        if (!gone()) sendJson(res, 200, reply, requestId, SQS_CONTENT_TYPE);
      } else if (service === "eventbridge") {
        if (target !== "AWSEvents.PutEvents") {
          throw new StubError(
            400,
            "UnknownOperationException",
            "aws-stub implements only AWSEvents.PutEvents for EventBridge",
          );
        }
        await handlePutEvents(body, res, requestId);
      } else {
        await handleSns(new URLSearchParams(body), res, requestId);
      }
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      fail(
        error instanceof StubError
          ? error
          : new StubError(500, "InternalFailure", "aws-stub failed to handle the request"),
      );
    }
  }

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const sqs = new SqsModel(endpoint, options.now ?? Date.now);

  let stopping: Promise<void> | undefined;

  return {
    endpoint,
    env: {
      AWS_ENDPOINT_URL_SNS: endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: endpoint,
      AWS_ENDPOINT_URL_SQS: endpoint,
    },
    published,
    events,
    smsAttributes,
    get requests() {
      return requests;
    },
    get listening() {
      return server.listening;
    },
    failNextPutEvents(count: number, errorCode = "InternalFailure") {
      putEventsFailures = { remaining: Math.max(0, Math.trunc(count)), errorCode };
    },
    failNextSqsBatchEntries(count: number, errorCode = "InternalError") {
      sqs.failNextBatchEntries(count, errorCode);
    },
    failNextRequests(count: number, status = 500) {
      requestFailures = { remaining: Math.max(0, Math.trunc(count)), status };
    },
    queueUrl(name: string) {
      return sqs.queueUrl(name);
    },
    configureQueue(url: string, config: SqsQueueConfig) {
      const { visibilityTimeoutSeconds, delaySeconds, maxReceiveCount, deadLetterUrl } = config;
      const check = (name: string, value: number | undefined, min: number, max: number) => {
        if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max)) {
          throw new RangeError(`configureQueue: ${name} must be an integer from ${min} to ${max}`);
        }
      };
      check("visibilityTimeoutSeconds", visibilityTimeoutSeconds, 0, SQS_MAX_VISIBILITY_SECONDS);
      check("delaySeconds", delaySeconds, 0, SQS_MAX_DELAY_SECONDS);
      check("maxReceiveCount", maxReceiveCount, 1, SQS_MAX_RECEIVE_COUNT);
      if ((maxReceiveCount === undefined) !== (deadLetterUrl === undefined)) {
        throw new RangeError("configureQueue: maxReceiveCount and deadLetterUrl go together");
      }
      if (deadLetterUrl !== undefined && queueKey(deadLetterUrl) === queueKey(url)) {
        throw new RangeError("configureQueue: a queue cannot be its own dead-letter queue");
      }
      const queue = sqs.queueFor(url);
      if (visibilityTimeoutSeconds !== undefined) queue.visibilityTimeoutSeconds = visibilityTimeoutSeconds;
      if (delaySeconds !== undefined) queue.delaySeconds = delaySeconds;
      if (maxReceiveCount !== undefined && deadLetterUrl !== undefined) {
        sqs.setRedrive(queue, maxReceiveCount, deadLetterUrl);
      }
    },
    queue(url: string) {
      return sqs.view(url);
    },
    sendLocal(url: string, body: string, sendOptions: SqsSendOptions = {}) {
      const message = sqs.send(sqs.queueFor(url), {
        body,
        delaySeconds:
          sendOptions.delaySeconds === undefined
            ? undefined
            : integerIn("DelaySeconds", sendOptions.delaySeconds, 0, SQS_MAX_DELAY_SECONDS),
        messageAttributes: parseMessageAttributes(wireMessageAttributes(sendOptions.messageAttributes ?? {})),
      });
      return { messageId: message.messageId };
    },
    receiveLocal(url: string, max = 1, visibilityTimeoutSeconds?: number) {
      integerIn("MaxNumberOfMessages", max, 1, SQS_MAX_BATCH_ENTRIES);
      if (visibilityTimeoutSeconds !== undefined) {
        integerIn("VisibilityTimeout", visibilityTimeoutSeconds, 0, SQS_MAX_VISIBILITY_SECONDS);
      }
      return sqs.receive(sqs.queueFor(url), max, visibilityTimeoutSeconds);
    },
    deleteLocal(url: string, receiptHandle: string) {
      if (receiptHandleMessageId(receiptHandle) === undefined) return false;
      return sqs.delete(sqs.queueFor(url), receiptHandle);
    },
    reset() {
      published.length = 0;
      events.length = 0;
      for (const key of Object.keys(smsAttributes)) delete smsAttributes[key];
      requests = 0;
      putEventsFailures = { remaining: 0, errorCode: "" };
      requestFailures = { remaining: 0, status: 500 };
      sqs.reset();
    },
    stop() {
      sqs.stop();
      stopping ??= new Promise<void>((resolve) => {
        // close() calls back before libuv has released the listening handle; two turns later it is gone.
        server.close(() => setImmediate(() => setImmediate(resolve)));
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        sockets.clear();
      });
      return stopping;
    },
  };
}
