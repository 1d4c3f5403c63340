/**
 * An in-process stand-in for the two AWS services the engine talks to besides DynamoDB: SNS (Publish,
 * SetSMSAttributes; awsQuery protocol) and EventBridge (PutEvents; awsJson1_1 protocol). The real SDK v3
 * clients are pointed at it through `endpoint` in their config, or AWS_ENDPOINT_URL_SNS /
 * AWS_ENDPOINT_URL_EVENTBRIDGE (see `AwsStub.env`). SigV4 signatures are accepted without checking.
 *
 * Used by the tests and by the local runtime, which renders each SMS, e-mail and event to files through the
 * callbacks as they arrive. The stub never logs: message bodies and phone numbers are personal data.
 */
import { randomUUID } from "node:crypto";
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

type Callback<T> = (item: T) => void | Promise<void>;

export interface AwsStubOptions {
  /** Called (and awaited before the reply) for each Publish to a PhoneNumber. */
  readonly onSms?: Callback<SnsPublish>;
  /** Called (and awaited before the reply) for each Publish to a TopicArn or TargetArn. */
  readonly onTopicMessage?: Callback<SnsPublish>;
  /** Called (and awaited before the reply) for each PutEvents entry that succeeds. */
  readonly onEvent?: Callback<PutEventsEntry>;
}

export interface AwsStub {
  /** `http://127.0.0.1:<port>`, for the `endpoint` of SNSClient and EventBridgeClient. */
  readonly endpoint: string;
  /** AWS_ENDPOINT_URL_SNS and AWS_ENDPOINT_URL_EVENTBRIDGE, both set to `endpoint`. */
  readonly env: Readonly<Record<"AWS_ENDPOINT_URL_SNS" | "AWS_ENDPOINT_URL_EVENTBRIDGE", string>>;
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
   * The next `count` HTTP requests, to either service, fail with a throttling error: SNS an awsQuery XML
   * error with Code `Throttling`, EventBridge a JSON error with __type `ThrottlingException`, both with
   * this HTTP status (400, 429 or 5xx are all retried by the SDK).
   */
  failNextRequests(count: number, status?: number): void;
  /** Forgets what was received and any fault still pending. */
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
): void {
  res.writeHead(status, {
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

function sendJson(res: ServerResponse, status: number, value: unknown, requestId: string): void {
  send(res, status, "application/x-amz-json-1.1", JSON.stringify(value), requestId);
}

function sendJsonError(res: ServerResponse, error: StubError, requestId: string): void {
  sendJson(res, error.status, { __type: error.code, message: error.message }, requestId);
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
    const target = req.headers["x-amz-target"];
    const service = typeof target === "string" ? "eventbridge" : "sns";
    const fail = (error: StubError) =>
      service === "sns" ? sendSnsError(res, error, requestId) : sendJsonError(res, error, requestId);
    try {
      const body = await readBody(req);
      if (requestFailures.remaining > 0) {
        requestFailures.remaining -= 1;
        const code = service === "sns" ? "Throttling" : "ThrottlingException";
        throw new StubError(requestFailures.status, code, "Rate exceeded (injected by aws-stub)");
      }
      if (req.method !== "POST") {
        throw new StubError(405, "MethodNotAllowed", "aws-stub only accepts POST");
      }
      if (service === "eventbridge") {
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

  let stopping: Promise<void> | undefined;

  return {
    endpoint,
    env: { AWS_ENDPOINT_URL_SNS: endpoint, AWS_ENDPOINT_URL_EVENTBRIDGE: endpoint },
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
    failNextRequests(count: number, status = 500) {
      requestFailures = { remaining: Math.max(0, Math.trunc(count)), status };
    },
    reset() {
      published.length = 0;
      events.length = 0;
      for (const key of Object.keys(smsAttributes)) delete smsAttributes[key];
      requests = 0;
      putEventsFailures = { remaining: 0, errorCode: "" };
      requestFailures = { remaining: 0, status: 500 };
    },
    stop() {
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
