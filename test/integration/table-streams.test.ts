import {
  DescribeTableCommand,
  ListTablesCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
} from "@aws-sdk/client-dynamodb-streams";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalClients, localClients } from "../../functions/local/aws-clients.ts";
import { createLocalTables, localTableDefinitions } from "../../functions/local/local-tables.ts";
import { type TestDatabase, testDatabase } from "../support/local-dynamodb.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await testDatabase(import.meta.url);
});

afterAll(() => {
  db?.destroy();
});

async function readAllStreamRecords(tableName: string, clients: LocalClients = db): Promise<StreamRecord[]> {
  const { Table } = await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
  const streamArn = Table?.LatestStreamArn;
  expect(streamArn).toBeDefined();
  const { StreamDescription } = await clients.streams.send(
    new DescribeStreamCommand({ StreamArn: streamArn }),
  );
  const records: StreamRecord[] = [];
  for (const shard of StreamDescription?.Shards ?? []) {
    let { ShardIterator: iterator } = await clients.streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shard.ShardId,
        ShardIteratorType: "TRIM_HORIZON",
      }),
    );
    // An open shard always returns a next iterator; stop at the first empty page (bounded, as all loops are).
    for (let page = 0; iterator && page < 20; page++) {
      const response = await clients.streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      records.push(...(response.Records ?? []));
      if ((response.Records ?? []).length === 0) break;
      iterator = response.NextShardIterator;
    }
  }
  return records;
}

describe("tables created from the synthesized template in DynamoDB Local", () => {
  it("creates every AWS::DynamoDB::Table of the template, with its keys, indexes and stream", async () => {
    const { TableNames = [] } = await db.dynamodb.send(new ListTablesCommand({}));
    const definitions = localTableDefinitions(db.template);
    expect(TableNames.sort()).toEqual(definitions.map((d) => d.logicalId).sort());
    expect(TableNames).toEqual(
      expect.arrayContaining(["Accounts", "Prices", "MarginCalls", "Outbox", "AuditLog", "Quarantine"]),
    );

    for (const definition of definitions) {
      const { Table } = await db.dynamodb.send(new DescribeTableCommand({ TableName: definition.logicalId }));
      expect(Table?.KeySchema).toEqual(definition.createTable.KeySchema);
      expect((Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName).sort()).toEqual(
        (definition.createTable.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName).sort(),
      );
      expect(Table?.StreamSpecification?.StreamViewType).toBe(
        definition.createTable.StreamSpecification?.StreamViewType,
      );
    }
  });

  it("reads an upstream write back from the Accounts stream, with old and new images", async () => {
    const tableName = db.tables.Accounts ?? "";
    const key = { accountId: { S: "acct-0001" }, sk: { S: "HOLDING#BTC" } };
    await db.dynamodb.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { ...key, quantity: { S: "1.50000000" }, version: { N: "1" } },
      }),
    );
    await db.dynamodb.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: key,
        UpdateExpression: "SET quantity = :q, version = :v",
        ConditionExpression: "version = :previous",
        ExpressionAttributeValues: { ":q": { S: "-0.25000000" }, ":v": { N: "2" }, ":previous": { N: "1" } },
      }),
    );

    const records = await readAllStreamRecords(tableName);

    expect(records.map((record) => record.eventName)).toEqual(["INSERT", "MODIFY"]);
    const [insert, modify] = records;
    expect(insert?.dynamodb?.Keys).toEqual(key);
    expect(insert?.dynamodb?.NewImage?.quantity).toEqual({ S: "1.50000000" });
    expect(insert?.dynamodb?.OldImage).toBeUndefined();
    expect(modify?.dynamodb?.StreamViewType).toBe("NEW_AND_OLD_IMAGES");
    expect(modify?.dynamodb?.OldImage?.quantity).toEqual({ S: "1.50000000" });
    expect(modify?.dynamodb?.NewImage?.quantity).toEqual({ S: "-0.25000000" });
    expect(modify?.eventSource).toBe("aws:dynamodb");
    expect(BigInt(modify?.dynamodb?.SequenceNumber ?? "0")).toBeGreaterThan(
      BigInt(insert?.dynamodb?.SequenceNumber ?? "0"),
    );
  });

  it("gives the outbox a new-image stream and the state tables none", async () => {
    const describe = async (name: string) =>
      (await db.dynamodb.send(new DescribeTableCommand({ TableName: name }))).Table;
    expect((await describe("Outbox"))?.StreamSpecification).toEqual({
      StreamEnabled: true,
      StreamViewType: "NEW_IMAGE",
    });
    expect((await describe("MarginCalls"))?.LatestStreamArn).toBeUndefined();
    expect((await describe("AuditLog"))?.LatestStreamArn).toBeUndefined();
  });

  it("leaves what a preload wrote out of the streams, and streams every write after it", async () => {
    // A database of its own (another access key id), so this file's tables stay as the template made them.
    const fresh = localClients(db.endpoint, `${db.accessKeyId}preload`);
    try {
      const put = (accountId: string) =>
        fresh.dynamodb.send(
          new PutItemCommand({
            TableName: "Accounts",
            Item: { accountId: { S: accountId }, sk: { S: "PROFILE" } },
          }),
        );
      await createLocalTables(fresh.dynamodb, db.template, () => put("ACC-BEFORE").then(() => undefined));
      await put("ACC-AFTER");

      const records = await readAllStreamRecords("Accounts", fresh);
      expect(records.map((record) => record.dynamodb?.Keys?.accountId?.S)).toEqual(["ACC-AFTER"]);
      const described = async (name: string) =>
        (await fresh.dynamodb.send(new DescribeTableCommand({ TableName: name }))).Table?.StreamSpecification;
      for (const definition of localTableDefinitions(db.template)) {
        expect(await described(definition.logicalId)).toEqual(definition.createTable.StreamSpecification);
      }
    } finally {
      fresh.destroy();
    }
  });
});
