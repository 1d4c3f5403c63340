/**
 * Putting one engine event at most once per reference: claim the outbox item, put, record the outcome. A
 * certain failure (throttled, refused, entries failed) releases the claim and throws, so the stream retries
 * the record; an uncertain one is recorded (dispatchedAt at the claim time, outcome UNCERTAIN) and raised,
 * never put again: the state machine's next attempt, `liquidation.retrySeconds` after that dispatch time,
 * supersedes it (docs/events.md).
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import { LOG_SIGNALS } from "../domain/alarms.ts";
import type { EngineEvent, EventPublisher } from "./liquidation-ports.ts";
import type { OutboxClaims } from "./outbox-claims.ts";

/**
 * How long a claim on an event lasts: longer than a put can take (4 requests of at most 5 s, and 1.4 s of
 * waits). Safety does not depend on it: a claim found expired is recorded UNCERTAIN and never put again, and
 * a late completion of the expired one fails its condition. It only bounds how long a retry waits.
 */
export const DISPATCH_LEASE_MS = 30_000;

export class DispatchNotConfirmedError extends Error {
  override readonly name = "DispatchNotConfirmedError";
}

export interface DispatchPorts {
  readonly claims: OutboxClaims;
  readonly publisher: EventPublisher;
  readonly logger: Logger;
  readonly now: () => string;
  /** Milliseconds this invocation may still wait. */
  readonly remainingMs: () => number;
}

export type Dispatched = "PUT" | "ALREADY" | "UNCERTAIN";

async function claim(ports: DispatchPorts, reference: string, token: string) {
  for (;;) {
    const nowMs = Date.now();
    const found = await ports.claims.claimDispatch(
      reference,
      token,
      ports.now(),
      nowMs,
      nowMs + DISPATCH_LEASE_MS,
    );
    if (found.status !== "BUSY") return found;
    // Another invocation holds it (a replay racing a retry): wait for its lease, if this invocation can.
    const waitMs = found.leaseUntilMs - nowMs + 50;
    if (waitMs > ports.remainingMs() - 5_000) {
      throw new DispatchNotConfirmedError(`${reference} is being put by another invocation`);
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

export async function dispatchEvent(
  ports: DispatchPorts,
  reference: string,
  accountId: string,
  event: EngineEvent,
): Promise<Dispatched> {
  const token = randomUUID();
  const found = await claim(ports, reference, token);
  if (found.status === "DONE") return "ALREADY";
  if (found.status === "UNCERTAIN") {
    ports.logger.error(LOG_SIGNALS.EVENT_UNCERTAIN.message, {
      reference,
      accountId,
      claimedAt: found.claimedAt,
    });
    return "UNCERTAIN";
  }
  const claimedAt = ports.now();
  const result = await ports.publisher.put(event);
  if (result.ok) {
    await ports.claims.completeDispatch(reference, token, "PUT", ports.now(), result.eventId);
    ports.logger.info("event put", {
      reference,
      detailType: event.detailType,
      eventId: result.eventId,
      accountId,
    });
    return "PUT";
  }
  if (result.kind === "UNCERTAIN") {
    await ports.claims.completeDispatch(reference, token, "UNCERTAIN", claimedAt, "");
    ports.logger.error(LOG_SIGNALS.EVENT_UNCERTAIN.message, { reference, accountId, error: result.detail });
    return "UNCERTAIN";
  }
  await ports.claims.releaseDispatch(reference, token);
  throw new DispatchNotConfirmedError(`${reference}: ${result.detail}`);
}
