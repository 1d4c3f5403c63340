/** Shared parsing of DynamoDB stream records for the upstream-table consumers. */
import type { DynamoDBRecord } from "aws-lambda";
import { fromImage } from "../adapters/codec.ts";
import { MAX_ISSUES_KEPT, quarantine } from "../adapters/quarantine.ts";
import { LOG_SIGNALS } from "../domain/alarms.ts";
import type { ContractIssue, ParseResult } from "../domain/contract.ts";
import type { Runtime } from "./runtime.ts";

/** DynamoDB's own deletions (TTL expiry) carry this principal; they are not upstream changes. */
export const TTL_PRINCIPAL = "dynamodb.amazonaws.com";

export function isTtlDeletion(record: DynamoDBRecord): boolean {
  return (
    record.eventName === "REMOVE" &&
    record.userIdentity?.type === "Service" &&
    record.userIdentity?.principalId === TTL_PRINCIPAL
  );
}

/** The image that says what the item is now: the new image, or the old one for a deletion. */
export function currentImage(record: DynamoDBRecord): Record<string, unknown> | undefined {
  const image = record.eventName === "REMOVE" ? record.dynamodb?.OldImage : record.dynamodb?.NewImage;
  return image ? fromImage(image) : undefined;
}

/** Parses the record's current image; a broken one goes to the quarantine and yields undefined. */
export async function parseOrQuarantine<T>(
  engine: Runtime,
  table: string,
  record: DynamoDBRecord,
  parse: (item: unknown) => ParseResult<T>,
): Promise<T | undefined> {
  const raw = record.eventName === "REMOVE" ? record.dynamodb?.OldImage : record.dynamodb?.NewImage;
  const result: ParseResult<T> = raw
    ? parse(fromImage(raw))
    : {
        ok: false,
        issues: [
          { path: "$", message: "the stream record has no image: the stream must be NEW_AND_OLD_IMAGES" },
        ] satisfies ContractIssue[],
      };
  if (result.ok) return result.value;
  const placed = await quarantine(
    engine,
    {
      table,
      eventId: record.eventID ?? `${record.dynamodb?.SequenceNumber}`,
      eventName: record.eventName ?? "UNKNOWN",
      eventSourceArn: record.eventSourceARN ?? "",
      sequenceNumber: record.dynamodb?.SequenceNumber ?? "",
      keys: record.dynamodb?.Keys ?? null,
      image: raw ?? null,
    },
    result.issues,
    engine.now(),
  );
  engine.logger.warn(`${LOG_SIGNALS.RECORD_QUARANTINED.message}: it breaks the upstream data contract`, {
    quarantineId: placed.quarantineId,
    duplicate: placed.duplicate,
    // As on the entry: the first issues and how many there were (a log event is at most 256 KB).
    issueCount: result.issues.length,
    issues: result.issues.slice(0, MAX_ISSUES_KEPT),
  });
  return undefined;
}
