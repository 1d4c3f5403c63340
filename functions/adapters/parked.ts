/**
 * Parked accounts: an account the engine cannot value or commit (its items break the contract in a way
 * that leaves no safe valuation, it borrows an asset its policy does not list, a revaluation throws) is
 * parked, not frozen silently. Its record lives in the Quarantine table beside the items that broke the
 * contract, where operators already look (`margin-call quarantine parked`), under `Parked#<accountId>`
 * with status `PARKED` on the byStatus index, sorted by when it is next retried. The sweep retries the
 * parked accounts each run, the longest waiting first (a bounded number a run); a retry that values the
 * account deletes its record. Every parking is also logged as `account not revalued` (the NotRevalued
 * alarm). docs/data-model.md has the attributes.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { fromImage } from "./codec.ts";
import type { Tables } from "./settings.ts";

export const PARKED_STATUS = "PARKED";
/** A parked record outlives its last parking by this long, then expires (its account was deleted, say). */
export const PARKED_RETENTION_DAYS = 30;
/** A reason is cut here: it names the first issues of an item, never the item itself. */
const MAX_REASON_CHARACTERS = 2_000;

export function parkedId(accountId: string): string {
  return `Parked#${accountId}`;
}

interface Deps {
  readonly dynamo: DynamoDBClient;
  readonly tables: Tables;
}

/** Parks the account, or records one more failed attempt on its record. */
export async function parkAccount(deps: Deps, accountId: string, reason: string, now: string): Promise<void> {
  await deps.dynamo.send(
    new UpdateItemCommand({
      TableName: deps.tables.quarantine,
      Key: { quarantineId: { S: parkedId(accountId) } },
      UpdateExpression:
        "SET #status = :parked, accountId = :account, reason = :reason, lastParkedAt = :now, " +
        "receivedAt = if_not_exists(receivedAt, :now), receivedAtId = :sort, " +
        "expiresAtEpochSeconds = :expires ADD parkedCount :one",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":parked": { S: PARKED_STATUS },
        ":account": { S: accountId },
        ":reason": { S: reason.slice(0, MAX_REASON_CHARACTERS) },
        ":now": { S: now },
        ":sort": { S: `${now}#${parkedId(accountId)}` },
        ":expires": { N: String(Math.floor(Date.parse(now) / 1000) + PARKED_RETENTION_DAYS * 86_400) },
        ":one": { N: "1" },
      },
    }),
  );
}

export interface ParkedAccount {
  readonly accountId: string;
  readonly reason: string;
  readonly receivedAt: string;
  readonly lastParkedAt: string;
  readonly parkedCount: number;
  /** The sort key read: a retry deletes the record only if nobody parked the account again since. */
  readonly receivedAtId: string;
}

/** The parked accounts whose last attempt is before `now`, the longest waiting first. */
export async function parkedAccounts(deps: Deps, now: string, limit: number): Promise<ParkedAccount[]> {
  const parked: ParkedAccount[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await deps.dynamo.send(
      new QueryCommand({
        TableName: deps.tables.quarantine,
        IndexName: "byStatus",
        KeyConditionExpression: "#status = :parked AND receivedAtId < :now",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":parked": { S: PARKED_STATUS }, ":now": { S: now } },
        Limit: limit - parked.length,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const image of page.Items ?? []) {
      const item = fromImage(image);
      parked.push({
        accountId: String(item.accountId),
        reason: String(item.reason),
        receivedAt: String(item.receivedAt),
        lastParkedAt: String(item.lastParkedAt),
        parkedCount: Number(item.parkedCount ?? 1),
        receivedAtId: String(item.receivedAtId),
      });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey && parked.length < limit);
  return parked;
}

/** Deletes the record of an account valued again; false when it was parked again meanwhile. */
export async function unpark(deps: Deps, parked: Pick<ParkedAccount, "accountId" | "receivedAtId">) {
  try {
    await deps.dynamo.send(
      new DeleteItemCommand({
        TableName: deps.tables.quarantine,
        Key: { quarantineId: { S: parkedId(parked.accountId) } },
        ConditionExpression: "receivedAtId = :read",
        ExpressionAttributeValues: { ":read": { S: parked.receivedAtId } },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === "ConditionalCheckFailedException") return false;
    throw error;
  }
}
