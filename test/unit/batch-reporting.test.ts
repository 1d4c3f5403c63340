// Every record that fails inside a partial batch is logged with its reference (the RecordsFailed metric's
// log line), except the failures a handler names as expected; the batch response is Powertools' own.
import { EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { DynamoDBRecord, SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { LOG_SIGNALS } from "../../functions/domain/alarms.ts";
import { ReportingBatchProcessor } from "../../functions/handlers/batch.ts";

class Later extends Error {
  override readonly name = "Later";
}

function recordingLogger() {
  const lines: { message: string; fields: Record<string, unknown> }[] = [];
  const logger = {
    error: (message: string, fields: Record<string, unknown>) => lines.push({ message, fields }),
  } as unknown as Logger;
  return { logger, lines };
}

const message = (messageId: string, body: string) =>
  ({ messageId, body, eventSourceARN: "arn:aws:sqs:us-east-1:1:FanOut" }) as unknown as SQSRecord;

describe("a batch with failing records", () => {
  it("logs each unexpected failure with its message id, and reports exactly the failed ones", async () => {
    const { logger, lines } = recordingLogger();
    const records = [message("m1", "ok"), message("m2", "boom"), message("m3", "later"), message("m4", "ok")];
    const response = await processPartialResponse(
      { Records: records },
      async (record: SQSRecord) => {
        if (record.body === "boom") throw new Error("DynamoDB said no");
        if (record.body === "later") throw new Later("again in 5 s");
      },
      new ReportingBatchProcessor(EventType.SQS, logger, (error) => error instanceof Later),
    );
    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual(["m2", "m3"]);
    expect(lines).toEqual([
      {
        message: LOG_SIGNALS.RECORD_FAILED.message,
        fields: {
          messageId: "m2",
          source: "arn:aws:sqs:us-east-1:1:FanOut",
          error: "Error: DynamoDB said no",
        },
      },
    ]);
  });

  it("names a stream record by its event id, sequence number and keys", async () => {
    const { logger, lines } = recordingLogger();
    const record = {
      eventID: "e-7",
      eventName: "INSERT",
      dynamodb: { SequenceNumber: "700", Keys: { accountId: { S: "ACC-1" } } },
    } as unknown as DynamoDBRecord;
    const fine = { ...record, eventID: "e-8", dynamodb: { SequenceNumber: "800" } } as DynamoDBRecord;
    await processPartialResponse(
      { Records: [record, fine] },
      async (one: DynamoDBRecord) => {
        if (one.eventID === "e-7") throw new Error("no");
      },
      new ReportingBatchProcessor(EventType.DynamoDBStreams, logger),
    );
    expect(lines.map((line) => line.fields)).toEqual([
      { eventId: "e-7", sequenceNumber: "700", keys: '{"accountId":{"S":"ACC-1"}}', error: "Error: no" },
    ]);
  });
});
