/**
 * The outbox relay's event port and its AWS adapter: one engine event put on the engine's EventBridge bus.
 * PutEvents is called with SDK retries off (see aws-outcome.ts): an entry that failed inside a 200 reply was
 * certainly not accepted and is retried here within bounds; a throttled or refused request certainly was not
 * either; anything else (a 5xx, a lost reply) may have been accepted and is reported UNCERTAIN, never put
 * again. The claim that makes each reference go out at most once is the outbox item's (outbox-claims.ts).
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
  type PutEventsRequestEntry,
} from "@aws-sdk/client-eventbridge";
import { describeFailure, type FailureKind, failureKind } from "./aws-outcome.ts";
import { ENV, type Environment, required } from "./settings.ts";

export const EVENT_SOURCE = "margin-call-engine";
export const LIQUIDATION_REQUESTED = "LiquidationRequested";
export const LOSS_RECORDED = "LossRecorded";
/** PutEvents calls per event when entries fail inside a 200 reply (certainly not accepted). */
export const PUT_EVENTS_ATTEMPTS = 4;

/** What the event adapter needs from the runtime. */
export interface EventDeps {
  readonly env: Environment;
  readonly eventBridge: EventBridgeClient;
  readonly logger: Logger;
}

export interface EngineEvent {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

export type PutResult =
  | { readonly ok: true; readonly eventId: string }
  | { readonly ok: false; readonly kind: FailureKind; readonly detail: string };

export interface EventPublisher {
  /** Puts the event on the engine's bus: the caller holds the reference's claim. */
  put(event: EngineEvent): Promise<PutResult>;
}

export function eventBridgePublisher(deps: EventDeps): EventPublisher {
  // Read before any claim: a missing setting fails the invocation, never a put half-way.
  const eventBusName = required(deps.env, ENV.eventBusName);
  return {
    async put(event) {
      const entry: PutEventsRequestEntry = {
        EventBusName: eventBusName,
        Source: EVENT_SOURCE,
        DetailType: event.detailType,
        Detail: JSON.stringify(event.detail),
        Resources: [],
      };
      let lastError = "";
      for (let attempt = 1; attempt <= PUT_EVENTS_ATTEMPTS; attempt += 1) {
        if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
        let result: PutEventsCommandOutput;
        try {
          result = await deps.eventBridge.send(new PutEventsCommand({ Entries: [entry] }));
        } catch (error) {
          return { ok: false, kind: failureKind(error), detail: describeFailure(error) };
        }
        const [outcome] = result.Entries ?? [];
        const failed = result.FailedEntryCount ?? 0;
        if (failed === 0 && outcome?.EventId) return { ok: true, eventId: outcome.EventId };
        lastError = `${outcome?.ErrorCode ?? "unknown"}: ${outcome?.ErrorMessage ?? "no message"}`;
        deps.logger.warn("PutEvents entry failed", {
          attempt,
          error: lastError,
          detailType: entry.DetailType,
        });
      }
      return {
        ok: false,
        kind: "THROTTLED",
        detail: `PutEvents failed ${PUT_EVENTS_ATTEMPTS} times: ${lastError}`,
      };
    },
  };
}
