/**
 * The notifier's ports and their AWS adapters: who to tell (the borrower's PROFILE), how to tell them (SNS:
 * an SMS to the phone number, an email through the engine's topic), each at most once per notification id
 * and channel, and where to record that a notice went out (its outbox item). The notifier handler parses
 * a record, calls these, and logs; nothing in it speaks to AWS.
 */
import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { SNSClient } from "@aws-sdk/client-sns";
import { type MessageAttributeValue, PublishCommand } from "@aws-sdk/client-sns";
import type { Context } from "aws-lambda";
import { type ProfileItem, parseAccountItem } from "../domain/contract.ts";
import type { RenderedNotice } from "../notify/render.ts";
import { fromImage } from "./codec.ts";
import type { EngineDeps } from "./engine.ts";
import { once, onceStore } from "./idempotency.ts";
import type { Environment } from "./settings.ts";
import { ENV, required } from "./settings.ts";

export const SMS_TYPE = "Transactional";

/** What the notice adapters need from the runtime. */
export interface NoticeDeps extends Pick<EngineDeps, "dynamo" | "tables"> {
  readonly env: Environment;
  readonly sns: SNSClient;
}

export interface ProfileReader {
  /** The borrower's PROFILE; throws when there is none or it breaks the contract (nobody to notify). */
  profileOf(accountId: string): Promise<ProfileItem>;
}

export interface NoticeSender {
  /** Sends the SMS of one notice to `phone`, once per notification id. */
  sendSms(notificationId: string, phone: string, rendered: RenderedNotice): Promise<void>;
  /** Sends the email of one notice to `recipient` through the email topic, once per notification id. */
  sendEmail(
    notificationId: string,
    notice: string,
    recipient: string,
    rendered: RenderedNotice,
  ): Promise<void>;
}

export interface DeliveryLog {
  /** Marks the notice's outbox item delivered at `at` by `channels` (first delivery wins). */
  markDelivered(notificationId: string, channels: readonly string[], at: string): Promise<void>;
}

const attribute = (value: string): MessageAttributeValue => ({ DataType: "String", StringValue: value });

/** An SNS subject: under 100 characters, ASCII printable, no line breaks. */
export function subjectOf(text: string): string {
  const clean = text.replace(/[^\x20-\x7E]/g, " ").trim();
  return clean.length < 100 ? clean : `${clean.slice(0, 96)}...`;
}

export function dynamoProfiles(deps: NoticeDeps): ProfileReader {
  return {
    async profileOf(accountId) {
      const result = await deps.dynamo.send(
        new GetItemCommand({
          TableName: deps.tables.accounts,
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
    },
  };
}

export function snsNoticeSender(deps: NoticeDeps, context?: Context): NoticeSender {
  const store = onceStore(deps.dynamo, required(deps.env, ENV.idempotencyTable));
  const publish = async (input: ConstructorParameters<typeof PublishCommand>[0]) => {
    const result = await deps.sns.send(new PublishCommand(input));
    return { messageId: result.MessageId ?? "" };
  };
  return {
    async sendSms(notificationId, phone, rendered) {
      const sendOnce = once(
        store,
        () =>
          publish({
            PhoneNumber: phone,
            Message: rendered.sms,
            MessageAttributes: { "AWS.SNS.SMS.SMSType": attribute(SMS_TYPE) },
          }),
        context,
      );
      await sendOnce(`${notificationId}#sms`);
    },
    async sendEmail(notificationId, notice, recipient, rendered) {
      const topicArn = required(deps.env, ENV.emailTopicArn);
      const sendOnce = once(
        store,
        () =>
          publish({
            TopicArn: topicArn,
            // SNS refuses subjects of 100 characters or more; raw delivery drops the subject, so the mail
            // gateway gets it as an attribute too.
            Subject: subjectOf(rendered.emailSubject),
            Message: rendered.emailText,
            MessageAttributes: {
              notice: attribute(notice),
              notificationId: attribute(notificationId),
              channel: attribute("email"),
              recipient: attribute(recipient),
              subject: attribute(rendered.emailSubject),
            },
          }),
        context,
      );
      await sendOnce(`${notificationId}#email`);
    },
  };
}

/**
 * Marks the notice delivered on its outbox item, so the liquidation dispatcher can see the call notice went
 * out before it sends a liquidation request (an update: the notifier's filter ignores MODIFY).
 */
export function outboxDeliveryLog(deps: NoticeDeps): DeliveryLog {
  return {
    async markDelivered(notificationId, channels, at) {
      await deps.dynamo.send(
        new UpdateItemCommand({
          TableName: deps.tables.outbox,
          Key: { outboxId: { S: notificationId } },
          UpdateExpression: "SET deliveredAt = if_not_exists(deliveredAt, :now), channels = :channels",
          ConditionExpression: "attribute_exists(outboxId)",
          ExpressionAttributeValues: {
            ":now": { S: at },
            ":channels": { S: channels.join(",") || "none" },
          },
        }),
      );
    },
  };
}
