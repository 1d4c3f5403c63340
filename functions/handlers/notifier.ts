/**
 * Handler 5: the notifier, on the notice queue (one message per NOTIFY outbox item, put there by the outbox
 * relay). It reads the batch's outbox items and PROFILEs ahead, two requests in all; for each notice it claims the outbox item, sends the SMS (Transactional, to the phone number, at
 * this invocation's share of `SMS_PER_SECOND`) and the email (through the email topic), and completes the
 * claim; adapters/notice-delivery.ts has the rules. A throttled notice goes back to the queue with a
 * backoff: throttling is waiting, not failure. Phone numbers and addresses go only into the SNS request,
 * never into logs. See docs/notifications.md for the SNS limits and docs/pipeline.md for the claims.
 */
import { randomUUID } from "node:crypto";
import { EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { type DeliveryPorts, deliverNotice, type NoticeMessage } from "../adapters/notice-delivery.ts";
import { dynamoProfiles, snsNoticeSender } from "../adapters/notice-ports.ts";
import { readNoticesAhead } from "../adapters/notice-prefetch.ts";
import { ENV, integer, required } from "../adapters/settings.ts";
import { LOG_SIGNALS } from "../domain/alarms.ts";
import { ReportingBatchProcessor } from "./batch.ts";
import { type Runtime, runtimeWithPolicies } from "./runtime.ts";

export { SMS_TYPE, subjectOf } from "../adapters/notice-ports.ts";

/** How long a claim on a notice lasts: longer than the function's timeout (30 s). */
export const NOTICE_LEASE_MS = 60_000;

/** A message for later: visible again in `seconds`, and reported as failed so the queue keeps it. */
class NotYet extends Error {
  override readonly name = "NotYet";
}

/** Spaces this invocation's SMS by its share of the account-wide SMS throughput. */
function pacer(engine: Runtime): () => Promise<void> {
  const perSecond = integer(engine.env, ENV.smsPerSecond, 10);
  const intervalMs = (1000 * integer(engine.env, ENV.notifierConcurrency, 2)) / perSecond;
  let nextMs = 0;
  return async () => {
    const waitMs = nextMs - Date.now();
    nextMs = Math.max(nextMs, Date.now()) + intervalMs;
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  };
}

/** The notice a message names, if its body is one: a broken body fails on its own in handleMessage. */
function notificationIdOf(record: SQSRecord): string[] {
  try {
    const { notificationId } = JSON.parse(record.body) as Partial<NoticeMessage>;
    return typeof notificationId === "string" && notificationId !== "" ? [notificationId] : [];
  } catch {
    return [];
  }
}

async function handleMessage(engine: Runtime, ports: DeliveryPorts, record: SQSRecord): Promise<void> {
  const message = JSON.parse(record.body) as NoticeMessage;
  const { notificationId } = message;
  const token = randomUUID();
  const delivery = await deliverNotice(ports, message, {
    now: engine.now(),
    token,
    leaseMs: NOTICE_LEASE_MS,
  });
  if (delivery.status === "MISSING") throw new Error(`notice ${notificationId} has no outbox item`);
  if (delivery.status === "DONE") return;
  if (delivery.status === "RETRY") {
    await engine.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: required(engine.env, ENV.noticeQueueUrl),
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: delivery.inSeconds,
      }),
    );
    throw new NotYet(`notice ${notificationId}: again in ${delivery.inSeconds} s`);
  }
  const states = Object.fromEntries(
    Object.entries(delivery.results).map(([channel, r]) => [channel, r.state]),
  );
  const fields = { notificationId, notice: delivery.notice, accountId: delivery.accountId, channels: states };
  if (delivery.outcome === "UNDELIVERABLE" || Object.values(states).includes("FAILED")) {
    const reasons = Object.fromEntries(
      Object.entries(delivery.results).map(([channel, r]) => [channel, r.detail]),
    );
    engine.logger.error(LOG_SIGNALS.NOTICE_UNDELIVERED.message, {
      ...fields,
      outcome: delivery.outcome,
      reasons,
    });
  }
  if (Object.values(states).includes("UNCERTAIN"))
    engine.logger.error(LOG_SIGNALS.NOTICE_UNCERTAIN.message, fields);
  engine.logger.info("notice sent", { ...fields, outcome: delivery.outcome });
}

export async function handler(event: SQSEvent, context?: Context) {
  const engine = await runtimeWithPolicies();
  const ahead = await readNoticesAhead(engine, event.Records.flatMap(notificationIdOf));
  const ports: DeliveryPorts = {
    claims: ahead.claims,
    profiles: dynamoProfiles(engine, ahead.profiles),
    sender: snsNoticeSender(engine),
    policies: engine.policies,
    smsTurn: pacer(engine),
  };
  return processPartialResponse(
    event,
    (record: SQSRecord) => handleMessage(engine, ports, record),
    new ReportingBatchProcessor(EventType.SQS, engine.logger, (error) => error instanceof NotYet),
    { ...(context ? { context } : {}), processInParallel: false, throwOnFullBatchFailure: false },
  );
}
