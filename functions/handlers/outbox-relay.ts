/**
 * Handler 4: the outbox relay, the one consumer of the Outbox stream. It hands each inserted NOTIFY item to
 * the notice queue (the notifier sends it at SNS's pace), and puts each REQUEST_LIQUIDATION and RECORD_LOSS
 * on the engine's bus, at most once per reference (adapters/event-dispatch.ts). A liquidation request goes
 * out only once its call notice has its outcome: the relay holds it on the notice's outbox item, and the
 * notice's completion (a MODIFY of that item) releases it. Both are conditional writes on one item, so the
 * order is structural, not a race between consumers. A notice recorded undeliverable releases its requests
 * as the policy says (`notices.whenUndelivered`), with an alarm either way. docs/pipeline.md has the argument.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { fromImage } from "../adapters/codec.ts";
import { type DispatchPorts, dispatchEvent } from "../adapters/event-dispatch.ts";
import { eventBridgePublisher, LIQUIDATION_REQUESTED, LOSS_RECORDED } from "../adapters/liquidation-ports.ts";
import { type HoldResult, noticeOutcome, OutboxClaims, type OutboxItem } from "../adapters/outbox-claims.ts";
import { ENV, required } from "../adapters/settings.ts";
import { LOG_SIGNALS } from "../domain/alarms.ts";
import { parseLiquidationPayload } from "../domain/outbox-payloads.ts";
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

async function inserted(ports: Ports, item: OutboxItem): Promise<void> {
  const { engine } = ports;
  if (item.kind === "NOTIFY") {
    // Only the id: the notifier renders what the outbox item says, never what a message claims it says.
    const body = JSON.stringify({ notificationId: item.outboxId, accountId: item.accountId });
    await engine.sqs.send(
      new SendMessageCommand({ QueueUrl: required(engine.env, ENV.noticeQueueUrl), MessageBody: body }),
    );
    return;
  }
  if (item.kind === "RECORD_LOSS") return dispatch(ports, item, true);
  if (item.kind !== "REQUEST_LIQUIDATION") return;
  const payload = parseLiquidationPayload("REQUEST_LIQUIDATION", String(item.payload));
  if (payload.kind !== "REQUEST_LIQUIDATION") return;
  const noticeId = payload.callNotificationId;
  const hold = await ports.claims.holdOnNotice(noticeId, String(item.outboxId));
  if (hold.status === "HELD") {
    engine.logger.info("liquidation held for its call notice", {
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

async function handleRecord(ports: Ports, record: DynamoDBRecord): Promise<void> {
  const image = record.dynamodb?.NewImage;
  if (!image) return;
  const item = fromImage(image);
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
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(ports, record),
    new BatchProcessor(EventType.DynamoDBStreams),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
