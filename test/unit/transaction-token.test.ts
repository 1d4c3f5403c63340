/**
 * The TransactWriteItems token of a commit (step-items.ts `clientRequestToken`). DynamoDB refuses a token reused
 * with other parameters within ten minutes (IdempotentParameterMismatchException), so a commit cancelled by a
 * breaker's ConditionCheck and decided again at the same version (holding its request) needs another token;
 * an SDK retry of the very same items needs the same one. DynamoDB Local does not enforce the mismatch (tried:
 * a token reused after a cancelled transaction with other items is accepted), so this is checked here.
 */
import type { TransactWriteItem } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { clientRequestToken } from "../../functions/adapters/step-items.ts";

const put = (what: string): TransactWriteItem => ({
  Put: { TableName: "MarginCalls", Item: { accountId: { S: "ACC-1" }, status: { S: what } } },
});
const check: TransactWriteItem = {
  ConditionCheck: {
    TableName: "TriggerIndex",
    Key: { line: { S: "BREAKER#BTC/crypto-lending" } },
    ConditionExpression: "version = :read",
    ExpressionAttributeValues: { ":read": { N: "3" } },
  },
};

describe("a commit's client request token", () => {
  it("is the same for the same account, version and items, so an SDK retry after a lost reply is idempotent", () => {
    const items = [put("LIQUIDATING"), check];
    const token = clientRequestToken("ACC-1", 7, items);
    expect(clientRequestToken("ACC-1", 7, structuredClone(items))).toBe(token);
    expect(token).toMatch(/^[A-Za-z0-9_-]{36}$/);
  });

  it("differs when the step is decided again at the same version with other items (a request held by a breaker)", () => {
    const requested = clientRequestToken("ACC-1", 7, [put("LIQUIDATING"), check]);
    const held = clientRequestToken("ACC-1", 7, [put("CALLED")]);
    expect(held).not.toBe(requested);
  });

  it("differs by account and by version", () => {
    const items = [put("CALLED")];
    expect(clientRequestToken("ACC-2", 7, items)).not.toBe(clientRequestToken("ACC-1", 7, items));
    expect(clientRequestToken("ACC-1", 8, items)).not.toBe(clientRequestToken("ACC-1", 7, items));
  });
});
