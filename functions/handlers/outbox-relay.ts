/**
 * Handler 4: the outbox relay, the one consumer of the Outbox stream. It hands each inserted NOTIFY item to
 * the notice queue (the notifier sends it at SNS's pace; a batch's notices go ten to a request first), and puts each REQUEST_LIQUIDATION and RECORD_LOSS,
 * and each circuit breaker's LiquidationPaused and LiquidationResumed (LIQUIDATION_EVENT), on the engine's bus, at most once per reference (adapters/event-dispatch.ts). A liquidation request goes
 * out only once its call notice has its outcome: the relay holds it on the notice's outbox item, and the
 * notice's completion (a MODIFY of that item) releases it. Both are conditional writes on one item, so the
 * order is structural, not a race between consumers. A notice recorded undeliverable releases its requests
 * as the policy says (`notices.whenUndelivered`), with an alarm either way. docs/pipeline.md has the argument.
 */
import { EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { LIQUIDATION_EVENT } from "../adapters/breakers.ts";
import { fromImage } from "../adapters/codec.ts";
import { type DispatchPorts, dispatchEvent } from "../adapters/event-dispatch.ts";
import { eventBridgePublisher, LIQUIDATION_REQUESTED, LOSS_RECORDED } from "../adapters/liquidation-ports.ts";
import { type HoldResult, noticeOutcome, OutboxClaims, type OutboxItem } from "../adapters/outbox-claims.ts";
import { ENV, required } from "../adapters/settings.ts";
import { LOG_SIGNALS } from "../domain/alarms.ts";
import { LIQUIDATION_EVENT_DETAILS, type LiquidationEventType } from "../domain/liquidation-events.ts";
import { OutboxPayloadError, parseLiquidationPayload } from "../domain/outbox-payloads.ts";
import { ReportingBatchProcessor } from "./batch.ts";
import { type Runtime, runtime } from "./runtime.ts";

export { EVENT_SOURCE, LIQUIDATION_REQUESTED, LOSS_RECORDED } from "../adapters/liquidation-ports.ts";

interface Ports extends DispatchPorts {
  readonly engine: Runtime;
}

/** Puts a REQUEST_LIQUIDATION or RECORD_LOSS item's event, saying whether its call notice went out. */
async function dispatch(ports: Ports, item: OutboxItem, noticeDelivered: boolean): Promise<void> {
  const kind = String(item.kind);
  const reference = String(item.outboxId);
  const payload = parseLiquidationPayload(kind, String(item.payload));
  const { kind: _kind, ...fields } = payload;
  const detail = {
    reference,
    ...fields,
    recordedAt: String(item.createdAt),
    ...(kind === "REQUEST_LIQUIDATION" ? { noticeDelivered } : {}),
  };
  const detailType = kind === "REQUEST_LIQUIDATION" ? LIQUIDATION_REQUESTED : LOSS_RECORDED;
  await dispatchEvent(ports, reference, String(item.accountId), { detailType, detail });
}

/** A request whose call notice has its outcome (or was never there): out now, or held for an operator. */
async function release(
  ports: Ports,
  request: OutboxItem,
  notice: HoldResult,
  noticeId: string,
): Promise<void> {
  const fields = {
    reference: String(request.outboxId),
    accountId: request.accountId,
    callNotificationId: noticeId,
  };
  if (notice.status === "NOTICE_UNDELIVERABLE") {
    if (notice.whenUndelivered === "HOLD") {
      ports.engine.logger.error(LOG_SIGNALS.LIQUIDATION_HELD.message, fields);
      return;
    }
    ports.engine.logger.error(LOG_SIGNALS.LIQUIDATION_WITHOUT_NOTICE.message, fields);
  }
  // A call notice that is not there cannot be said to have been delivered.
  if (notice.status === "NOTICE_MISSING")
    ports.engine.logger.error(LOG_SIGNALS.LIQUIDATION_WITHOUT_NOTICE.message, fields);
  await dispatch(ports, request, notice.status === "NOTICE_SENT");
}

/** The records that insert a notice: queued together, ten to a request, before the batch is processed. */
const insertedNotice = (record: DynamoDBRecord): OutboxItem | undefined => {
  const image = record.dynamodb?.NewImage;
  if (record.eventName !== "INSERT" || !image) return undefined;
  const item = fromImage(image);
  return item.kind === "NOTIFY" ? item : undefined;
};

/**
 * Queues every notice the batch inserts, ten to a SendMessageBatch, and returns why each one that was not
 * queued was not: its record then fails and comes back (a notice queued twice is sent once: its claim).
 */
async function queueNotices(
  engine: Runtime,
  records: readonly DynamoDBRecord[],
): Promise<Map<DynamoDBRecord, string>> {
  const notices = records.flatMap((record) => {
    const item = insertedNotice(record);
    return item ? [{ record, item }] : [];
  });
  const unsent = new Map<DynamoDBRecord, string>();
  for (let start = 0; start < notices.length; start += 10) {
    const chunk = notices.slice(start, start + 10);
    try {
      const result = await engine.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: required(engine.env, ENV.noticeQueueUrl),
          // Only the id: the notifier renders what the outbox item says, never what a message claims.
          Entries: chunk.map(({ item }, index) => ({
            Id: String(index),
            MessageBody: JSON.stringify({ notificationId: item.outboxId, accountId: item.accountId }),
          })),
        }),
      );
      for (const failure of result.Failed ?? []) {
        const entry = chunk[Number(failure.Id)];
        if (entry) unsent.set(entry.record, `${failure.Code ?? "refused"}: ${failure.Message ?? ""}`);
      }
    } catch (error) {
      for (const { record } of chunk)
        unsent.set(record, error instanceof Error ? error.message : String(error));
    }
  }
  return unsent;
}

