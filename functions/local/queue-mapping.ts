/**
 * An SQS event source mapping, run locally against the stub's in-memory queues with Lambda's semantics:
 * batches of up to BatchSize messages in the SQS event shape; with ReportBatchItemFailures only the failed
 * messages stay on the queue; they come back after the visibility timeout, and the queue's redrive policy
 * (taken from the template) moves them to its dead-letter queue after maxReceiveCount receives.
 */
import type { SQSEvent, SQSRecord } from "aws-lambda";
import type { AwsStub } from "./aws-stub/index.ts";
import { LOCAL_REGION, type LocalMapping, queueArn } from "./deployment.ts";
import { type CfnTemplate, resourcesOfType } from "./template.ts";

export type QueueHandler = (
  event: SQSEvent,
) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] } | undefined>;

/** Gives every queue of the template its visibility timeout and redrive policy on the stub. */
export function configureQueues(
  stub: AwsStub,
  template: CfnTemplate,
  urlOf: (logicalId: string) => string,
): void {
  for (const [logicalId, resource] of resourcesOfType(template, "AWS::SQS::Queue")) {
    const properties = resource.Properties ?? {};
    const redrive = properties.RedrivePolicy as
      | { deadLetterTargetArn?: { "Fn::GetAtt"?: [string, string] }; maxReceiveCount?: number }
      | undefined;
    const deadLetter = redrive?.deadLetterTargetArn?.["Fn::GetAtt"]?.[0];
    stub.configureQueue(urlOf(logicalId), {
      visibilityTimeoutSeconds: Number(properties.VisibilityTimeout ?? 30),
      ...(deadLetter && redrive?.maxReceiveCount
        ? { maxReceiveCount: redrive.maxReceiveCount, deadLetterUrl: urlOf(deadLetter) }
        : {}),
    });
  }
}

export class QueueMapping {
  invocations = 0;
  failures = 0;

  constructor(
    readonly mapping: LocalMapping,
    private readonly stub: AwsStub,
    readonly queueUrl: string,
    private readonly handler: QueueHandler,
  ) {}

  /** One receive and one invocation, if the queue has visible messages. Returns the invocations made. */
  async pollOnce(): Promise<number> {
    const messages = this.stub.receiveLocal(this.queueUrl, Math.min(10, this.mapping.batchSize));
    if (messages.length === 0) return 0;
    const arn = this.mapping.source.kind === "sqs" ? queueArn(this.mapping.source.queue) : "";
    const records: SQSRecord[] = messages.map((message) => ({
      messageId: message.messageId,
      receiptHandle: message.receiptHandle,
      body: message.body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: String(message.sentTimestamp),
        SenderId: "LOCAL",
        ApproximateFirstReceiveTimestamp: String(message.firstReceiveTimestamp),
      },
      messageAttributes: {},
      md5OfBody: message.md5OfBody,
      eventSource: "aws:sqs",
      eventSourceARN: arn,
      awsRegion: LOCAL_REGION,
    }));
    this.invocations += 1;
    let failed: Set<string>;
    try {
      const response = await this.handler({ Records: records });
      const reported = this.mapping.reportBatchItemFailures ? (response?.batchItemFailures ?? []) : [];
      failed = new Set(reported.map((failure) => failure.itemIdentifier));
    } catch {
      failed = new Set(records.map((record) => record.messageId));
    }
    this.failures += failed.size;
    for (const message of messages) {
      if (!failed.has(message.messageId)) this.stub.deleteLocal(this.queueUrl, message.receiptHandle);
    }
    return 1;
  }

  depth(): number {
    return this.stub.queue(this.queueUrl).depth;
  }
}
