/**
 * Upstream records that break the data contract are kept aside here, with the reason and the raw stream
 * image, instead of failing the batch: a poison pill must not block a shard, and nothing may disappear.
 * An operator lists, inspects and replays them with `margin-call quarantine` (functions/cli).
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { ContractIssue } from "../domain/contract.ts";
import { toItem } from "./codec.ts";
import type { Tables } from "./settings.ts";

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

/** Idempotent: a re-delivered bad record lands on the same item and is not counted twice. */
export async function quarantine(
  deps: { readonly dynamo: DynamoDBClient; readonly tables: Tables },
  source: QuarantineSource,
  issues: readonly ContractIssue[],
  now: string,
): Promise<{ readonly quarantineId: string; readonly duplicate: boolean }> {
  const id = quarantineId(source);
  try {
    await deps.dynamo.send(
      new PutItemCommand({
        TableName: deps.tables.quarantine,
        Item: toItem({
          quarantineId: id,
          status: "OPEN",
          receivedAtId: `${now}#${id}`,
          receivedAt: now,
          sourceTable: source.table,
          eventId: source.eventId,
          eventName: source.eventName,
          eventSourceArn: source.eventSourceArn,
          sequenceNumber: source.sequenceNumber,
          issues: issues.map((issue) => ({ path: issue.path, message: issue.message })),
          reason: issues.map((issue) => `${issue.path}: ${issue.message}`).join("\n"),
          keys: JSON.stringify(source.keys),
          image: JSON.stringify(source.image),
        }),
        ConditionExpression: "attribute_not_exists(quarantineId)",
      }),
    );
    return { quarantineId: id, duplicate: false };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return { quarantineId: id, duplicate: true };
    throw error;
  }
}
