import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import { afterAll, describe, expect, it } from "vitest";
import { buildApp } from "../../lib/app.ts";
import { TABLE_LOGICAL_IDS, TTL_ATTRIBUTE } from "../../lib/tables.ts";

const outdirs: string[] = [];
function tempOutdir(): string {
  const dir = mkdtempSync(join(tmpdir(), "margin-call-infra-test-"));
  outdirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

const { stack } = buildApp({ outdir: tempOutdir(), context: { "aws:cdk:bundling-stacks": [] } });
const template = Template.fromStack(stack);

function keysOf(logicalId: string): unknown {
  return template.toJSON().Resources[logicalId].Properties.KeySchema;
}

describe("engine tables", () => {
  it("has exactly the nine tables of docs/data-model.md, under fixed logical ids, and no idempotency table", () => {
    const tables = template.findResources("AWS::DynamoDB::Table");
    expect(Object.keys(tables).sort()).toEqual(Object.values(TABLE_LOGICAL_IDS).sort());
    // The notices' and events' claims live on their outbox items: there is no Powertools Idempotency table.
    expect(Object.keys(tables).sort()).toEqual([
      "Accounts",
      "AuditLog",
      "InsuranceFund",
      "MarginCalls",
      "Outbox",
      "Policies",
      "Prices",
      "Quarantine",
      "TriggerIndex",
    ]);
  });

  it.each([
    ["Accounts", "accountId", "sk"],
    ["Prices", "asset", "source"],
    ["MarginCalls", "accountId", undefined],
    ["TriggerIndex", "line", "triggerKey"],
    ["Outbox", "outboxId", undefined],
    ["AuditLog", "accountId", "seq"],
    ["Quarantine", "quarantineId", undefined],
    ["Policies", "policyId", "version"],
    ["InsuranceFund", "fund", "entry"],
  ])("%s is keyed by %s / %s", (logicalId, partitionKey, sortKey) => {
    const expected = [{ AttributeName: partitionKey, KeyType: "HASH" }];
    if (sortKey) expected.push({ AttributeName: sortKey, KeyType: "RANGE" });
    expect(keysOf(logicalId)).toEqual(expected);
  });

  it("streams what upstream writes with both images, the outbox with new images, and nothing else", () => {
    const views = Object.fromEntries(
      Object.entries(template.findResources("AWS::DynamoDB::Table")).map(([id, resource]) => [
        id,
        resource.Properties.StreamSpecification?.StreamViewType ?? null,
      ]),
    );
    expect(views).toEqual({
      Accounts: "NEW_AND_OLD_IMAGES",
      Prices: "NEW_AND_OLD_IMAGES",
      MarginCalls: null,
      TriggerIndex: null,
      Outbox: "NEW_IMAGE",
      AuditLog: null,
      Quarantine: null,
      Policies: null,
      InsuranceFund: null,
    });
  });

  it("enables point-in-time recovery, encryption, deletion protection and retention on every table", () => {
    for (const [id, resource] of Object.entries(template.findResources("AWS::DynamoDB::Table"))) {
      expect(resource.Properties.PointInTimeRecoverySpecification, id).toEqual({
        PointInTimeRecoveryEnabled: true,
      });
      expect(resource.Properties.SSESpecification, id).toEqual({ SSEEnabled: true });
      expect(resource.Properties.DeletionProtectionEnabled, id).toBe(true);
      expect(resource.Properties.BillingMode, id).toBe("PAY_PER_REQUEST");
      expect(resource.DeletionPolicy, id).toBe("Retain");
      expect(resource.UpdateReplacePolicy, id).toBe("Retain");
    }
  });

  it("expires only records with a natural end of life, never the audit log or the call state", () => {
    const withTtl = Object.entries(template.findResources("AWS::DynamoDB::Table"))
      .filter(([, resource]) => resource.Properties.TimeToLiveSpecification)
      .map(([id, resource]) => {
        expect(resource.Properties.TimeToLiveSpecification, id).toEqual({
          AttributeName: TTL_ATTRIBUTE,
          Enabled: true,
        });
        return id;
      });
    expect(withTtl.sort()).toEqual(["Accounts", "Outbox", "Quarantine", "TriggerIndex"]);
  });

  it("indexes open calls by deadline, the audit log by day and the quarantine by status", () => {
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      KeySchema: [{ AttributeName: "accountId", KeyType: "HASH" }],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: "byDeadline",
          KeySchema: [
            { AttributeName: "openCallShard", KeyType: "HASH" },
            { AttributeName: "deadlineAt", KeyType: "RANGE" },
          ],
        }),
      ],
    });
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      GlobalSecondaryIndexes: [Match.objectLike({ IndexName: "byDay" })],
    });
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: "byStatus",
          KeySchema: [
            { AttributeName: "status", KeyType: "HASH" },
            { AttributeName: "receivedAtId", KeyType: "RANGE" },
          ],
        }),
      ],
    });
  });
});

describe("cdk-nag AwsSolutions", () => {
  it("passes the engine stack with no unacknowledged finding", () => {
    const { app } = buildApp({ outdir: tempOutdir(), context: { "aws:cdk:bundling-stacks": [] } });
    expect(() => app.synth()).not.toThrow();
  });

  it("is really registered: a queue without a DLQ or TLS fails synthesis", () => {
    const app = new App({ outdir: tempOutdir() });
    new Queue(new Stack(app, "Probe"), "Bare");
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3/);
  });
});
