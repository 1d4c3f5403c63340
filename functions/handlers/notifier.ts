/**
 * Handler 4: the notifier, on the Outbox stream (filtered to inserted NOTIFY items). For each notice it
 * sends one SMS (SNS Publish to the phone number, Transactional) and one email (SNS Publish to the email
 * topic, routed by message attributes), each at most once per notification id. Phone numbers and
 * addresses go only into the SNS request, never into logs. See docs/notifications.md for the SNS limits.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { type MessageAttributeValue, PublishCommand } from "@aws-sdk/client-sns";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { fromImage } from "../adapters/codec.ts";
import { once, onceStore } from "../adapters/idempotency.ts";
import { ENV, required } from "../adapters/settings.ts";
import { type ProfileItem, parseAccountItem } from "../domain/contract.ts";
import { type NoticePayload, renderNotice } from "../notify/render.ts";
import { type Runtime, runtime } from "./runtime.ts";

export const SMS_TYPE = "Transactional";

const string = (value: string): MessageAttributeValue => ({ DataType: "String", StringValue: value });

/** An SNS subject: under 100 characters, ASCII printable, no line breaks. */
export function subjectOf(text: string): string {
  const clean = text.replace(/[^\x20-\x7E]/g, " ").trim();
  return clean.length < 100 ? clean : `${clean.slice(0, 96)}...`;
}

async function profileOf(rt: Runtime, accountId: string): Promise<ProfileItem> {
  const result = await rt.dynamo.send(
    new GetItemCommand({
      TableName: rt.tables.accounts,
      Key: { accountId: { S: accountId }, sk: { S: "PROFILE" } },
      ConsistentRead: true,
    }),
  );
  if (!result.Item) throw new Error(`account ${accountId} has no PROFILE: nobody to notify`);
  const parsed = parseAccountItem(fromImage(result.Item));
  if (!parsed.ok || parsed.value.sk !== "PROFILE") {
    throw new Error(`account ${accountId}: its PROFILE breaks the contract`);
  }
  return parsed.value as ProfileItem;
}

async function handleRecord(rt: Runtime, record: DynamoDBRecord, context?: Context): Promise<void> {
  const image = record.dynamodb?.NewImage;
  if (record.eventName !== "INSERT" || !image) return;
  const item = fromImage(image);
  if (item.kind !== "NOTIFY") return;
  const payload = JSON.parse(String(item.payload)) as NoticePayload;
  const profile = await profileOf(rt, payload.accountId);
  const rendered = renderNotice(payload, {
    ...(profile.borrowerName ? { borrowerName: profile.borrowerName } : {}),
    timeZone: profile.timeZone,
    currency: profile.currency,
  });
  const store = onceStore(rt.dynamo, required(rt.env, ENV.idempotencyTable));
  const common = {
    notice: string(payload.notice),
    notificationId: string(payload.notificationId),
  };
  const sent: string[] = [];
  const phone = profile.contact.phoneE164;
  if (phone) {
    const sendSms = once(
      store,
      async () => {
        const result = await rt.sns.send(
          new PublishCommand({
            PhoneNumber: phone,
            Message: rendered.sms,
            MessageAttributes: { "AWS.SNS.SMS.SMSType": string(SMS_TYPE) },
          }),
        );
        return { messageId: result.MessageId ?? "" };
      },
      context,
    );
    await sendSms(`${payload.notificationId}#sms`);
    sent.push("sms");
  }
  const email = profile.contact.email;
  if (email) {
    const topicArn = required(rt.env, ENV.emailTopicArn);
    const sendEmail = once(
      store,
      async () => {
        const result = await rt.sns.send(
          new PublishCommand({
            TopicArn: topicArn,
            // SNS refuses subjects of 100 characters or more; raw delivery drops the subject, so the mail
            // gateway gets it as an attribute too.
            Subject: subjectOf(rendered.emailSubject),
            Message: rendered.emailText,
            MessageAttributes: {
              ...common,
              channel: string("email"),
              recipient: string(email),
              subject: string(rendered.emailSubject),
            },
          }),
        );
        return { messageId: result.MessageId ?? "" };
      },
      context,
    );
    await sendEmail(`${payload.notificationId}#email`);
    sent.push("email");
  }
  // Mark the notice delivered on its outbox item, so the liquidation dispatcher can see the call notice
  // went out before it sends a liquidation request (an update: the notifier's filter ignores MODIFY).
  await rt.dynamo.send(
    new UpdateItemCommand({
      TableName: rt.tables.outbox,
      Key: { outboxId: { S: payload.notificationId } },
      UpdateExpression: "SET deliveredAt = if_not_exists(deliveredAt, :now), channels = :channels",
      ConditionExpression: "attribute_exists(outboxId)",
      ExpressionAttributeValues: { ":now": { S: rt.now() }, ":channels": { S: sent.join(",") || "none" } },
    }),
  );
  rt.logger.info("notice sent", {
    notificationId: payload.notificationId,
    notice: payload.notice,
    accountId: payload.accountId,
    channels: sent,
  });
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const rt = runtime();
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(rt, record, context),
    new BatchProcessor(EventType.DynamoDBStreams),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
