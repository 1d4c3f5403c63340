/**
 * Handler 5: the liquidation dispatcher, on the Outbox stream (filtered to inserted REQUEST_LIQUIDATION
 * and RECORD_LOSS items). It puts `LiquidationRequested` (and `LossRecorded`) on the engine's EventBridge
 * bus, at most once per request id, through its ports (adapters/liquidation-ports.ts): PutEvents failures
 * inside a 200 reply are retried within bounds; past them the record fails and the stream retries it,
 * then sends it to the on-failure destination.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { fromImage } from "../adapters/codec.ts";
import {
  type CallNoticeLog,
  type EventPublisher,
  eventBridgePublisher,
  outboxCallNotices,
} from "../adapters/liquidation-ports.ts";
import { parseLiquidationPayload } from "../domain/outbox-payloads.ts";
import { type Runtime, runtime } from "./runtime.ts";

export { EVENT_SOURCE, PUT_EVENTS_ATTEMPTS, PutEventsFailedError } from "../adapters/liquidation-ports.ts";
export const LIQUIDATION_REQUESTED = "LiquidationRequested";
export const LOSS_RECORDED = "LossRecorded";
/** How long a liquidation request waits for its call notice to be delivered before it goes anyway. */
export const NOTICE_WAIT_MS = 20_000;

interface Ports {
  readonly notices: CallNoticeLog;
  readonly events: EventPublisher;
}

/**
 * The outbox keeps the call notice and the liquidation request in order, but two stream consumers do not:
 * on the hard-floor path both are written in one step. Wait (bounded) for the notifier to mark the call
 * notice delivered; past the bound, liquidate anyway (the loss risk outweighs the ordering) and say so.
 */
async function awaitCallNotice(notices: CallNoticeLog, notificationId: string, waitUntilMs: number) {
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2_000)) {
    if (await notices.isDelivered(notificationId)) return true;
    if (Date.now() + delayMs > waitUntilMs) return false;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

async function handleRecord(engine: Runtime, ports: Ports, record: DynamoDBRecord, waitUntilMs: number) {
  const image = record.dynamodb?.NewImage;
  if (record.eventName !== "INSERT" || !image) return;
  const item = fromImage(image);
  if (item.kind !== "REQUEST_LIQUIDATION" && item.kind !== "RECORD_LOSS") return;
  const reference = String(item.outboxId);
  const payload = parseLiquidationPayload(item.kind, String(item.payload));
  if (payload.kind === "REQUEST_LIQUIDATION") {
    if (!(await awaitCallNotice(ports.notices, payload.callNotificationId, waitUntilMs))) {
      engine.logger.warn("liquidating before the call notice was confirmed delivered", {
        reference,
        callNotificationId: payload.callNotificationId,
      });
    }
  }
  const { kind: _kind, ...fields } = payload;
  const detailType = item.kind === "REQUEST_LIQUIDATION" ? LIQUIDATION_REQUESTED : LOSS_RECORDED;
  const detail = { reference, ...fields, recordedAt: String(item.createdAt) };
  const eventId = await ports.events.publish(reference, { detailType, detail });
  engine.logger.info("event put", { reference, detailType, eventId, accountId: item.accountId });
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const engine = runtime();
  const ports: Ports = { notices: outboxCallNotices(engine), events: eventBridgePublisher(engine, context) };
  // One waiting budget for the whole batch, within the function's remaining time.
  const remainingMs = context?.getRemainingTimeInMillis() ?? NOTICE_WAIT_MS * 2;
  const waitUntilMs = Date.now() + Math.min(NOTICE_WAIT_MS, Math.max(0, remainingMs - 30_000));
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(engine, ports, record, waitUntilMs),
    new BatchProcessor(EventType.DynamoDBStreams),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
