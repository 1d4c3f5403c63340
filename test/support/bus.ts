/** What the pipeline tests read of the engine's bus: the details put, and each checked against its schema. */
import { expect } from "vitest";
import { eventSchema, type LiquidationEventType } from "../../functions/domain/liquidation-events.ts";
import type { Pipeline } from "./pipeline.ts";

/** The details of every event of `detailType` put on the bus, in order. */
export function busDetails(p: Pipeline, detailType: string): Record<string, unknown>[] {
  return p.stub.events
    .filter((event) => event.detailType === detailType)
    .map((event) => JSON.parse(event.detail) as Record<string, unknown>);
}

/** The same, each in its envelope checked against the event's schema (liquidation-events.ts). */
export function checkedDetails(p: Pipeline, detailType: LiquidationEventType): Record<string, unknown>[] {
  const details = busDetails(p, detailType);
  for (const detail of details) {
    const parsed = eventSchema(detailType).safeParse(busEnvelope(p, detailType, detail));
    expect(parsed.success, `${detailType} ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
  }
  return details;
}

/** A detail in the envelope EventBridge delivers it in, at the pipeline's time: what the event schemas read. */
export function busEnvelope(p: Pipeline, detailType: string, detail: Record<string, unknown>) {
  return {
    version: "0",
    id: "00000000-0000-4000-8000-000000000000",
    "detail-type": detailType,
    source: "margin-call-engine",
    account: "111122223333",
    time: p.now(),
    region: "us-east-1",
    resources: [],
    detail,
  };
}
