/**
 * Powertools' partial-batch processing, with every record that fails inside a batch logged with its
 * reference and counted (`record failed`, the RecordsFailed metric and alarm): a record the mapping will
 * deliver again, or give up on after its retries, never fails silently. A handler may name failures that
 * are expected (the notifier's "not yet": a notice put back for later), which are not reported.
 */
import { BatchProcessor, type EventType } from "@aws-lambda-powertools/batch";
import type { EventSourceDataClassTypes, FailureResponse } from "@aws-lambda-powertools/batch/types";
import type { Logger } from "@aws-lambda-powertools/logger";
import { LOG_SIGNALS } from "../domain/alarms.ts";

/** What names a record to an operator: its stream event id and sequence number, or its message id. */
export function recordReference(record: EventSourceDataClassTypes): Record<string, string> {
  if ("messageId" in record) return { messageId: record.messageId, source: record.eventSourceARN };
  if ("dynamodb" in record) {
    return {
      eventId: record.eventID ?? "",
      sequenceNumber: record.dynamodb?.SequenceNumber ?? "",
      keys: JSON.stringify(record.dynamodb?.Keys ?? {}),
    };
  }
  return { eventId: record.eventID ?? "" };
}

export class ReportingBatchProcessor extends BatchProcessor {
  constructor(
    eventType: keyof typeof EventType,
    private readonly reporter: Logger,
    private readonly expected: (error: Error) => boolean = () => false,
  ) {
    super(eventType);
  }

  override failureHandler(record: EventSourceDataClassTypes, error: Error): FailureResponse {
    if (!this.expected(error)) {
      this.reporter.error(LOG_SIGNALS.RECORD_FAILED.message, {
        ...recordReference(record),
        error: `${error.name}: ${error.message}`.slice(0, 1_000),
      });
    }
    return super.failureHandler(record, error);
  }
}
