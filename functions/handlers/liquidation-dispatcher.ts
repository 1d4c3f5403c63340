/**
 * Handler 5: the liquidation dispatcher, on the Outbox stream (filtered to inserted REQUEST_LIQUIDATION
 * and RECORD_LOSS items). It puts `LiquidationRequested` (and `LossRecorded`) on the engine's EventBridge
 * bus, at most once per request id. PutEvents can fail per entry inside a 200 response, so
 * FailedEntryCount is checked and the entry retried within bounds; past them the record fails and the
 * stream retries it, then sends it to the on-failure destination.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { fromImage } from "../adapters/codec.ts";
import { once, onceStore } from "../adapters/idempotency.ts";
import { ENV, required } from "../adapters/settings.ts";
import { type Runtime, runtime } from "./runtime.ts";

export const EVENT_SOURCE = "margin-call-engine";
export const LIQUIDATION_REQUESTED = "LiquidationRequested";
export const LOSS_RECORDED = "LossRecorded";
export const PUT_EVENTS_ATTEMPTS = 4;
/** How long a liquidation request waits for its call notice to be delivered before it goes anyway. */
export const NOTICE_WAIT_MS = 20_000;

export class PutEventsFailedError extends Error {
  override readonly name = "PutEventsFailedError";
}

async function putWithRetries(rt: Runtime, entry: PutEventsRequestEntry): Promise<string> {
  let lastError = "";
  for (let attempt = 1; attempt <= PUT_EVENTS_ATTEMPTS; attempt += 1) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    const result = await rt.eventBridge.send(new PutEventsCommand({ Entries: [entry] }));
    const [outcome] = result.Entries ?? [];
    if ((result.FailedEntryCount ?? 0) === 0 && outcome?.EventId) return outcome.EventId;
    lastError = `${outcome?.ErrorCode ?? "unknown"}: ${outcome?.ErrorMessage ?? "no message"}`;
    rt.logger.warn("PutEvents entry failed", { attempt, error: lastError, detailType: entry.DetailType });
  }
  throw new PutEventsFailedError(`PutEvents failed ${PUT_EVENTS_ATTEMPTS} times: ${lastError}`);
}

/**
 * The outbox keeps the call notice and the liquidation request in order, but two stream consumers do not:
 * on the hard-floor path both are written in one step. Wait (bounded) for the notifier to mark the call
 * notice delivered; past the bound, liquidate anyway (the loss risk outweighs the ordering) and say so.
 */
async function awaitCallNotice(rt: Runtime, callNotificationId: string, deadline: number): Promise<boolean> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
    const result = await rt.dynamo.send(
      new GetItemCommand({
        TableName: rt.tables.outbox,
        Key: { outboxId: { S: callNotificationId } },
        ConsistentRead: true,
        ProjectionExpression: "deliveredAt",
      }),
    );
    // An expired outbox item is long delivered: only the last days' items are kept.
    if (!result.Item || result.Item.deliveredAt) return true;
    if (Date.now() + delay > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function handleRecord(
  rt: Runtime,
  record: DynamoDBRecord,
  waitUntil: number,
  context?: Context,
): Promise<void> {
  const image = record.dynamodb?.NewImage;
  if (record.eventName !== "INSERT" || !image) return;
  const item = fromImage(image);
  if (item.kind !== "REQUEST_LIQUIDATION" && item.kind !== "RECORD_LOSS") return;
  const payload = JSON.parse(String(item.payload)) as Record<string, unknown>;
  if (item.kind === "REQUEST_LIQUIDATION" && typeof payload.callNotificationId === "string") {
    const delivered = await awaitCallNotice(rt, payload.callNotificationId, waitUntil);
    if (!delivered) {
      rt.logger.warn("liquidating before the call notice was confirmed delivered", {
        reference: String(item.outboxId),
        callNotificationId: payload.callNotificationId,
      });
    }
  }
  const reference = String(item.outboxId);
  const { kind: _kind, ...fields } = payload;
  const detail = { reference, ...fields, recordedAt: String(item.createdAt) };
  const entry: PutEventsRequestEntry = {
    EventBusName: required(rt.env, ENV.eventBusName),
    Source: EVENT_SOURCE,
    DetailType: item.kind === "REQUEST_LIQUIDATION" ? LIQUIDATION_REQUESTED : LOSS_RECORDED,
    Detail: JSON.stringify(detail),
    Resources: [],
  };
  const store = onceStore(rt.dynamo, required(rt.env, ENV.idempotencyTable));
  const put = once(store, async () => ({ eventId: await putWithRetries(rt, entry) }), context);
  const { eventId } = await put(`${reference}#event`);
  rt.logger.info("event put", {
    reference,
    detailType: entry.DetailType,
    eventId,
    accountId: item.accountId,
  });
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const rt = runtime();
  // One waiting budget for the whole batch, within the function's remaining time.
  const remaining = context?.getRemainingTimeInMillis() ?? NOTICE_WAIT_MS * 2;
  const waitUntil = Date.now() + Math.min(NOTICE_WAIT_MS, Math.max(0, remaining - 30_000));
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(rt, record, waitUntil, context),
    new BatchProcessor(EventType.DynamoDBStreams),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
