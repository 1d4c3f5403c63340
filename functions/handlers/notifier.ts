/**
 * Handler 4: the notifier, on the Outbox stream (filtered to inserted NOTIFY items). For each notice it
 * sends one SMS (to the phone number, Transactional) and one email (through the email topic, routed by
 * message attributes), each at most once per notification id, and marks the notice delivered. It parses,
 * calls its ports (adapters/notice-ports.ts) and logs. Phone numbers and addresses go only into the SNS
 * request, never into logs. See docs/notifications.md for the SNS limits.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { fromImage } from "../adapters/codec.ts";
import {
  type DeliveryLog,
  dynamoProfiles,
  type NoticeSender,
  outboxDeliveryLog,
  type ProfileReader,
  snsNoticeSender,
} from "../adapters/notice-ports.ts";
import { parseNoticePayload } from "../notify/payload.ts";
import { renderNotice } from "../notify/render.ts";
import { type Runtime, runtime } from "./runtime.ts";

export { SMS_TYPE, subjectOf } from "../adapters/notice-ports.ts";

interface Ports {
  readonly profiles: ProfileReader;
  readonly sender: NoticeSender;
  readonly deliveries: DeliveryLog;
}

async function handleRecord(engine: Runtime, ports: Ports, record: DynamoDBRecord): Promise<void> {
  const image = record.dynamodb?.NewImage;
  if (record.eventName !== "INSERT" || !image) return;
  const item = fromImage(image);
  if (item.kind !== "NOTIFY") return;
  const payload = parseNoticePayload(String(item.payload));
  const profile = await ports.profiles.profileOf(payload.accountId);
  const rendered = renderNotice(payload, {
    ...(profile.borrowerName ? { borrowerName: profile.borrowerName } : {}),
    timeZone: profile.timeZone,
    currency: profile.currency,
  });
  const channels: string[] = [];
  const { phoneE164, email } = profile.contact;
  if (phoneE164) {
    await ports.sender.sendSms(payload.notificationId, phoneE164, rendered);
    channels.push("sms");
  }
  if (email) {
    await ports.sender.sendEmail(payload.notificationId, payload.notice, email, rendered);
    channels.push("email");
  }
  await ports.deliveries.markDelivered(payload.notificationId, channels, engine.now());
  engine.logger.info("notice sent", {
    notificationId: payload.notificationId,
    notice: payload.notice,
    accountId: payload.accountId,
    channels,
  });
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const engine = runtime();
  const ports: Ports = {
    profiles: dynamoProfiles(engine),
    sender: snsNoticeSender(engine, context),
    deliveries: outboxDeliveryLog(engine),
  };
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(engine, ports, record),
    new BatchProcessor(EventType.DynamoDBStreams),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
