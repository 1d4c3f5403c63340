/**
 * The notifier role's SNS statements: publish to the engine's email topic, publish SMS to phone numbers,
 * and nothing else. The notifier is the only function that publishes to SNS (docs/security.md).
 *
 * How IAM sees `sns:Publish`. A publish to a topic or to a mobile platform endpoint is authorized against
 * that topic's or endpoint's ARN (`arn:<partition>:sns:<region>:<account>:<name>`, and
 * `…:app/<platform>/<name>` or `…:endpoint/<platform>/<app>/<id>`). A publish straight to a phone number
 * has no ARN: it is authorized against the phone number itself. A refused SMS reads "… is not authorized to
 * perform: SNS:Publish on resource: +1xxxxxxxxx", so `Resource: "arn:aws:sns:*:*:*"` does not match it and
 * only `"*"` or a NotResource does (github.com/Miserlou/Zappa/issues/1941,
 * github.com/functionalone/serverless-iam-roles-per-function/issues/106). The pattern usually given for
 * "SMS but no topic", `Deny sns:Publish on arn:aws:sns:*:*:*` with `Allow sns:Publish on *`
 * (github.com/aws-amplify/amplify-cli/issues/9871; the same idea in github.com/aws/aws-cdk/pull/6999 for
 * Cognito's SMS role), is wrong here: an explicit Deny overrides every Allow, so it would refuse our own
 * topic too. A Deny with `NotResource: <our topic>` would not help either: it matches the phone numbers, and
 * a Resource or NotResource element takes only ARNs and "*", so a phone number cannot be excepted.
 *
 * So the SMS grant is an Allow with NotResource: every resource that is not an SNS ARN, which for
 * sns:Publish is exactly the phone numbers. It grants no topic and no endpoint, ours included (ours has its
 * own Allow). Platform applications and endpoints are also denied outright: their ARNs have a "/" in the
 * last part and a topic name cannot (letters, digits, "-" and "_"), so that Deny never touches a topic.
 *
 * What this cannot do: deny every topic but ours. IAM has no condition key that names the resource, so
 * "every SNS ARN except one" cannot be written as a Deny. A topic whose own policy allows this role, or every
 * principal of the account (SNS's default topic policy does, under `AWS:SourceOwner`), can still be
 * published to by it; the role's identity policy grants no topic but ours. Which numbers get an SMS is
 * decided in code (functions/notify/phone.ts, the policy's `notices.smsCountryCodes`): IAM has no condition
 * key for a phone number or its country.
 *
 * cdk-nag: no Allow here has a Resource with "*" (the wildcard is in a NotResource, which IAM5 does not
 * read), so there is nothing to acknowledge; this comment is the reason for the NotResource.
 */
import { Aws } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";

/** Every SNS ARN of the partition: topics, platform applications and platform endpoints. */
export const EVERY_SNS_ARN = `arn:${Aws.PARTITION}:sns:*:*:*`;

/** Every platform application and endpoint ARN (a "/" in the last part), and never a topic's. */
export const EVERY_SNS_PLATFORM_ARN = `arn:${Aws.PARTITION}:sns:*:*:*/*`;

/** The notifier role's SNS statements: the email topic, SMS to phone numbers, and nothing else. */
export function noticePublishStatements(emailTopicArn: string): PolicyStatement[] {
  return [
    new PolicyStatement({
      sid: "PublishEmailNotices",
      effect: Effect.ALLOW,
      actions: ["sns:Publish"],
      resources: [emailTopicArn],
    }),
    new PolicyStatement({
      sid: "PublishSmsToPhoneNumbersOnly",
      effect: Effect.ALLOW,
      actions: ["sns:Publish"],
      notResources: [EVERY_SNS_ARN],
    }),
    new PolicyStatement({
      sid: "NeverPublishToPlatformEndpoints",
      effect: Effect.DENY,
      actions: ["sns:Publish"],
      resources: [EVERY_SNS_PLATFORM_ARN],
    }),
  ];
}
