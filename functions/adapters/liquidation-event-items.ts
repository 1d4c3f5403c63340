/**
 * The outbox item of an engine event whose detail is made where it is decided (a circuit breaker's
 * LiquidationPaused or LiquidationResumed, the insurance fund's and the loss waterfall's events): written in
 * the transaction of the decision, under the event's own reference, and put on the bus by the outbox relay,
 * which checks the detail against its schema (liquidation-events.ts) and puts it once (event-dispatch.ts).
 */
import type { TransactWriteItem } from "@aws-sdk/client-dynamodb";
import type { EventDetail } from "../domain/liquidation-events.ts";
import { toItem } from "./codec.ts";

/** The outbox kind of these items: the relay puts `detailType` with `payload` as its detail. */
export const LIQUIDATION_EVENT = "LIQUIDATION_EVENT";

export const DEFAULT_OUTBOX_RETENTION_SECONDS = 30 * 86_400;

/** A Put of the event's outbox item, once: `attribute_not_exists(outboxId)` on its reference. */
export function liquidationEventItem(
  table: string,
  event: EventDetail,
  /** The partition the event belongs to: an account, `BREAKER#<asset>`, `FUND#<currency>`. */
  accountId: string,
  now: string,
  retentionSeconds = DEFAULT_OUTBOX_RETENTION_SECONDS,
): TransactWriteItem {
  return {
    Put: {
      TableName: table,
      Item: toItem({
        outboxId: String(event.detail.reference),
        kind: LIQUIDATION_EVENT,
        detailType: event.detailType,
        accountId,
        createdAt: now,
        payload: JSON.stringify(event.detail),
        expiresAtEpochSeconds: Math.floor(Date.parse(now) / 1000) + retentionSeconds,
      }),
      ConditionExpression: "attribute_not_exists(outboxId)",
    },
  };
}
