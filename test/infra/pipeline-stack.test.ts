/**
 * CDK assertions on the pipeline: every event source mapping's failure settings, the schedule, the alarms,
 * the functions' runtime, and that each function's role grants exactly what its handler calls.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, describe, expect, it } from "vitest";
import { LOG_SIGNALS, OPERATOR_ALARMS } from "../../functions/domain/alarms.ts";
import { buildApp } from "../../lib/app.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const outdirs: string[] = [];
function synth(context: Record<string, unknown> = {}) {
  const outdir = mkdtempSync(join(tmpdir(), "margin-call-pipeline-test-"));
  outdirs.push(outdir);
  const { stack } = buildApp({ outdir, context: { "aws:cdk:bundling-stacks": [], ...context } });
  return Template.fromStack(stack);
}
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

const template = synth();
// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are free-form JSON; the tests read them.
type Json = any;
const resources = template.toJSON().Resources as Record<
  string,
  { Type: string; Properties: Record<string, Json> }
>;
const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);
const logicalIdOf = (reference: unknown): string => {
  const value = reference as { Ref?: string; "Fn::GetAtt"?: [string, string] };
  return value.Ref ?? value["Fn::GetAtt"]?.[0] ?? JSON.stringify(reference);
};
const handlerName = (functionLogicalId: string) => functionLogicalId.replace(/Function[0-9A-F]{8}$/, "");

/** A queue's or a function's logical id without CDK's hash suffix. */
const unhashed = (logicalId: string) => logicalId.replace(/[0-9A-F]{8}$/, "");
const functionOf = (name: string) =>
  ofType("AWS::Lambda::Function").find(([id]) => handlerName(id) === name)?.[1];

