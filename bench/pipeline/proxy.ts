/**
 * A counting HTTP proxy in front of DynamoDB Local: every request of the handlers, the local runtime's
 * stream readers and the benchmark's own clients goes through it. It counts requests per operation and per
 * source, the items each request wrote (a TransactWriteItems counts its Put, Update and Delete items, a
 * BatchWriteItem its requests) and the items each read returned (ScannedCount of a Query or Scan, the Item of
 * a GetItem, the responses of a BatchGetItem), and can hand the body of a request to a capture hook (the
 * benchmarks replay the handlers' own transactions as their reference).
 *
 * A request's source is its `x-bench-source` header (the benchmark's clients set it), else "streams" for the
 * DynamoDB Streams API, else "engine": the handlers.
 */
import { Agent, createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";

export interface OperationCount {
  requests: number;
  written: number;
  read: number;
  /** Capacity units DynamoDB Local reported (the proxy asks every request for ReturnConsumedCapacity). */
  readUnits: number;
  writeUnits: number;
}

export type Counts = Map<string, Map<string, OperationCount>>;

export interface Captured {
  readonly source: string;
  readonly operation: string;
  readonly body: string;
}

export const SOURCE_HEADER = "x-bench-source";

const WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem"]);

function writtenItems(operation: string, body: string): number {
  if (WRITES.has(operation)) return 1;
  if (operation === "BatchWriteItem") {
    const input = JSON.parse(body) as { RequestItems?: Record<string, unknown[]> };
    return Object.values(input.RequestItems ?? {}).reduce((sum, requests) => sum + requests.length, 0);
  }
  if (operation === "TransactWriteItems") {
    const input = JSON.parse(body) as { TransactItems?: Record<string, unknown>[] };
    return (input.TransactItems ?? []).filter((item) => !("ConditionCheck" in item)).length;
  }
  return 0;
}

function readItems(operation: string, response: string): number {
  if (operation === "GetItem") return response.includes('"Item"') ? 1 : 0;
  if (operation === "Query" || operation === "Scan") {
    return Number(/"ScannedCount":(\d+)/.exec(response)?.[1] ?? 0);
  }
  if (operation === "BatchGetItem" || operation === "TransactGetItems") {
    const output = JSON.parse(response) as { Responses?: Record<string, unknown[]> | unknown[] };
    const responses = output.Responses ?? [];
    return Array.isArray(responses)
      ? responses.length
      : Object.values(responses).reduce((sum, items) => sum + items.length, 0);
  }
  return 0;
}

/** The operations that take ReturnConsumedCapacity, and whether their units are reads. */
const CAPACITY: Record<string, "read" | "write"> = {
  GetItem: "read",
  Query: "read",
  Scan: "read",
  BatchGetItem: "read",
  TransactGetItems: "read",
  PutItem: "write",
  UpdateItem: "write",
  DeleteItem: "write",
  BatchWriteItem: "write",
  TransactWriteItems: "write",
};

function withCapacity(operation: string, body: string): string {
  if (!(operation in CAPACITY)) return body;
  const input = JSON.parse(body) as Record<string, unknown>;
  return JSON.stringify({ ...input, ReturnConsumedCapacity: "TOTAL" });
}

/** The capacity units of a response: one ConsumedCapacity, or one per table. */
function unitsOf(response: string): number {
  const output = JSON.parse(response) as {
    ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[];
  };
  const consumed = output.ConsumedCapacity;
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  return list.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
}

const bodyOf = (stream: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });

export class CountingProxy {
  readonly counts: Counts = new Map();
  /** The handlers' Queries of the Accounts table since the start: one per account revalued exactly. */
  accountReads = 0;
  /** Called with each request's body before it is forwarded, while set. */
  capture: ((request: Captured) => void) | undefined;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
  ) {}

  static async start(upstream: string): Promise<CountingProxy> {
    const target = new URL(upstream);
    let proxy: CountingProxy | undefined;
    const server = createServer((incoming, outgoing) => {
      proxy?.forward(target, incoming, outgoing).catch((error: unknown) => {
        outgoing.writeHead(502, { "content-type": "text/plain" });
        outgoing.end(error instanceof Error ? error.message : String(error));
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    proxy = new CountingProxy(server, `http://127.0.0.1:${port}`);
    return proxy;
  }

  private async forward(
    target: URL,
    incoming: IncomingMessage,
    outgoing: import("node:http").ServerResponse,
  ) {
    const body = await bodyOf(incoming);
    const header = String(incoming.headers["x-amz-target"] ?? "");
    const operation = header.slice(header.indexOf(".") + 1) || "(none)";
    const tagged = incoming.headers[SOURCE_HEADER];
    const source =
      typeof tagged === "string" ? tagged : header.startsWith("DynamoDBStreams") ? "streams" : "engine";
    const text = body.toString("utf8");
    this.capture?.({ source, operation, body: text });
    if (source === "engine" && operation === "Query" && text.includes('"TableName":"Accounts"'))
      this.accountReads += 1;
    const count = this.entry(source, operation);
    count.requests += 1;
    count.written += writtenItems(operation, text);
    // DynamoDB Local does not check signatures: the body may gain ReturnConsumedCapacity on its way.
    const sent = Buffer.from(source === "streams" ? text : withCapacity(operation, text), "utf8");
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const forwarded = request(
        {
          host: target.hostname,
          port: target.port,
          method: incoming.method,
          path: incoming.url,
          headers: { ...incoming.headers, "content-length": String(sent.length) },
          agent: this.agent,
        },
        resolve,
      );
      forwarded.on("error", reject);
      forwarded.end(sent);
    });
    const answer = await bodyOf(response);
    if ((response.statusCode ?? 500) < 300) {
      const reply = answer.toString("utf8");
      count.read += readItems(operation, reply);
      const units = CAPACITY[operation] ? unitsOf(reply) : 0;
      if (CAPACITY[operation] === "read") count.readUnits += units;
      else count.writeUnits += units;
    }
    outgoing.writeHead(response.statusCode ?? 500, response.headers);
    outgoing.end(answer);
  }

  private entry(source: string, operation: string): OperationCount {
    let bySource = this.counts.get(source);
    if (!bySource) {
      bySource = new Map();
      this.counts.set(source, bySource);
    }
    let count = bySource.get(operation);
    if (!count) {
      count = { requests: 0, written: 0, read: 0, readUnits: 0, writeUnits: 0 };
      bySource.set(operation, count);
    }
    return count;
  }

  reset(): void {
    this.counts.clear();
  }

  /** The totals of one source since the last reset, with the requests by operation. */
  totals(source: string): OperationCount & { readonly byOperation: Record<string, number> } {
    const total = {
      requests: 0,
      written: 0,
      read: 0,
      readUnits: 0,
      writeUnits: 0,
      byOperation: {} as Record<string, number>,
    };
    for (const [operation, count] of this.counts.get(source) ?? []) {
      total.requests += count.requests;
      total.written += count.written;
      total.read += count.read;
      total.readUnits += count.readUnits;
      total.writeUnits += count.writeUnits;
      total.byOperation[operation] = count.requests;
    }
    return total;
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Tags every request of a client with a source, so the proxy counts it apart from the handlers'. */
export function tagSource<T extends object>(client: T, source: string): T {
  (client as unknown as DynamoDBClient).middlewareStack.add(
    (next) => async (args) => {
      const requestArgs = args.request as { headers?: Record<string, string> };
      if (requestArgs.headers) requestArgs.headers[SOURCE_HEADER] = source;
      return next(args);
    },
    { step: "build", name: `benchSource-${source}` },
  );
  return client;
}
