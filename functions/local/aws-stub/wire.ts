/**
 * The wire helpers every service of the stub shares: the error a handler throws to answer with a service
 * error, reading a request body, and writing replies in the three protocols the SDK speaks to the stub
 * (awsQuery XML for SNS, awsJson1_1 for EventBridge, awsJson1_0 with query-compatible errors for SQS).
 * Kept apart so that each service file holds only what the service does.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

const SNS_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/";
const MAX_BODY_BYTES = 1024 * 1024;
/** The content type of SQS's awsJson1_0 protocol, for its replies and its errors. */
export const SQS_CONTENT_TYPE = "application/x-amz-json-1.0";

/** A failure to report to the caller as a service error. */
export class StubError extends Error {
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

/** A JSON object as the JSON protocols carry it. */
export type Json = Record<string, unknown>;

export type Callback<T> = (item: T) => void | Promise<void>;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `{ [key]: value }`, or `{}` when the value is absent, for spreading optional fields. */
export function optional<K extends string>(key: K, value: string | null): { [P in K]?: string } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: string };
}

/** Awaits a caller's callback; its failure becomes an InternalFailure reply, without its message. */
export async function runCallback<T>(callback: Callback<T> | undefined, item: T): Promise<void> {
  if (!callback) return;
  try {
    await callback(item);
  } catch (error) {
    const reason = error instanceof Error ? error.name : "non-Error value";
    throw new StubError(500, "InternalFailure", `aws-stub callback failed (${reason})`);
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

/** The request body as UTF-8; a body over 1 MiB is refused with 413 once it has been read through. */
export function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let sizeBytes = 0;
    request.on("data", (chunk: Buffer) => {
      sizeBytes += chunk.length;
      if (sizeBytes <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on("end", () => {
      if (sizeBytes > MAX_BODY_BYTES) {
        reject(
          new StubError(413, "RequestEntityTooLarge", `Request body larger than ${MAX_BODY_BYTES} bytes`),
        );
      } else {
        resolve(Buffer.concat(chunks).toString("utf8"));
      }
    });
    request.on("error", reject);
  });
}

function send(
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  requestId: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  response.writeHead(status, {
    ...headers,
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
    "x-amzn-requestid": requestId,
  });
  response.end(body);
}

/** An awsQuery success reply: `<{action}Response>` wrapping `result` and the request id. */
export function sendSnsXml(
  response: ServerResponse,
  action: string,
  result: string,
  requestId: string,
): void {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<${action}Response xmlns="${SNS_XMLNS}">${result}` +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
  send(response, 200, "text/xml", body, requestId);
}

export function sendSnsError(response: ServerResponse, error: StubError, requestId: string): void {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<ErrorResponse xmlns="${SNS_XMLNS}"><Error><Type>${error.fault}</Type>` +
    `<Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message></Error>` +
    `<RequestId>${requestId}</RequestId></ErrorResponse>`;
  send(response, error.status, "text/xml", body, requestId);
}

export function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  requestId: string,
  contentType = "application/x-amz-json-1.1",
  headers: Readonly<Record<string, string>> = {},
): void {
  send(response, status, contentType, JSON.stringify(value), requestId, headers);
}

export function sendJsonError(response: ServerResponse, error: StubError, requestId: string): void {
  sendJson(response, error.status, { __type: error.code, message: error.message }, requestId);
}

export function sendSqsError(response: ServerResponse, error: StubError, requestId: string): void {
  sendJson(
    response,
    error.status,
    { __type: `com.amazonaws.sqs#${error.code}`, message: error.message },
    requestId,
    SQS_CONTENT_TYPE,
    { "x-amzn-query-error": `${error.queryCode};${error.fault}` },
  );
}

/** Decodes `<prefix>.entry.N.<rest>` keys of an awsQuery map into N → {rest → value}. */
export function queryMapEntries(form: URLSearchParams, prefix: string): Map<number, Map<string, string>> {
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
  return new Map([...entries].sort(([left], [right]) => left - right));
}
