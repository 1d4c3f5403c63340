/**
 * The notifier's ports and their AWS adapters: who to tell (the borrower's PROFILE) and how to tell them
 * (SNS: an SMS to the phone number, an email through the engine's topic), one attempt per publish with its
 * outcome classified. The claims that make each channel go out at most once are the outbox item's
 * (outbox-claims.ts). The notifier handler calls these and logs; nothing in it speaks to AWS.
 */
import { type AttributeValue, GetItemCommand } from "@aws-sdk/client-dynamodb";
import type { SNSClient } from "@aws-sdk/client-sns";
import { type MessageAttributeValue, PublishCommand } from "@aws-sdk/client-sns";
import type { ProfileItem } from "../domain/contract.ts";
import { judgeAccountItem } from "../domain/item-rules.ts";
import type { RenderedNotice } from "../notify/render.ts";
import { describeFailure, failureKind } from "./aws-outcome.ts";
import { fromImage } from "./codec.ts";
import type { EngineDeps } from "./engine.ts";
import type { ChannelResult } from "./outbox-claims.ts";
import type { Environment } from "./settings.ts";
import { ENV, required } from "./settings.ts";

export const SMS_TYPE = "Transactional";

/** What the notice adapters need from the runtime. */
export interface NoticeDeps extends Pick<EngineDeps, "dynamo" | "tables"> {
  readonly env: Environment;
  readonly sns: SNSClient;
}

/** The account has no PROFILE, or one that breaks the contract: nobody to notify, whatever the retries. */
export class NoProfileError extends Error {
  override readonly name = "NoProfileError";
}

export interface ProfileReader {
  /** The borrower's PROFILE; throws when there is none or it breaks the contract (nobody to notify). */
  profileOf(accountId: string): Promise<ProfileItem>;
}

export interface NoticeSender {
  /** Publishes the SMS of one notice to `phone`, once: the caller holds the channel's claim. */
  sendSms(phone: string, rendered: RenderedNotice): Promise<ChannelResult>;
  /** Publishes the email of one notice to the email topic, once: the caller holds the channel's claim. */
  sendEmail(notice: NoticeAddress, recipient: string, rendered: RenderedNotice): Promise<ChannelResult>;
}

/** What the email message says about its notice, for the mail gateway's routing and checks. */
export interface NoticeAddress {
  readonly notificationId: string;
  readonly notice: string;
  readonly accountId: string;
}

const attribute = (value: string): MessageAttributeValue => ({ DataType: "String", StringValue: value });

/** An SNS subject: under 100 characters, ASCII printable, no line breaks. */
export function subjectOf(text: string): string {
  const clean = text.replace(/[^\x20-\x7E]/g, " ").trim();
  return clean.length < 100 ? clean : `${clean.slice(0, 96)}...`;
}

/**
 * PROFILEs from the Accounts table; `ahead` holds some read in advance (notice-prefetch.ts), each used once
 * (null: read, and not there).
 */
export function dynamoProfiles(
  deps: NoticeDeps,
  ahead: Map<string, Record<string, AttributeValue> | null> = new Map(),
): ProfileReader {
  const read = async (accountId: string) => {
    if (ahead.has(accountId)) {
      const item = ahead.get(accountId) ?? undefined;
      ahead.delete(accountId);
      return item;
    }
    const result = await deps.dynamo.send(
      new GetItemCommand({
        TableName: deps.tables.accounts,
        Key: { accountId: { S: accountId }, sk: { S: "PROFILE" } },
        ConsistentRead: true,
      }),
    );
    return result.Item;
  };
  return {
    async profileOf(accountId) {
      const item = await read(accountId);
      if (!item) throw new NoProfileError(`account ${accountId} has no PROFILE: nobody to notify`);
      // A notice depends only on what delivery needs: a broken name or one broken address leaves that
      // out (domain/item-rules.ts), and only a PROFILE without its core fields has nobody to notify.
      const verdict = judgeAccountItem(fromImage(item));
      if (verdict.kind !== "USE" || verdict.item.sk !== "PROFILE") {
        throw new NoProfileError(`account ${accountId}: its PROFILE breaks the contract`);
      }
      return verdict.item;
    },
  };
}

/** One attempt per publish; a failure is classified (aws-outcome.ts), never retried blindly. */
async function attempt(run: () => Promise<{ MessageId?: string | undefined }>): Promise<ChannelResult> {
  try {
    const result = await run();
    return { state: "SENT", detail: result.MessageId ?? "" };
  } catch (error) {
    const kind = failureKind(error);
    const detail = describeFailure(error);
    if (kind === "THROTTLED") return { state: "RETRY", detail };
    return { state: kind === "REFUSED" ? "FAILED" : "UNCERTAIN", detail };
  }
}

export function snsNoticeSender(deps: NoticeDeps): NoticeSender {
  // Read before any claim: a missing setting fails the invocation, never a publish half-way.
  const topicArn = required(deps.env, ENV.emailTopicArn);
  return {
    sendSms: (phone, rendered) =>
      attempt(() =>
        deps.sns.send(
          new PublishCommand({
            PhoneNumber: phone,
            Message: rendered.sms,
            MessageAttributes: { "AWS.SNS.SMS.SMSType": attribute(SMS_TYPE) },
          }),
        ),
      ),
    sendEmail: (notice, recipient, rendered) =>
      attempt(() =>
        deps.sns.send(
          new PublishCommand({
            TopicArn: topicArn,
            // SNS refuses subjects of 100 characters or more; raw delivery drops the subject, so the mail
            // gateway gets it as an attribute too.
            Subject: subjectOf(rendered.emailSubject),
            Message: rendered.emailText,
            MessageAttributes: {
              notice: attribute(notice.notice),
              notificationId: attribute(notice.notificationId),
              // The gateway mails `recipient` only if it is the address on this account's PROFILE.
              accountId: attribute(notice.accountId),
              channel: attribute("email"),
              recipient: attribute(recipient),
              subject: attribute(rendered.emailSubject),
            },
          }),
        ),
      ),
  };
}
