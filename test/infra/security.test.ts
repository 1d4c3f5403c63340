/**
 * CDK assertions behind docs/security.md: who may write which table, who may publish to SNS and put on the
 * bus in the synthesized stack, and the exact resource policies `LiquidationBus.restrictPublishersTo` and
 * `BorrowerNotices.restrictPublishersTo` add and the notifier's SNS statements (lib/notice-permissions.ts).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type CfnElement, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { afterAll, describe, expect, it } from "vitest";
import { buildApp } from "../../lib/app.ts";
import { BorrowerNotices } from "../../lib/borrower-notices.ts";
import { LiquidationBus } from "../../lib/liquidation-bus.ts";
import { noticePublishStatements } from "../../lib/notice-permissions.ts";

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are free-form JSON; the tests read them.
type Json = any;

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

/** Every logical id a CloudFormation value refers to (Ref and Fn::GetAtt, at any depth). */
function referencedIds(value: Json): string[] {
  if (Array.isArray(value)) return value.flatMap(referencedIds);
  if (value === null || typeof value !== "object") return [];
  if (typeof value.Ref === "string") return [value.Ref];
  if (Array.isArray(value["Fn::GetAtt"])) return [String(value["Fn::GetAtt"][0])];
  return Object.values(value).flatMap(referencedIds);
}

const list = (value: Json): Json[] => (value === undefined ? [] : [value].flat());

describe("the synthesized engine stack", () => {
  const outdir = mkdtempSync(join(tmpdir(), "margin-call-security-test-"));
  outdirs.push(outdir);
  const { stack } = buildApp({ outdir, context: { "aws:cdk:bundling-stacks": [] } });
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: Json }>;
  const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);

  /** Each allowed (role, action, resource) of the roles' identity policies; "*" for a wildcard or NotResource. */
  const grants = ofType("AWS::IAM::Policy").flatMap(([, policy]) => {
    const role = referencedIds(policy.Properties.Roles).join(",");
    return (policy.Properties.PolicyDocument.Statement as Json[])
      .filter((statement) => statement.Effect === "Allow")
      .flatMap((statement) => {
        const targets =
          statement.NotResource !== undefined
            ? ["*"]
            : list(statement.Resource).map((resource) =>
                resource === "*" ? "*" : referencedIds(resource).join(","),
              );
        const leadingKeys = statement.Condition?.["ForAllValues:StringLike"]?.["dynamodb:LeadingKeys"];
        return list(statement.Action).flatMap((action: string) =>
          targets.map((target) => ({
            role,
            action,
            target,
            leadingKeys: leadingKeys as string[] | undefined,
          })),
        );
      });
  });

  const READS = new Set(
    ["GetItem", "BatchGetItem", "Query", "Scan", "ConditionCheckItem", "DescribeTable"]
      .concat(["DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"])
      .map((action) => `dynamodb:${action}`),
  );
  const dynamoActionsOn = (table: string) =>
    new Set(
      grants
        .filter(
          ({ action, target }) => action.startsWith("dynamodb:") && (target === table || target === "*"),
        )
        .map(({ action }) => action),
    );

  it.each(["Accounts", "Prices"])("lets no engine role write %s: upstream owns it", (table) => {
    const actions = [...dynamoActionsOn(table)];
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) expect(READS.has(action), `${action} on ${table}`).toBe(true);
  });

  it.each(["AuditLog", "Quarantine"])(
    "lets the engine only add items to %s, never change or delete one",
    (table) => {
      // Parked records (Quarantine, partition keys `Parked#...`) are the engine's own, updated and deleted.
      const parked = (grant: { leadingKeys?: string[] | undefined }) =>
        grant.leadingKeys?.length === 1 && grant.leadingKeys[0] === "Parked#*";
      const writes = new Set(
        grants
          .filter(
            ({ action, target }) => action.startsWith("dynamodb:") && (target === table || target === "*"),
          )
          .filter((grant) => !READS.has(grant.action) && !parked(grant))
          .map(({ action }) => action),
      );
      expect([...writes]).toEqual(["dynamodb:PutItem"]);
    },
  );

  it("gives events:PutEvents to one role, on the engine's bus only", () => {
    const puts = grants.filter(({ action }) => action === "events:PutEvents" || action === "events:*");
    expect(puts).toHaveLength(1);
    expect(resources[puts[0]?.target ?? ""]?.Type).toBe("AWS::Events::EventBus");
  });

  it("gives sns:Publish to one role: the notifier's", () => {
    const publishers = new Set(
      grants.filter(({ action }) => action === "sns:Publish" || action === "sns:*").map(({ role }) => role),
    );
    expect(publishers.size).toBe(1);
  });

  it("refuses to take an email notice over plain HTTP", () => {
    const [[, topicPolicy] = []] = ofType("AWS::SNS::TopicPolicy").filter(([, policy]) =>
      referencedIds(policy.Properties.Topics).some((id) => id.startsWith("BorrowerEmailTopic")),
    );
    expect(topicPolicy?.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({
        Effect: "Deny",
        Principal: "*",
        Action: "sns:Publish",
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      }),
    );
  });
});

