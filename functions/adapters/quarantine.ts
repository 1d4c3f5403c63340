/**
 * Upstream records that break the data contract are kept aside here, with the reason and the raw stream
 * image, instead of failing the batch: a poison pill must not block a shard, and nothing may disappear.
 * An operator lists, inspects and replays them with `margin-call quarantine` (functions/cli).
 */
import { gunzipSync, gzipSync } from "node:zlib";
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { ContractIssue } from "../domain/contract.ts";
import { toItem } from "./codec.ts";
import type { Tables } from "./settings.ts";

/** The issues kept on an entry; the rest are counted. An item can break the contract thousands of ways. */
export const MAX_ISSUES_KEPT = 20;
/** And each issue's text up to this (one issue can list 6,000 unknown attributes). */
export const MAX_ISSUE_CHARACTERS = 500;
/** An image up to this many characters of DynamoDB JSON is kept as text; a larger one is gzipped. */
export const IMAGE_TEXT_MAX = 32_768;
/** The largest gzipped part of an image on one item: well inside DynamoDB's 400 KB item limit. */
export const IMAGE_PART_BYTES = 300_000;
/** How long an entry, and the personal data its image may hold, is kept: the table's TTL. */
export const QUARANTINE_RETENTION_DAYS = 30;

export interface QuarantineSource {
  /** The table the record came from, by its logical name: "Accounts" or "Prices". */
  readonly table: string;
  readonly eventId: string;
  readonly eventName: string;
  readonly eventSourceArn: string;
  readonly sequenceNumber: string;
  /** The item's key, as DynamoDB JSON. */
  readonly keys: unknown;
  /** The image that broke the contract, as DynamoDB JSON: replaying writes it back, fixed or not. */
  readonly image: unknown;
}

export function quarantineId(source: Pick<QuarantineSource, "table" | "eventId">): string {
  return `${source.table}#${source.eventId}`;
}

const partId = (id: string, part: number) => `${id}#IMAGE#${part}`;

/** The issues, once: at most MAX_ISSUES_KEPT `path: message` lines, and how many more there were. */
export function reasonOf(issues: readonly ContractIssue[]): string {
  const line = (issue: ContractIssue) => {
    const text = `${issue.path}: ${issue.message}`;
    return text.length <= MAX_ISSUE_CHARACTERS ? text : `${text.slice(0, MAX_ISSUE_CHARACTERS)}...`;
  };
  const kept = issues.slice(0, MAX_ISSUES_KEPT).map(line);
  const more = issues.length - kept.length;
  return [...kept, ...(more > 0 ? [`... and ${more} more issues`] : [])].join("\n");
}

/**
 * How the image is kept: as text when small; else gzipped, on the entry when it fits, or in parts on
 * items of their own (`<quarantineId>#IMAGE#<n>`) when even gzipped it would not. So any item DynamoDB
 * accepted can be quarantined, whatever its size.
 */
function storedImage(image: unknown): { onEntry: Record<string, unknown>; parts: Uint8Array[] } {
  const text = JSON.stringify(image);
  if (text.length <= IMAGE_TEXT_MAX) return { onEntry: { image: text }, parts: [] };
  const zipped = gzipSync(Buffer.from(text, "utf8"));
  if (zipped.length <= IMAGE_PART_BYTES) return { onEntry: { imageGzip: zipped }, parts: [] };
  const parts: Uint8Array[] = [];
  for (let start = 0; start < zipped.length; start += IMAGE_PART_BYTES) {
    parts.push(zipped.subarray(start, start + IMAGE_PART_BYTES));
  }
  return { onEntry: { imageParts: parts.length }, parts };
}

/** Idempotent: a re-delivered bad record lands on the same item and is not counted twice. */
export async function quarantine(
  deps: { readonly dynamo: DynamoDBClient; readonly tables: Tables },
  source: QuarantineSource,
  issues: readonly ContractIssue[],
  now: string,
): Promise<{ readonly quarantineId: string; readonly duplicate: boolean }> {
  const id = quarantineId(source);
  const expiresAtEpochSeconds = Math.floor(Date.parse(now) / 1000) + QUARANTINE_RETENTION_DAYS * 86_400;
  const { onEntry, parts } = storedImage(source.image);
  // The parts first: an entry is never there without its whole image.
  for (const [index, part] of parts.entries()) {
    await deps.dynamo.send(
      new PutItemCommand({
        TableName: deps.tables.quarantine,
        Item: {
          quarantineId: { S: partId(id, index) },
          imagePart: { B: part },
          expiresAtEpochSeconds: { N: String(expiresAtEpochSeconds) },
        },
      }),
    );
  }
  try {
    await deps.dynamo.send(
      new PutItemCommand({
        TableName: deps.tables.quarantine,
        Item: {
          ...toItem({
            quarantineId: id,
            status: "OPEN",
            receivedAtId: `${now}#${id}`,
            receivedAt: now,
            sourceTable: source.table,
            eventId: source.eventId,
            eventName: source.eventName,
            eventSourceArn: source.eventSourceArn,
            sequenceNumber: source.sequenceNumber,
            issueCount: issues.length,
            reason: reasonOf(issues),
            keys: JSON.stringify(source.keys),
            expiresAtEpochSeconds,
            ...("image" in onEntry ? onEntry : {}),
            ...("imageParts" in onEntry ? onEntry : {}),
          }),
          ...("imageGzip" in onEntry ? { imageGzip: { B: onEntry.imageGzip as Uint8Array } } : {}),
        },
        ConditionExpression: "attribute_not_exists(quarantineId)",
      }),
    );
    return { quarantineId: id, duplicate: false };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return { quarantineId: id, duplicate: true };
    throw error;
  }
}

/**
 * The image an entry holds, as DynamoDB JSON (null for none): its text, its gzip, or its parts, which
 * `readPart` reads by id. Entries written before images were compressed hold the text.
 */
export async function imageOf(
  entry: Record<string, unknown>,
  readPart: (id: string) => Promise<Record<string, AttributeValue> | undefined>,
): Promise<Record<string, AttributeValue> | null> {
  if (typeof entry.image === "string")
    return JSON.parse(entry.image) as Record<string, AttributeValue> | null;
  let zipped: Uint8Array | undefined;
  if (entry.imageGzip instanceof Uint8Array) zipped = entry.imageGzip;
  else if (typeof entry.imageParts === "number") {
    const parts: Uint8Array[] = [];
    for (let part = 0; part < entry.imageParts; part += 1) {
      const item = await readPart(partId(String(entry.quarantineId), part));
      const bytes = item?.imagePart?.B;
      if (!bytes)
        throw new Error(`quarantine entry ${String(entry.quarantineId)}: image part ${part} is missing`);
      parts.push(bytes);
    }
    zipped = Buffer.concat(parts);
  }
  if (!zipped) return null;
  return JSON.parse(gunzipSync(zipped).toString("utf8")) as Record<string, AttributeValue> | null;
}