describe("event source mappings", () => {
  const mappings = ofType("AWS::Lambda::EventSourceMapping").map(([, resource]) => resource.Properties);
  const isStream = (mapping: Json) => mapping.EventSourceArn?.["Fn::GetAtt"]?.[1] === "StreamArn";
  const streams = mappings.filter(isStream);
  const queues = mappings.filter((mapping) => !isStream(mapping));
  const mappingOf = (name: string) => mappings.find((m) => handlerName(logicalIdOf(m.FunctionName)) === name);

  it("connects each stream to its handler: the outbox has one consumer, the relay", () => {
    expect(
      Object.fromEntries(
        streams.map((m) => [handlerName(logicalIdOf(m.FunctionName)), logicalIdOf(m.EventSourceArn)]),
      ),
    ).toEqual({ AccountChanges: "Accounts", PriceTicks: "Prices", OutboxRelay: "Outbox" });
    expect(streams).toHaveLength(3);
  });

  it("connects each queue to its handler", () => {
    expect(
      Object.fromEntries(
        queues.map((m) => [
          handlerName(logicalIdOf(m.FunctionName)),
          unhashed(logicalIdOf(m.EventSourceArn)),
        ]),
      ),
    ).toEqual({ FanOutWorker: "FanOut", Notifier: "NoticeQueue" });
    expect(queues).toHaveLength(2);
  });

  it.each([
    ["AccountChanges", { batch: 100, parallelization: 4, retries: 10, maxAgeSeconds: 3600 }],
    ["PriceTicks", { batch: 100, parallelization: 1, retries: 10, maxAgeSeconds: 3600 }],
    ["OutboxRelay", { batch: 100, parallelization: 2, retries: 10, maxAgeSeconds: 6 * 3600 }],
  ])("%s: every failure setting is explicit and bounded", (name, expected) => {
    const mapping = mappingOf(name);
    expect(mapping).toBeDefined();
    expect(mapping).toMatchObject({
      StartingPosition: "TRIM_HORIZON",
      BatchSize: expected.batch,
      MaximumBatchingWindowInSeconds: 0,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: expected.retries,
      MaximumRecordAgeInSeconds: expected.maxAgeSeconds,
      ParallelizationFactor: expected.parallelization,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    const destination = logicalIdOf(mapping?.DestinationConfig?.OnFailure?.Destination);
    expect(unhashed(destination)).toBe(`${name}StreamFailures`);
    expect(resources[destination]?.Type).toBe("AWS::SQS::Queue");
  });

  it("filters each stream: the relay gets inserted notices, requests, losses, fees and decided events, and notices done with requests held", () => {
    const patternsOf = (name: string) => mappingOf(name)?.FilterCriteria?.Filters;
    const exactly = (...rules: Record<string, unknown>[]) =>
      rules.map((rule) => ({ Pattern: JSON.stringify(rule) }));
    expect(patternsOf("OutboxRelay")).toEqual(
      exactly(
        {
          eventName: ["INSERT"],
          dynamodb: {
            NewImage: {
              kind: { S: ["NOTIFY", "REQUEST_LIQUIDATION", "RECORD_LOSS", "FUND_FEE", "LIQUIDATION_EVENT"] },
            },
          },
        },
        {
          eventName: ["MODIFY"],
          dynamodb: {
            NewImage: {
              kind: { S: ["NOTIFY"] },
              hasHeld: { BOOL: [true] },
              outcome: { S: [{ exists: true }] },
            },
          },
        },
      ),
    );
    expect(patternsOf("AccountChanges")).toEqual(
      exactly(
        { eventName: ["INSERT", "MODIFY"] },
        { eventName: ["REMOVE"], userIdentity: { principalId: [{ exists: false }] } },
      ),
    );
    expect(patternsOf("PriceTicks")).toEqual(exactly({ eventName: ["INSERT", "MODIFY"] }));
  });

  it("keeps one writer per asset on the price stream: the trigger index's range cursor depends on it", () => {
    expect(mappingOf("PriceTicks")?.ParallelizationFactor).toBe(1);
  });

  it("feeds the fan-out worker one message at a time with partial failures, behind a redrive queue", () => {
    const worker = mappingOf("FanOutWorker");
    expect(worker).toEqual({
      BatchSize: 1,
      EventSourceArn: worker?.EventSourceArn,
      FunctionName: worker?.FunctionName,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 10 },
      Tags: worker?.Tags,
    });
    const queue = resources[logicalIdOf(worker?.EventSourceArn)]?.Properties;
    expect(unhashed(logicalIdOf(queue?.RedrivePolicy?.deadLetterTargetArn))).toBe("FanOutDeadLetter");
    expect(queue?.RedrivePolicy?.maxReceiveCount).toBe(5);
    expect(queue?.VisibilityTimeout).toBe(1800);
    expect(queue?.VisibilityTimeout).toBeGreaterThanOrEqual(
      6 * functionOf("FanOutWorker")?.Properties.Timeout,
    );
    expect(queue?.MessageRetentionPeriod).toBe(4 * 86400);
  });

  it("feeds the notifier ten notices at a time, five invocations at once, behind a redrive queue that outlasts the backoff", () => {
    const notifier = mappingOf("Notifier");
    expect(notifier).toEqual({
      BatchSize: 10,
      EventSourceArn: notifier?.EventSourceArn,
      FunctionName: notifier?.FunctionName,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 5 },
      Tags: notifier?.Tags,
    });
    const queue = resources[logicalIdOf(notifier?.EventSourceArn)]?.Properties;
    expect(unhashed(logicalIdOf(queue?.RedrivePolicy?.deadLetterTargetArn))).toBe("NoticeQueueDeadLetter");
    expect(queue?.RedrivePolicy?.maxReceiveCount).toBe(500);
    expect(queue?.VisibilityTimeout).toBe(180);
    expect(queue?.VisibilityTimeout).toBeGreaterThanOrEqual(6 * functionOf("Notifier")?.Properties.Timeout);
    expect(queue?.MessageRetentionPeriod).toBe(4 * 86400);
    // The notifier paces its SMS by its share of the throughput: the concurrency it is told is the mapping's.
    expect(functionOf("Notifier")?.Properties.Environment.Variables).toMatchObject({
      SMS_PER_SECOND: "10",
      NOTIFIER_CONCURRENCY: String(notifier?.ScalingConfig.MaximumConcurrency),
    });
  });
});

