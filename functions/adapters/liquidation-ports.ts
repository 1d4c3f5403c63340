/**
 * The liquidation dispatcher's ports and their AWS adapters: whether a call notice went out (its outbox
 * item's delivery mark) and how engine events are published (EventBridge PutEvents, at most once per
 * reference, with the per-entry failures that a 200 reply can carry retried within bounds). The dispatcher
 * handler parses a record, calls these, and logs.
 */

import type { Logger } from "@aws-lambda-powertools/logger";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from "@aws-sdk/client-eventbridge";
import type { Context } from "aws-lambda";
import type { EngineDeps } from "./engine.ts";
import { once, onceStore } from "./idempotency.ts";
import { ENV, type Environment, required } from "./settings.ts";

export const EVENT_SOURCE = "margin-call-engine";
export const PUT_EVENTS_ATTEMPTS = 4;

export class PutEventsFailedError extends Error {
  override readonly name = "PutEventsFailedError";
}

/** What the liquidation adapters need from the runtime. */
export interface LiquidationDeps extends Pick<EngineDeps, "dynamo" | "tables"> {
  readonly env: Environment;
  readonly eventBridge: EventBridgeClient;
  readonly logger: Logger;
}

export interface CallNoticeLog {
  /** True once the notice's outbox item is marked delivered (or has expired: long delivered). */
  isDelivered(notificationId: string): Promise<boolean>;
}

export interface EngineEvent {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

export interface EventPublisher {
  /** Puts the event on the engine's bus once per `reference`; returns the EventBridge event id. */
  publish(reference: string, event: EngineEvent): Promise<string>;
}

export function outboxCallNotices(deps: LiquidationDeps): CallNoticeLog {
  return {
    async isDelivered(notificationId) {
      const result = await deps.dynamo.send(
        new GetItemCommand({
          TableName: deps.tables.outbox,
          Key: { outboxId: { S: notificationId } },
          ConsistentRead: true,
          ProjectionExpression: "deliveredAt",
        }),
      );
      // An expired outbox item is long delivered: only the last days' items are kept.
      return !result.Item || result.Item.deliveredAt !== undefined;
    },
  };
}

async function putWithRetries(deps: LiquidationDeps, entry: PutEventsRequestEntry): Promise<string> {
  let lastError = "";
  for (let attempt = 1; attempt <= PUT_EVENTS_ATTEMPTS; attempt += 1) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    const result = await deps.eventBridge.send(new PutEventsCommand({ Entries: [entry] }));
    const [outcome] = result.Entries ?? [];
    if ((result.FailedEntryCount ?? 0) === 0 && outcome?.EventId) return outcome.EventId;
    lastError = `${outcome?.ErrorCode ?? "unknown"}: ${outcome?.ErrorMessage ?? "no message"}`;
    deps.logger.warn("PutEvents entry failed", { attempt, error: lastError, detailType: entry.DetailType });
  }
  throw new PutEventsFailedError(`PutEvents failed ${PUT_EVENTS_ATTEMPTS} times: ${lastError}`);
}

export function eventBridgePublisher(deps: LiquidationDeps, context?: Context): EventPublisher {
  const store = onceStore(deps.dynamo, required(deps.env, ENV.idempotencyTable));
  return {
    async publish(reference, event) {
      const entry: PutEventsRequestEntry = {
        EventBusName: required(deps.env, ENV.eventBusName),
        Source: EVENT_SOURCE,
        DetailType: event.detailType,
        Detail: JSON.stringify(event.detail),
        Resources: [],
      };
      const put = once(store, async () => ({ eventId: await putWithRetries(deps, entry) }), context);
      const { eventId } = await put(`${reference}#event`);
      return eventId;
    },
  };
}