/** A breaker's LiquidationPaused or LiquidationResumed (adapters/breakers.ts): put as written, once. */
async function liquidationEvent(ports: Ports, item: OutboxItem): Promise<void> {
  const detailType = String(item.detailType) as LiquidationEventType;
  // A LiquidationRequested goes out only after its call notice (`inserted`), never through this path.
  const schema = detailType === "LiquidationRequested" ? undefined : LIQUIDATION_EVENT_DETAILS[detailType];
  if (!schema)
    throw new OutboxPayloadError(`${String(item.outboxId)}: not an event this path puts: ${detailType}`);
  const parsed = schema.safeParse(JSON.parse(String(item.payload)));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `$.${issue.path.join(".")}: ${issue.message}`);
    throw new OutboxPayloadError(`the ${detailType} payload breaks its schema: ${issues.join("; ")}`);
  }
  const reference = String(item.outboxId);
  await dispatchEvent(ports, reference, String(item.accountId), { detailType, detail: parsed.data });
}

async function inserted(ports: Ports, item: OutboxItem): Promise<void> {
  if (item.kind === "RECORD_LOSS") return dispatch(ports, item, true);
  if (item.kind === LIQUIDATION_EVENT) return liquidationEvent(ports, item);
  if (item.kind !== "REQUEST_LIQUIDATION") return;
  const payload = parseLiquidationPayload("REQUEST_LIQUIDATION", String(item.payload));
  if (payload.kind !== "REQUEST_LIQUIDATION") return;
  const noticeId = payload.callNotificationId;
  const hold = await ports.claims.holdOnNotice(noticeId, String(item.outboxId));
  if (hold.status === "HELD") {
    ports.engine.logger.info("liquidation held for its call notice", {
      reference: item.outboxId,
      callNotificationId: noticeId,
    });
    return;
  }
  await release(ports, item, hold, noticeId);
}

/** A notice got its outcome: release every request held on it. */
async function noticeDone(ports: Ports, notice: OutboxItem): Promise<void> {
  const outcome = noticeOutcome(notice);
  if (outcome.status === "HELD") return;
  const held = notice.held instanceof Set ? [...(notice.held as Set<string>)].sort() : [];
  // Each request on its own: one that cannot be put now does not keep the others back; the record is
  // retried for it, and the ones already put are skipped by their claims.
  const failures: string[] = [];
  for (const requestId of held) {
    try {
      const request = await ports.claims.item(requestId);
      if (!request) throw new Error(`held request ${requestId} has no outbox item`);
      await release(ports, request, outcome, String(notice.outboxId));
    } catch (error) {
      failures.push(`${requestId}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (failures.length > 0) throw new Error(`held requests not released: ${failures.join("; ")}`);
}

/**
 * The time a record that puts events may need: a claim, up to four PutEvents of at most 5 s each, and a
 * completion. A record started with less left fails at once and comes back with the rest of the batch.
 */
export const RELAY_RECORD_RESERVE_MS = 25_000;

async function handleRecord(
  ports: Ports,
  record: DynamoDBRecord,
  unsent: ReadonlyMap<DynamoDBRecord, string>,
): Promise<void> {
  const image = record.dynamodb?.NewImage;
  if (!image) return;
  if (!insertedNotice(record) && ports.remainingMs() < RELAY_RECORD_RESERVE_MS) {
    throw new Error("left for the next invocation: too little time before this one's timeout");
  }
  const item = fromImage(image);
  if (insertedNotice(record)) {
    const why = unsent.get(record);
    if (why !== undefined) throw new Error(`notice ${String(item.outboxId)} not queued: ${why}`);
    return;
  }
  if (record.eventName === "INSERT") return inserted(ports, item);
  if (record.eventName === "MODIFY" && item.kind === "NOTIFY") return noticeDone(ports, item);
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const engine = runtime();
  const claims = new OutboxClaims(engine.dynamo, engine.tables.outbox);
  const ports: Ports = {
    engine,
    claims,
    publisher: eventBridgePublisher(engine),
    logger: engine.logger,
    now: engine.now,
    remainingMs: () => context?.getRemainingTimeInMillis() ?? 60_000,
  };
  const unsent = await queueNotices(engine, event.Records);
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(ports, record, unsent),
    new ReportingBatchProcessor(EventType.DynamoDBStreams, engine.logger),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
