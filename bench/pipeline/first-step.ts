/**
 * A transaction the engine committed, made replayable on a table that does not hold the account's state
 * item yet: the engine's MarginCalls put is conditioned on the state it read (its version and the mark of
 * the account changes judged on it, engine.ts `markInputsSeen`), which the raw reference's empty table
 * does not have. The reference writes the same items as a first step, `attribute_not_exists`.
 */
import type { TransactWriteItem } from "@aws-sdk/client-dynamodb";

export function asFirstStep(body: string): { TransactItems: TransactWriteItem[] } {
  const transaction = JSON.parse(body) as { TransactItems: TransactWriteItem[] };
  for (const item of transaction.TransactItems) {
    if (item.Put?.TableName === "MarginCalls") {
      item.Put.ConditionExpression = "attribute_not_exists(accountId)";
      delete item.Put.ExpressionAttributeValues;
    }
  }
  return transaction;
}