describe("functions", () => {
  /** Our functions: the handlers and the policy bootstrap (CDK's own helpers have no handler entry of ours). */
  const ours = ofType("AWS::Lambda::Function").filter(
    ([id]) => template.toJSON().Resources[id].Metadata?.["margin-call:entry"] !== undefined,
  );
  const handlers = ours.filter(([id]) => handlerName(id) !== "PolicySetBootstrap");

  it("run our handlers and the policy bootstrap on Node 24, arm64, with JSON logs", () => {
    expect(ours.map(([id]) => handlerName(id)).sort()).toEqual(
      [
        "AccountChanges",
        "FanOutWorker",
        "Notifier",
        "OutboxRelay",
        "PolicySetBootstrap",
        "PriceTicks",
        "Sweep",
      ].sort(),
    );
    for (const [, resource] of ours) {
      expect(resource.Properties).toMatchObject({
        Runtime: "nodejs24.x",
        Architectures: ["arm64"],
        LoggingConfig: { LogFormat: "JSON" },
      });
    }
  });

  it("reserve concurrency for the sweep, the safety net, and for no other", () => {
    const reserved = Object.fromEntries(
      ours
        .filter(([, resource]) => resource.Properties.ReservedConcurrentExecutions !== undefined)
        .map(([id, resource]) => [handlerName(id), resource.Properties.ReservedConcurrentExecutions]),
    );
    expect(reserved).toEqual({ Sweep: 2 });
    // An account that cannot reserve any (its limit still 10) turns it off.
    const unreserved = synth({ reserveConcurrency: "false" }).toJSON().Resources as Record<string, Json>;
    for (const resource of Object.values(unreserved)) {
      expect(resource.Properties?.ReservedConcurrentExecutions).toBeUndefined();
    }
    expect(() => synth({ reserveConcurrency: "yes" })).toThrow(
      "context reserveConcurrency must be true or false",
    );
  });

  it("tell every handler the notice queue, the notifier's pace and the Policies table, and no idempotency table", () => {
    const [noticeQueue] = ofType("AWS::SQS::Queue")
      .map(([id]) => id)
      .filter((id) => unhashed(id) === "NoticeQueue");
    expect(noticeQueue).toBeDefined();
    expect(handlers).toHaveLength(6);
    for (const [id, resource] of handlers) {
      const variables = resource.Properties.Environment.Variables;
      expect(variables.NOTICE_QUEUE_URL, id).toEqual({ Ref: noticeQueue });
      expect(variables, id).toMatchObject({ SMS_PER_SECOND: "10", NOTIFIER_CONCURRENCY: "5" });
      expect(variables, id).not.toHaveProperty("IDEMPOTENCY_TABLE");
      // The policies are read from their table, not carried in the environment (docs/policies.md).
      expect(variables.POLICIES_TABLE, id).toEqual({ Ref: "Policies" });
      expect(variables.INSURANCE_FUND_TABLE, id).toEqual({ Ref: "InsuranceFund" });
      expect(variables, id).not.toHaveProperty("POLICY_DOCUMENTS");
    }
  });

  it("deploy the policy file into the Policies table before any handler runs", () => {
    const [[resourceId, policySet] = []] = ofType("Custom::PolicySet");
    expect(policySet?.Properties.PoliciesTable).toEqual({ Ref: "Policies" });
    const documents = JSON.parse(policySet?.Properties.PolicyDocuments);
    expect(documents).toEqual(JSON.parse(readFileSync(join(ROOT, "lib/config/policies.json"), "utf8")));
    for (const [id] of handlers) {
      expect(template.toJSON().Resources[id].DependsOn, id).toContain(resourceId);
    }
  });

  it("grant each role exactly what its handler calls, and nothing more", () => {
    /** A resource as the entries read: a logical id without its hash, a stream, or an ARN with pseudo parameters. */
    const target = (resource: unknown): string => {
      if (resource === "*") return "*";
      const join = (resource as { "Fn::Join"?: [string, unknown[]] })["Fn::Join"];
      if (join) return join[1].map((part) => (typeof part === "string" ? part : target(part))).join("");
      const id = logicalIdOf(resource);
      if (id.startsWith("AWS::")) return `<${id}>`;
      const attribute = (resource as { "Fn::GetAtt"?: [string, string] })["Fn::GetAtt"]?.[1];
      return attribute === "StreamArn" ? `${id}/stream` : unhashed(id);
    };
    const grants: Record<string, string[]> = {};
    for (const [, policy] of ofType("AWS::IAM::Policy")) {
      const roles = (policy.Properties.Roles as unknown[]).map(logicalIdOf);
      expect(roles).toHaveLength(1);
      const role = roles[0] ?? "";
      // CDK's AwsCustomResource provider (SMS settings) has a fixed, hashed name.
      const name = role.startsWith("AWS679f53fac")
        ? "SmsSettingsProvider"
        : role.replace(/Role[0-9A-F]{8}$/, "");
      const entries: string[] = [];
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        // Anything else (a NotAction, a Principal, another Condition) would change what the entries below
        // mean. The one condition allowed narrows a grant to the Quarantine's parked records, and is named.
        expect(
          Object.keys(statement).filter(
            (key) => !["Sid", "Effect", "Action", "Resource", "NotResource", "Condition"].includes(key),
          ),
          name,
        ).toEqual([]);
        const parkedOnly = { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["Parked#*"] } };
        if (statement.Condition !== undefined) expect(statement.Condition, name).toEqual(parkedOnly);
        const narrowed = statement.Condition === undefined ? "" : " (Parked#*)";
        expect(["Allow", "Deny"]).toContain(statement.Effect);
        const targets =
          statement.NotResource !== undefined
            ? [statement.NotResource].flat().map((resource: unknown) => `not ${target(resource)}`)
            : [statement.Resource].flat().map(target);
        for (const action of [statement.Action].flat())
          for (const resource of targets)
            entries.push(`${statement.Effect} ${action} ${resource}${narrowed}`);
      }
      grants[name] = entries.sort();
    }
    const logs = (name: string) => [
      `Allow logs:CreateLogStream ${name}Logs`,
      `Allow logs:PutLogEvents ${name}Logs`,
    ];
    const stream = (name: string, table: string) => [
      "Allow dynamodb:ListStreams *",
      `Allow dynamodb:DescribeStream ${table}/stream`,
      `Allow dynamodb:GetRecords ${table}/stream`,
      `Allow dynamodb:GetShardIterator ${table}/stream`,
      ...["SendMessage", "GetQueueAttributes", "GetQueueUrl"].map(
        (a) => `Allow sqs:${a} ${name}StreamFailures`,
      ),
    ];
    const consume = (queue: string) =>
      ["ReceiveMessage", "ChangeMessageVisibility", "GetQueueUrl", "DeleteMessage", "GetQueueAttributes"].map(
        (a) => `Allow sqs:${a} ${queue}`,
      );
    const readPolicies = ["Allow dynamodb:GetItem Policies", "Allow dynamodb:BatchGetItem Policies"];
    const revalue = [
      ...readPolicies,
      "Allow dynamodb:Query Accounts",
      "Allow dynamodb:Query Prices",
      "Allow dynamodb:GetItem MarginCalls",
      "Allow dynamodb:PutItem MarginCalls",
      "Allow dynamodb:UpdateItem MarginCalls",
      "Allow dynamodb:UpdateItem Quarantine (Parked#*)",
      "Allow dynamodb:PutItem Outbox",
      "Allow dynamodb:GetItem Outbox",
      "Allow dynamodb:PutItem AuditLog",
      "Allow dynamodb:GetItem TriggerIndex",
      "Allow dynamodb:PutItem TriggerIndex",
      "Allow dynamodb:BatchWriteItem TriggerIndex",
      "Allow dynamodb:BatchGetItem TriggerIndex",
      "Allow dynamodb:ConditionCheckItem TriggerIndex",
    ];
    const expected: Record<string, string[]> = {
      AccountChanges: [
        ...logs("AccountChanges"),
        ...revalue,
        "Allow dynamodb:PutItem Quarantine",
        ...stream("AccountChanges", "Accounts"),
      ],
      PriceTicks: [
        ...logs("PriceTicks"),
        ...revalue,
        "Allow dynamodb:Query TriggerIndex",
        "Allow dynamodb:PutItem Quarantine",
        "Allow sqs:SendMessage FanOut",
        ...stream("PriceTicks", "Prices"),
      ],
      FanOutWorker: [
        ...logs("FanOutWorker"),
        ...revalue,
        "Allow dynamodb:Query TriggerIndex",
        "Allow dynamodb:Scan Accounts",
        "Allow dynamodb:BatchGetItem MarginCalls",
        "Allow dynamodb:BatchGetItem TriggerIndex",
        "Allow dynamodb:UpdateItem TriggerIndex",
        "Allow sqs:SendMessage FanOut",
        ...consume("FanOut"),
      ],
      Sweep: [
        ...logs("Sweep"),
        ...revalue,
        "Allow dynamodb:Query MarginCalls/index/byDeadline",
        "Allow dynamodb:Query Quarantine/index/byStatus",
        "Allow dynamodb:DeleteItem Quarantine (Parked#*)",
        "Allow dynamodb:UpdateItem TriggerIndex",
        "Allow dynamodb:DescribeTable Accounts",
        "Allow sqs:SendMessage FanOut",
      ],
      OutboxRelay: [
        ...logs("OutboxRelay"),
        "Allow dynamodb:GetItem Outbox",
        "Allow dynamodb:UpdateItem Outbox",
        // The fund's flows: the ledger, their events' outbox items and audit entries, in one transaction.
        "Allow dynamodb:PutItem Outbox",
        "Allow dynamodb:GetItem InsuranceFund",
        "Allow dynamodb:PutItem InsuranceFund",
        "Allow dynamodb:PutItem AuditLog",
        // The policy version that decided the fee's or the loss's step, and the active set the
        // counterparties of an ADL or a socialised loss are valued under.
        ...readPolicies,
        // Those counterparties: the instrument's holders (byInstrument), their items and their prices.
        "Allow dynamodb:Query Accounts/index/byInstrument",
        "Allow dynamodb:Query Accounts",
        "Allow dynamodb:Query Prices",
        "Allow sqs:SendMessage NoticeQueue",
        "Allow events:PutEvents EventBus",
        ...stream("OutboxRelay", "Outbox"),
      ],
      Notifier: [
        ...logs("Notifier"),
        ...readPolicies,
        "Allow dynamodb:GetItem Accounts",
        "Allow dynamodb:BatchGetItem Accounts",
        "Allow dynamodb:GetItem Outbox",
        "Allow dynamodb:BatchGetItem Outbox",
        "Allow dynamodb:UpdateItem Outbox",
        // lib/notice-permissions.ts: the email topic; SMS, which has no ARN; never a platform endpoint.
        "Allow sns:Publish BorrowerEmailTopic",
        "Allow sns:Publish not arn:<AWS::Partition>:sns:*:*:*",
        "Deny sns:Publish arn:<AWS::Partition>:sns:*:*:*/*",
        ...consume("NoticeQueue"),
      ],
      SmsSettingsProvider: ["Allow sns:SetSMSAttributes *"],
      // Only the policy bootstrap writes the Policies table (and the operators' CLI, with its own credentials).
      PolicySetBootstrap: [
        ...logs("PolicySetBootstrap"),
        ...["GetItem", "Query", "PutItem", "ConditionCheckItem"].map((a) => `Allow dynamodb:${a} Policies`),
      ],
      PolicySetProvider: [
        ...logs("PolicySetProvider"),
        "Allow lambda:GetFunction PolicySetBootstrapFunction",
        "Allow lambda:InvokeFunction PolicySetBootstrapFunction",
        "Allow lambda:InvokeFunction PolicySetBootstrapFunction:*",
      ],
    };
    for (const [name, entries] of Object.entries(expected))
      expect(grants[name], name).toEqual(entries.sort());
    expect(Object.keys(grants).sort()).toEqual(Object.keys(expected).sort());
  });
});

