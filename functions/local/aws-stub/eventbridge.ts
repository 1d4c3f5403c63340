/**
 * The stub's EventBridge: PutEvents over the awsJson1_1 protocol. Each entry is checked as EventBridge
 * checks it and either recorded (and handed to the caller's event callback) or listed as failed inside the
 * 200 reply, as EventBridge reports a partial failure. The fault seam may fail single entries, or fail the
 * reply of a request whose entries were all handled as usual.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Faults } from "./faults.ts";
import type { AwsStubOptions, PutEventsEntry } from "./types.ts";
import { isRecord, runCallback, StubError, sendJson } from "./wire.ts";

const PUT_EVENTS_MAX_ENTRIES = 10;

/** What PutEvents reads and records. */
export interface EventBridgeState {
  readonly events: PutEventsEntry[];
  readonly faults: Faults;
  /** The next value of the stub's record counter. */
  readonly nextSeq: () => number;
  readonly options: Pick<AwsStubOptions, "onEvent">;
}

interface EntryFailure {
  readonly ErrorCode: string;
  readonly ErrorMessage: string;
}

function parseEntries(body: string): unknown[] {
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
  return entries;
}

function invalidArgument(field: string): EntryFailure {
  return {
    ErrorCode: "InvalidArgument",
    ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.`,
  };
}

function detailIsObject(detail: string): boolean {
  try {
    return isRecord(JSON.parse(detail));
  } catch {
    return false;
  }
}

/** The entry as the stub records it, or why EventBridge would refuse it. */
function parseEntry(raw: unknown): Omit<PutEventsEntry, "seq"> | EntryFailure {
  const entry: Record<string, unknown> = isRecord(raw) ? raw : {};
  const { Source, DetailType, Detail, EventBusName, Resources, Time, TraceHeader } = entry;
  if (typeof Source !== "string" || Source === "") return invalidArgument("Source");
  if (typeof DetailType !== "string" || DetailType === "") return invalidArgument("DetailType");
  if (typeof Detail !== "string") return invalidArgument("Detail");
  if (!detailIsObject(Detail)) return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." };
  return {
    source: Source,
    detailType: DetailType,
    detail: Detail,
    eventBusName: typeof EventBusName === "string" && EventBusName !== "" ? EventBusName : "default",
    resources: Array.isArray(Resources)
      ? Resources.filter((resource): resource is string => typeof resource === "string")
      : [],
    ...(typeof Time === "number" ? { time: new Date(Time * 1000).toISOString() } : {}),
    ...(typeof TraceHeader === "string" ? { traceHeader: TraceHeader } : {}),
    eventId: randomUUID(),
    receivedAt: new Date().toISOString(),
  };
}

/** One entry's result: an injected failure, a refusal, or the recorded event's id. */
async function putEntry(
  raw: unknown,
  state: EventBridgeState,
  replyFailed: boolean,
): Promise<EntryFailure | { EventId: string }> {
  const injectedCode = state.faults.takePutEventsFailure();
  if (injectedCode !== undefined) {
    return { ErrorCode: injectedCode, ErrorMessage: `Injected failure (${injectedCode}) by aws-stub` };
  }
  const parsed = parseEntry(raw);
  if ("ErrorCode" in parsed) return parsed;
  const event: PutEventsEntry = {
    ...parsed,
    seq: state.nextSeq(),
    ...(replyFailed ? { replyFailed: true as const } : {}),
  };
  state.events.push(event);
  await runCallback(state.options.onEvent, event);
  return { EventId: event.eventId };
}

/** One PutEvents request: its JSON body already read. */
export async function handlePutEvents(
  body: string,
  response: ServerResponse,
  requestId: string,
  state: EventBridgeState,
): Promise<void> {
  const entries = parseEntries(body);
  const replyFailed = state.faults.takeAcceptThenFail("eventbridge");
  const results: (EntryFailure | { EventId: string })[] = [];
  for (const raw of entries) {
    results.push(await putEntry(raw, state, replyFailed));
  }
  if (replyFailed) {
    throw new StubError(
      500,
      "InternalException",
      "Internal error (reply failed by aws-stub after PutEvents)",
    );
  }
  const failed = results.filter((result) => "ErrorCode" in result).length;
  sendJson(response, 200, { FailedEntryCount: failed, Entries: results }, requestId);
}
