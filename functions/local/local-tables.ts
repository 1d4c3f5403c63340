/**
 * Creates DynamoDB Local tables from the `AWS::DynamoDB::Table` resources of the synthesized template.
 * Each local table is named after its logical id, so a `Ref` to it in the template resolves to that name.
 */
import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type LocalSecondaryIndex,
  ResourceInUseException,
  type StreamViewType,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { type CfnTemplate, resourcesOfType } from "./template.ts";

export interface LocalTableDefinition {
  readonly logicalId: string;
  readonly createTable: CreateTableCommandInput;
  readonly timeToLiveAttribute: string | undefined;
}

/**
 * Properties that have no local meaning: DynamoDB Local has no backups, keys, tags or deletion protection
 * to speak of. Anything not listed here or read below is an error, so that a new table feature is never
 * dropped silently from the local copy.
 */
const IGNORED_LOCALLY = new Set([
  "PointInTimeRecoverySpecification",
  "SSESpecification",
  "DeletionProtectionEnabled",
  "Tags",
  "ContributorInsightsSpecification",
  "TableClass",
  "WarmThroughput",
]);

const APPLIED = new Set([
  "AttributeDefinitions",
  "KeySchema",
  "BillingMode",
  "ProvisionedThroughput",
  "StreamSpecification",
  "GlobalSecondaryIndexes",
  "LocalSecondaryIndexes",
  "TimeToLiveSpecification",
  "TableName",
]);

interface CfnTableProperties {
  AttributeDefinitions: AttributeDefinition[];
  KeySchema: KeySchemaElement[];
  BillingMode?: "PAY_PER_REQUEST" | "PROVISIONED";
  ProvisionedThroughput?: { ReadCapacityUnits: number; WriteCapacityUnits: number };
  StreamSpecification?: { StreamViewType: StreamViewType };
  GlobalSecondaryIndexes?: GlobalSecondaryIndex[];
  LocalSecondaryIndexes?: LocalSecondaryIndex[];
  TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
}

/** Reads every table of the template into the CreateTable input DynamoDB Local needs. */
export function localTableDefinitions(template: CfnTemplate): LocalTableDefinition[] {
  return resourcesOfType(template, "AWS::DynamoDB::Table").map(([logicalId, resource]) => {
    const raw = resource.Properties ?? {};
    for (const key of Object.keys(raw)) {
      if (!APPLIED.has(key) && !IGNORED_LOCALLY.has(key)) {
        throw new Error(
          `Table ${logicalId}: property ${key} has no local equivalent yet; teach local-tables.ts about it`,
        );
      }
    }
    const properties = raw as unknown as CfnTableProperties;
    const billingMode = properties.BillingMode ?? "PROVISIONED";
    const createTable: CreateTableCommandInput = {
      TableName: logicalId,
      AttributeDefinitions: properties.AttributeDefinitions,
      KeySchema: properties.KeySchema,
      BillingMode: billingMode,
      ...(properties.ProvisionedThroughput
        ? { ProvisionedThroughput: properties.ProvisionedThroughput }
        : {}),
      ...(properties.StreamSpecification
        ? {
            StreamSpecification: {
              StreamEnabled: true,
              StreamViewType: properties.StreamSpecification.StreamViewType,
            },
          }
        : {}),
      ...(properties.GlobalSecondaryIndexes
        ? { GlobalSecondaryIndexes: properties.GlobalSecondaryIndexes }
        : {}),
      ...(properties.LocalSecondaryIndexes
        ? { LocalSecondaryIndexes: properties.LocalSecondaryIndexes }
        : {}),
    };
    const ttl = properties.TimeToLiveSpecification;
    return { logicalId, createTable, timeToLiveAttribute: ttl?.Enabled ? ttl.AttributeName : undefined };
  });
}

function sameKeys(a: KeySchemaElement[] | undefined, b: KeySchemaElement[] | undefined): boolean {
  return JSON.stringify(a ?? []) === JSON.stringify(b ?? []);
}

/**
 * Items in the tables before the engine is deployed: `preload` writes them after the tables are created
 * and before their streams are enabled, so they leave no stream records, as a table's items leave none
 * when a stream is first enabled on it (a deployment onto a book that is already there).
 */
export type Preload = (client: DynamoDBClient) => Promise<void>;

/**
 * Creates the template's tables in DynamoDB Local. Tables that already exist (a persistent --data-dir)
 * are kept when their key schema matches, and refused with a clear error when it does not.
 * Returns the local table name of each logical id.
 *
 * With `preload`, the tables this call creates get their streams only after it ran. This is not only
 * fidelity: DynamoDB Local 1.25 makes every request on a stream-enabled table cost time in proportion to
 * the stream records other tables hold (measured: a Query on an empty table with a stream took 11.7 ms
 * beside 10,000 records and 37.8 ms beside 100,000, one without a stream 3 to 4 ms), so a book written
 * through a stream slows every later Prices and Outbox request of the run, which DynamoDB does not
 * (docs/reliability.md).
 */
export async function createLocalTables(
  client: DynamoDBClient,
  template: CfnTemplate,
  preload?: Preload,
): Promise<Record<string, string>> {
  const names: Record<string, string> = {};
  const streamsToEnable: CreateTableCommandInput[] = [];
  for (const definition of localTableDefinitions(template)) {
    const tableName = definition.logicalId;
    try {
      const { StreamSpecification, ...withoutStream } = definition.createTable;
      if (preload && StreamSpecification) {
        await client.send(new CreateTableCommand(withoutStream));
        streamsToEnable.push(definition.createTable);
      } else {
        await client.send(new CreateTableCommand(definition.createTable));
      }
      if (definition.timeToLiveAttribute) {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName: tableName,
            TimeToLiveSpecification: { AttributeName: definition.timeToLiveAttribute, Enabled: true },
          }),
        );
      }
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
      const existing = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (!sameKeys(existing.Table?.KeySchema, definition.createTable.KeySchema)) {
        throw new Error(
          `Local table ${tableName} exists with a different key schema than the template; delete the data directory to recreate it`,
        );
      }
    }
    names[definition.logicalId] = tableName;
  }
  if (preload) {
    await preload(client);
    for (const { TableName, StreamSpecification } of streamsToEnable) {
      await client.send(new UpdateTableCommand({ TableName, StreamSpecification }));
    }
  }
  return names;
}