describe("schedule", () => {
  it("runs the sweep every minute by default, with bounded retries and a dead-letter queue", () => {
    const [entry] = ofType("AWS::Events::Rule").filter(([, r]) => r.Properties.ScheduleExpression);
    if (!entry) throw new Error("no scheduled rule");
    const [, rule] = entry;
    expect(rule.Properties.ScheduleExpression).toBe("rate(1 minute)");
    expect(handlerName(logicalIdOf(rule.Properties.Targets[0].Arn))).toBe("Sweep");
    expect(rule.Properties.Targets[0].RetryPolicy).toEqual({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 120,
    });
    expect(rule.Properties.Targets[0].DeadLetterConfig).toBeDefined();
  });

  it("refuses a bad policy at synth, naming the policy and the field", () => {
    const dir = mkdtempSync(join(tmpdir(), "margin-call-policy-"));
    outdirs.push(dir);
    const [policy] = JSON.parse(readFileSync(join(ROOT, "lib/config/policies.json"), "utf8"));
    const file = join(dir, "policies.json");
    writeFileSync(file, JSON.stringify([{ ...policy, call: { ...policy.call, exitBuffer: "0.5" } }]));
    expect(() => synth({ policiesFile: file })).toThrow(/policy 0 in the policy set: \$\.call\.exitBuffer/);
  });

  it("takes the rate, spend limit and alarm email from context", () => {
    const configured = synth({
      sweepRateMinutes: "5",
      smsMonthlySpendLimitUsd: "250",
      alarmEmail: "ops@example.com",
    });
    configured.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(5 minutes)" });
    configured.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "ops@example.com",
    });
    const json = JSON.stringify(configured.toJSON());
    expect(json).toContain('\\"MonthlySpendLimit\\":\\"250\\"');
  });
});

