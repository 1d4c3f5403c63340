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
 * `receiveLocal`, `deleteLocal`) without HTTP. The stub never logs: message bodies and phone numbers are
 * personal data.
 *
 * This file is the router: it tells the services apart by `X-Amz-Target`, applies the test seam's request
 * faults (`faults.ts`: latency, failed requests, throttling), and hands each request to `sns.ts`,
 * `eventbridge.ts` or `sqs-actions.ts`.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type EventBridgeState, handlePutEvents } from "./eventbridge.ts";
import { Faults, faultControl, type StubService } from "./faults.ts";
import { closeServer, listen, trackSockets } from "./server.ts";
import { handleSns, isSmsPublish, type SnsState } from "./sns.ts";
import { handleSqsAction } from "./sqs-actions.ts";
import { sqsLocalApi } from "./sqs-local.ts";
import { SqsModel } from "./sqs-model.ts";
import { SQS_TARGET_PREFIX } from "./sqs-protocol.ts";
import type { AwsStub, AwsStubOptions } from "./types.ts";
import {
  isRecord,
  readBody,
  SQS_CONTENT_TYPE,
  StubError,
  sendJson,
  sendJsonError,
  sendSnsError,
  sendSqsError,
} from "./wire.ts";

export type * from "./fault-modes.ts";
export type { FaultControl, FaultInjection } from "./faults.ts";
export type * from "./types.ts";

type Service = StubService;

const THROTTLING_CODES: Readonly<Record<Service, string>> = {
  sns: "Throttling",
  eventbridge: "ThrottlingException",
  sqs: "RequestThrottled",
};

/** Everything one stub holds: what it recorded, its queues and its pending faults. */
interface StubState extends Omit<SnsState, "options">, Omit<EventBridgeState, "options"> {
  readonly options: AwsStubOptions;
  requests: number;
  readonly sqs: SqsModel;
}

function serviceOf(target: string | undefined): Service {
  if (target === undefined) return "sns";
  return target.startsWith(SQS_TARGET_PREFIX) ? "sqs" : "eventbridge";
}

function replyError(service: Service, response: ServerResponse, error: StubError, requestId: string): void {
  if (service === "sns") sendSnsError(response, error, requestId);
  else if (service === "sqs") sendSqsError(response, error, requestId);
  else sendJsonError(response, error, requestId);
}

async function routeSqs(
  target: string,
  body: string,
  request: IncomingMessage,
  response: ServerResponse,
  requestId: string,
  state: StubState,
): Promise<void> {
  let input: unknown;
  try {
    input = JSON.parse(body === "" ? "{}" : body);
  } catch {
    throw new StubError(400, "SerializationException", "Request body is not valid JSON");
  }
  const callerGone = () => response.destroyed || request.socket.destroyed;
  const reply = await handleSqsAction(target.slice(SQS_TARGET_PREFIX.length), isRecord(input) ? input : {}, {
    model: state.sqs,
    faults: state.faults,
    callerGone,
  });
  if (!callerGone()) sendJson(response, 200, reply, requestId, SQS_CONTENT_TYPE);
}

function sleep(ms: number): Promise<void> {
  // Unreferenced: a delayed request must not keep the process alive once its caller and the stub are gone.
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * The request-level faults, in order: latency, failNextRequests, throttling. Throws the injected error;
 * resolves to false if the caller hung up (or the stub stopped) while the request was delayed.
 */
async function applyRequestFaults(
  service: Service,
  form: URLSearchParams | undefined,
  request: IncomingMessage,
  response: ServerResponse,
  faults: Faults,
): Promise<boolean> {
  const delayMs = faults.takeLatency(service);
  if (delayMs > 0) {
    await sleep(delayMs);
    if (response.destroyed || request.socket.destroyed) return false;
  }
  const injectedStatus = faults.takeRequestFailure();
  if (injectedStatus !== undefined) {
    throw new StubError(injectedStatus, THROTTLING_CODES[service], "Rate exceeded (injected by aws-stub)");
  }
  if (!faults.admit(service, form !== undefined && isSmsPublish(form))) {
    throw new StubError(400, THROTTLING_CODES[service], "Rate exceeded (throttled by aws-stub)");
  }
  return true;
}

async function route(request: IncomingMessage, response: ServerResponse, state: StubState): Promise<void> {
  state.requests += 1;
  const requestId = randomUUID();
  const header = request.headers["x-amz-target"];
  const target = typeof header === "string" ? header : undefined;
  const service = serviceOf(target);
  try {
    const body = await readBody(request);
    const form = service === "sns" ? new URLSearchParams(body) : undefined;
    if (!(await applyRequestFaults(service, form, request, response, state.faults))) return;
    if (request.method !== "POST") {
      throw new StubError(405, "MethodNotAllowed", "aws-stub only accepts POST");
    }
    if (service === "sqs") {
      await routeSqs(target ?? "", body, request, response, requestId, state);
    } else if (service === "eventbridge") {
      if (target !== "AWSEvents.PutEvents") {
        throw new StubError(
          400,
          "UnknownOperationException",
          "aws-stub implements only AWSEvents.PutEvents for EventBridge",
        );
      }
      await handlePutEvents(body, response, requestId, state);
    } else {
      await handleSns(form ?? new URLSearchParams(body), response, requestId, state);
    }
  } catch (error) {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const reply =
      error instanceof StubError
        ? error
        : new StubError(500, "InternalFailure", "aws-stub failed to handle the request");
    replyError(service, response, reply, requestId);
  }
}

/** Starts the stub on a free loopback port. */
export async function startAwsStub(options: AwsStubOptions = {}): Promise<AwsStub> {
  const server = createServer();
  const sockets = trackSockets(server);
  const endpoint = await listen(server);
  let seq = 0;
  const state: StubState = {
    published: [],
    events: [],
    smsAttributes: {},
    requests: 0,
    faults: new Faults(),
    nextSeq: () => {
      seq += 1;
      return seq;
    },
    sqs: new SqsModel(endpoint, options.now ?? Date.now),
    options,
  };
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    void route(request, response, state);
  });
  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    env: {
      AWS_ENDPOINT_URL_SNS: endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: endpoint,
      AWS_ENDPOINT_URL_SQS: endpoint,
    },
    published: state.published,
    events: state.events,
    smsAttributes: state.smsAttributes,
    get requests() {
      return state.requests;
    },
    get listening() {
      return server.listening;
    },
    failNextPutEvents: (count, errorCode) => state.faults.failNextPutEvents(count, errorCode),
    failNextSqsBatchEntries: (count, errorCode) => state.faults.failNextSqsBatchEntries(count, errorCode),
    failNextRequests: (count, status) => state.faults.failNextRequests(count, status),
    faults: faultControl(state.faults),
    ...sqsLocalApi(state.sqs),
    reset() {
      state.published.length = 0;
      state.events.length = 0;
      for (const key of Object.keys(state.smsAttributes)) delete state.smsAttributes[key];
      state.requests = 0;
      state.faults.reset();
      state.sqs.reset();
    },
    stop() {
      state.sqs.stop();
      stopping ??= closeServer(server, sockets);
      return stopping;
    },
  };
}
