/**
 * How margin notices leave the engine: one encrypted SNS topic for email, read by the lender's mail gateway
 * through a queue, and the account-wide SNS settings for SMS. Grouped so that the stack reads as its parts
 * and the alarms can ask for the notices' topic and spend limit by name. See docs/notifications.md; who may
 * publish is docs/security.md.
 */
import { Duration } from "aws-cdk-lib";
import { Effect, type IRole, PolicyStatement, StarPrincipal } from "aws-cdk-lib/aws-iam";
import { Alias } from "aws-cdk-lib/aws-kms";
import { SubscriptionFilter, Topic, TopicPolicy } from "aws-cdk-lib/aws-sns";
import { SqsSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";
import { redrivenQueue } from "./queues.ts";

/** SNS's account-wide monthly SMS spend limit when none is given, in USD. */
export const DEFAULT_SMS_MONTHLY_SPEND_LIMIT_USD = 100;

export interface BorrowerNoticesProps {
  /**
   * SNS's account-wide monthly SMS spend limit, in USD.
   * @default 100
   */
  readonly smsMonthlySpendLimitUsd?: number;
  /**
   * How long the email delivery queue keeps a notice the mail gateway has not taken.
   * @default 4 days
   */
  readonly emailRetention?: Duration;
}

/** Whether the topic's policy already denies publishing without TLS (`enforceSSL` adds that statement). */
function deniesPlainHttp(topic: Topic): boolean {
  const policy = topic.node.tryFindChild("Policy");
  if (!(policy instanceof TopicPolicy)) return false;
  return JSON.stringify(policy.document.toJSON()).includes('"aws:SecureTransport":"false"');
}

/**
 * The email topic (subscribed by the mail gateway's queue, filtered on `channel: email`) and the SMS
 * settings (spend limit, transactional type). Borrowers are not subscribed one by one: see
 * docs/notifications.md.
 *
 * Its resources are created in `scope`, beside this construct, not under it: their logical ids are hashed
 * from their construct paths, and the deployed queues and topic must keep the ids they already have.
 */
export class BorrowerNotices extends Construct {
  /** Every email notice is published here, with a `channel` message attribute. */
  readonly emailTopic: Topic;
  /** The queue the lender's mail gateway reads email notices from. */
  readonly emailDelivery: Queue;
  /** Where email notices go after five failed receives by the mail gateway. */
  readonly emailDeliveryDeadLetter: Queue;
  /** The custom resource that sets SNS's account-wide SMS attributes. */
  readonly smsSettings: AwsCustomResource;
  /** The monthly SMS spend limit that was set, in USD. */
  readonly smsMonthlySpendLimitUsd: number;
  private publishersRestricted = false;

  constructor(scope: Construct, id: string, props: BorrowerNoticesProps = {}) {
    super(scope, id);
    const snsKey = Alias.fromAliasName(scope, "SnsKey", "alias/aws/sns");
    this.emailTopic = new Topic(scope, "BorrowerEmailTopic", { masterKey: snsKey, enforceSSL: true });
    const email = redrivenQueue(scope, "EmailDelivery", {
      retentionPeriod: props.emailRetention ?? Duration.days(4),
    });
    this.emailDelivery = email.queue;
    this.emailDeliveryDeadLetter = email.deadLetter;
    this.emailTopic.addSubscription(
      new SqsSubscription(this.emailDelivery, {
        rawMessageDelivery: true,
        filterPolicy: { channel: SubscriptionFilter.stringFilter({ allowlist: ["email"] }) },
      }),
    );

    this.smsMonthlySpendLimitUsd = props.smsMonthlySpendLimitUsd ?? DEFAULT_SMS_MONTHLY_SPEND_LIMIT_USD;
    const spendLimitUsd = this.smsMonthlySpendLimitUsd;
    this.smsSettings = new AwsCustomResource(scope, "SmsSettings", {
      installLatestAwsSdk: false,
      onUpdate: {
        service: "SNS",
        action: "setSMSAttributes",
        parameters: {
          attributes: { MonthlySpendLimit: String(spendLimitUsd), DefaultSMSType: "Transactional" },
        },
        physicalResourceId: PhysicalResourceId.of(`sms-settings-${spendLimitUsd}`),
      },
      policy: AwsCustomResourcePolicy.fromStatements([
        new PolicyStatement({ actions: ["sns:SetSMSAttributes"], resources: ["*"] }),
      ]),
    });
  }

  /**
   * Lets only `roles` publish to the email topic, whatever any identity policy in the account allows: the
   * topic policy denies `sns:Publish` to every principal whose `aws:PrincipalArn` is none of theirs. The mail
   * gateway mails what arrives on the topic's queue, so a publisher is someone who can mail any borrower.
   * The topic's existing statements stay (the policy is added to, not replaced), and publishing without TLS
   * is denied too when the topic does not already deny it. SMS is not covered: an SMS is published to a phone
   * number, not to a topic; the notifier role's own statements bound it (lib/notice-permissions.ts).
   *
   * One call per topic (a second would deny the first call's roles too); at least one role.
   */
  restrictPublishersTo(roles: readonly IRole[]): void {
    if (roles.length === 0) {
      throw new Error("restrictPublishersTo needs at least one role: with none, no notice could be emailed");
    }
    if (this.publishersRestricted) {
      throw new Error("restrictPublishersTo was already called: list every publishing role in one call");
    }
    this.publishersRestricted = true;
    const topicArn = this.emailTopic.topicArn;
    if (!deniesPlainHttp(this.emailTopic)) {
      this.emailTopic.addToResourcePolicy(
        new PolicyStatement({
          sid: "AllowPublishThroughSSLOnly",
          effect: Effect.DENY,
          principals: [new StarPrincipal()],
          actions: ["sns:Publish"],
          resources: [topicArn],
          conditions: { Bool: { "aws:SecureTransport": "false" } },
        }),
      );
    }
    this.emailTopic.addToResourcePolicy(
      new PolicyStatement({
        sid: "OnlyEnginePublishers",
        effect: Effect.DENY,
        principals: [new StarPrincipal()],
        actions: ["sns:Publish"],
        resources: [topicArn],
        conditions: { ArnNotEquals: { "aws:PrincipalArn": roles.map((role) => role.roleArn) } },
      }),
    );
  }
}