describe("SNS and EventBridge", () => {
  it("sends email notices through one encrypted topic, delivered to the mail gateway queue filtered on channel", () => {
    template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "sqs",
      RawMessageDelivery: true,
      FilterPolicy: { channel: ["email"] },
    });
    for (const [, topic] of ofType("AWS::SNS::Topic")) expect(topic.Properties.KmsMasterKeyId).toBeDefined();
  });

  it("limits SMS spend and makes SMS transactional by default", () => {
    const json = JSON.stringify(template.toJSON());
    expect(json).toContain('\\"MonthlySpendLimit\\":\\"100\\"');
    expect(json).toContain('\\"DefaultSMSType\\":\\"Transactional\\"');
  });

  it("has the engine's bus, an archive, and an example rule for LiquidationRequested", () => {
    template.hasResourceProperties("AWS::Events::EventBus", { Name: "margin-call-dev" });
    template.hasResourceProperties("AWS::Events::Archive", { RetentionDays: 365 });
    template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: { source: ["margin-call-engine"], "detail-type": ["LiquidationRequested"] },
    });
  });

  it("never routes a replay of the archive to the execution system", () => {
    const [rule] = ofType("AWS::Events::Rule").filter(([, r]) => r.Properties.EventPattern?.["detail-type"]);
    expect(rule?.[1].Properties.EventPattern).toEqual({
      source: ["margin-call-engine"],
      "detail-type": ["LiquidationRequested"],
      "replay-name": [{ exists: false }],
    });
  });

  it("lets CloudWatch use the alarm key only for this account's alarms", () => {
    const [key] = ofType("AWS::KMS::Key").filter(([id]) => id.startsWith("AlarmKey"));
    const statements = key?.[1].Properties.KeyPolicy.Statement as Array<Record<string, unknown>>;
    const cloudWatch = statements.filter((statement) =>
      JSON.stringify(statement.Principal).includes("cloudwatch.amazonaws.com"),
    );
    expect(cloudWatch).toHaveLength(1);
    expect(cloudWatch[0]?.Condition).toEqual({
      StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
    });
  });
});