describe("restrictPublishersTo", () => {
  function build(relays = 1) {
    const stack = new Stack(new App(), "Security");
    const bus = new LiquidationBus(stack, "LiquidationBus", { eventBusName: "margin-call-test" });
    const notices = new BorrowerNotices(stack, "BorrowerNotices");
    const role = (id: string) =>
      new Role(stack, id, { assumedBy: new ServicePrincipal("lambda.amazonaws.com") });
    const relayRoles = Array.from({ length: relays }, (_, index) => role(`RelayRole${index}`));
    const notifierRole = role("NotifierRole");
    bus.restrictPublishersTo(relayRoles);
    notices.restrictPublishersTo([notifierRole]);
    const id = (construct: Role | LiquidationBus["eventBus"] | BorrowerNotices["emailTopic"]) =>
      stack.getLogicalId(construct.node.defaultChild as CfnElement);
    return { stack, bus, notices, relayRoles, notifierRole, template: Template.fromStack(stack), id };
  }

  it("denies PutEvents on the bus to every principal but the relay's role", () => {
    const { bus, relayRoles, template, id } = build();
    const policies = template.findResources("AWS::Events::EventBusPolicy");
    expect(Object.values(policies).map((policy) => policy.Properties)).toEqual([
      {
        EventBusName: { Ref: id(bus.eventBus) },
        StatementId: "cdk-OnlyEnginePublishers",
        Statement: {
          Sid: "cdk-OnlyEnginePublishers",
          Effect: "Deny",
          Principal: "*",
          Action: "events:PutEvents",
          Resource: { "Fn::GetAtt": [id(bus.eventBus), "Arn"] },
          Condition: {
            ArnNotEquals: { "aws:PrincipalArn": [{ "Fn::GetAtt": [id(relayRoles[0] as Role), "Arn"] }] },
          },
        },
      },
    ]);
  });

  it("names every role given, and leaves the archive and its replays alone", () => {
    const { relayRoles, template, id } = build(2);
    const [policy] = Object.values(template.findResources("AWS::Events::EventBusPolicy"));
    expect(policy?.Properties.Statement.Condition.ArnNotEquals["aws:PrincipalArn"]).toEqual(
      relayRoles.map((role) => ({ "Fn::GetAtt": [id(role), "Arn"] })),
    );
    // Only PutEvents is denied: StartReplay and the archive's own delivery are not PutEvents calls.
    expect(policy?.Properties.Statement.Action).toBe("events:PutEvents");
    template.resourceCountIs("AWS::Events::Archive", 1);
  });

  it("keeps the topic's TLS-only statement and adds the publisher deny to the same topic policy", () => {
    const { notices, notifierRole, template, id } = build();
    const policies = template.findResources("AWS::SNS::TopicPolicy");
    expect(Object.values(policies).map((policy) => policy.Properties)).toEqual([
      {
        Topics: [{ Ref: id(notices.emailTopic) }],
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "AllowPublishThroughSSLOnly",
              Effect: "Deny",
              Principal: "*",
              Action: "sns:Publish",
              Resource: { Ref: id(notices.emailTopic) },
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
            {
              Sid: "OnlyEnginePublishers",
              Effect: "Deny",
              Principal: "*",
              Action: "sns:Publish",
              Resource: { Ref: id(notices.emailTopic) },
              Condition: {
                ArnNotEquals: { "aws:PrincipalArn": [{ "Fn::GetAtt": [id(notifierRole), "Arn"] }] },
              },
            },
          ],
        },
      },
    ]);
  });

  it("refuses no role, and a second call that would deny the first call's roles", () => {
    const { bus, notices, relayRoles, notifierRole } = build();
    expect(() => bus.restrictPublishersTo(relayRoles)).toThrow(/already called/);
    expect(() => notices.restrictPublishersTo([notifierRole])).toThrow(/already called/);
    const stack = new Stack(new App(), "Empty");
    expect(() =>
      new LiquidationBus(stack, "LiquidationBus", { eventBusName: "x" }).restrictPublishersTo([]),
    ).toThrow(/at least one role/);
    expect(() => new BorrowerNotices(stack, "BorrowerNotices").restrictPublishersTo([])).toThrow(
      /at least one role/,
    );
  });
});