describe("alarms", () => {
  const alarms = ofType("AWS::CloudWatch::Alarm").map(([, alarm]) => alarm.Properties);
  const byMetric = (name: string) => alarms.filter((alarm) => alarm.MetricName === name);

  it("watch the iterator age of every stream consumer", () => {
    expect(
      byMetric("IteratorAge")
        .map((alarm) => handlerName(logicalIdOf(alarm.Dimensions[0].Value)))
        .sort(),
    ).toEqual(["AccountChanges", "OutboxRelay", "PriceTicks"]);
  });

  it("watch errors and throttles of every function", () => {
    for (const metric of ["Errors", "Throttles"]) expect(byMetric(metric)).toHaveLength(6);
  });

  it("watch the depth of every dead-letter queue and on-failure destination, the notice queue's included", () => {
    const watched = byMetric("ApproximateNumberOfMessagesVisible").map((alarm) =>
      logicalIdOf(alarm.Dimensions[0].Value),
    );
    const deadLetters = ofType("AWS::SQS::Queue")
      .filter(([id]) => /DeadLetter|StreamFailures/.test(id))
      .map(([id]) => id);
    expect(deadLetters.map(unhashed).sort()).toEqual([
      "AccountChangesStreamFailures",
      "EmailDeliveryDeadLetter",
      "ExecutionRequestsDeadLetter",
      "FanOutDeadLetter",
      "NoticeQueueDeadLetter",
      "OutboxRelayStreamFailures",
      "PriceTicksStreamFailures",
      "SweepDeadLetter",
    ]);
    expect(watched.sort()).toEqual(deadLetters.sort());
  });

  it("watch quarantined records, accounts that cannot be valued, exhausted liquidations, long price halts and nothing to sell, from every log group", () => {
    for (const name of [
      "Quarantined",
      "NotRevalued",
      "RecordsFailed",
      "LiquidationExhausted",
      "PriceHaltTooLong",
      "NothingToSell",
    ]) {
      expect(
        alarms.filter((alarm) => alarm.MetricName === name && alarm.Namespace === "MarginCallEngine"),
      ).toHaveLength(1);
      const filters = ofType("AWS::Logs::MetricFilter").filter(
        ([, filter]) => filter.Properties.MetricTransformations[0].MetricName === name,
      );
      expect(filters).toHaveLength(6);
    }
    // The filters match the message the handlers log for each operator alarm and log signal, from one constant.
    const patterns = ofType("AWS::Logs::MetricFilter").map(([, filter]) =>
      String(filter.Properties.FilterPattern),
    );
    for (const alarm of [...Object.values(LOG_SIGNALS), ...Object.values(OPERATOR_ALARMS)]) {
      expect(
        patterns.some((pattern) => pattern.includes(alarm.message)),
        alarm.metric,
      ).toBe(true);
    }
  });

  it("watch the age of the fan-out queue's oldest message: a tick's or a sweep's pages falling behind", () => {
    const ages = byMetric("ApproximateAgeOfOldestMessage");
    expect(ages.map((alarm) => unhashed(logicalIdOf(alarm.Dimensions[0].Value)))).toEqual(["FanOut"]);
    expect(ages[0]?.Threshold).toBe(300);
  });

  it("watch SMS delivery failures and spend, and email delivery failures", () => {
    expect(byMetric("NumberOfNotificationsFailed")).toHaveLength(2);
    expect(byMetric("SMSMonthToDateSpentUSD")).toHaveLength(1);
    for (const alarm of alarms) expect(alarm.AlarmActions).toHaveLength(1);
  });
});