describe("noticePublishStatements", () => {
  const TOPIC = "arn:aws:sns:eu-west-1:111122223333:MarginCall-prod-BorrowerEmailTopic";
  const partitioned = (suffix: string) => ({ "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, suffix]] });

  it("publishes to the email topic, SMS to phone numbers, and nothing else", () => {
    const rendered = new Stack().resolve(noticePublishStatements(TOPIC).map((s) => s.toStatementJson()));
    expect(rendered).toEqual([
      { Sid: "PublishEmailNotices", Effect: "Allow", Action: "sns:Publish", Resource: TOPIC },
      {
        Sid: "PublishSmsToPhoneNumbersOnly",
        Effect: "Allow",
        Action: "sns:Publish",
        NotResource: partitioned(":sns:*:*:*"),
      },
      {
        Sid: "NeverPublishToPlatformEndpoints",
        Effect: "Deny",
        Action: "sns:Publish",
        Resource: partitioned(":sns:*:*:*/*"),
      },
    ]);
  });

  it("allows what the notifier publishes to, and nothing else, under IAM's documented evaluation", () => {
    // A model of identity-policy evaluation: an explicit Deny wins, else any Allow, else the implicit deny.
    // Resource globs: "*" any run of characters, "?" one. SMS is authorized against the phone number itself.
    const glob = (pattern: string) =>
      new RegExp(
        `^${pattern
          .replace(/[.+^${}()|[\]\\]/g, "\\$&")
          .replace(/\*/g, ".*")
          .replace(/\?/g, ".")}$`,
      );
    const statements = noticePublishStatements(TOPIC).map((statement) => {
      const json = JSON.parse(
        JSON.stringify(statement.toStatementJson()).replaceAll(/\$\{Token\[AWS\.Partition\.\d+\]\}/g, "aws"),
      );
      return json as { Effect: string; Resource?: string | string[]; NotResource?: string | string[] };
    });
    const matches = (statement: (typeof statements)[number], resource: string) =>
      statement.Resource !== undefined
        ? list(statement.Resource).some((pattern) => glob(pattern).test(resource))
        : !list(statement.NotResource).some((pattern) => glob(pattern).test(resource));
    const allowed = (resource: string) =>
      !statements.some((s) => s.Effect === "Deny" && matches(s, resource)) &&
      statements.some((s) => s.Effect === "Allow" && matches(s, resource));

    expect(allowed(TOPIC)).toBe(true);
    expect(allowed("+12125550142")).toBe(true);
    expect(allowed("+447700900123")).toBe(true);
    expect(allowed("arn:aws:sns:eu-west-1:111122223333:SomeOtherTopic")).toBe(false);
    expect(allowed("arn:aws:sns:eu-west-1:999999999999:MarginCall-prod-BorrowerEmailTopic")).toBe(false);
    expect(allowed("arn:aws:sns:us-east-1:111122223333:MarginCall-prod-BorrowerEmailTopic")).toBe(false);
    expect(allowed("arn:aws:sns:eu-west-1:111122223333:endpoint/GCM/app/5e3e9847-3183-3f18-a7e8")).toBe(
      false,
    );
    expect(allowed("arn:aws:sns:eu-west-1:111122223333:app/APNS/app")).toBe(false);
  });
});
