/**
 * `margin-call quarantine ...`: what an operator does with upstream records that broke the contract.
 *
 *   list [--status OPEN|REPLAYED|DISCARDED]   newest first, from the byStatus index
 *   show ID                                   the reason, where it came from and the raw image
 *   replay ID [--file FIXED.json]             writes the image (or the corrected item) back to its table,
 *                                             after checking it against the contract, and marks it REPLAYED
 *   discard ID --reason TEXT                  marks it DISCARDED, with the operator's reason
 *   list --status PARKED                      the accounts the engine cannot value now, and why
 *   retry ACCOUNT_ID                          puts a parked account first for the sweep's next run
 *
 * It talks to the tables named by ACCOUNTS_TABLE, PRICES_TABLE and QUARANTINE_TABLE (the deployed
 * stack's names) with the default AWS credentials, or to the local engine's session (.local/session.json).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { fromImage } from "../adapters/codec.ts";
import { PARKED_STATUS, parkedId } from "../adapters/parked.ts";
import { imageOf } from "../adapters/quarantine.ts";
import { formatIssues, parseAccountItem, parsePriceItem } from "../domain/contract.ts";
import { operatorClient } from "./operator-client.ts";

// The CLI runs on the developer's Node (>= 20); the SDK's notice about Node 20 is not for its users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export const QUARANTINE_USAGE = `usage: margin-call quarantine list [--status OPEN|REPLAYED|DISCARDED|PARKED]
       margin-call quarantine show ID
       margin-call quarantine replay ID [--file FIXED_ITEM.json]
       margin-call quarantine discard ID --reason TEXT
       margin-call quarantine retry ACCOUNT_ID`;

export class QuarantineCommandError extends Error {}

interface Target {
  readonly client: DynamoDBClient;
  readonly tables: { accounts: string; prices: string; quarantine: string };
}

function target(): Target {
  const env = process.env;
  const client = operatorClient(
    Boolean(env.QUARANTINE_TABLE),
    () =>
      new QuarantineCommandError(
        "set QUARANTINE_TABLE (and ACCOUNTS_TABLE, PRICES_TABLE) for a deployed stack, or run npm start -- --engine-only",
      ),
  );
  return {
    client,
    tables: {
      accounts: env.ACCOUNTS_TABLE ?? "Accounts",
      prices: env.PRICES_TABLE ?? "Prices",
      quarantine: env.QUARANTINE_TABLE ?? "Quarantine",
    },
  };
}

async function load(store: Target, id: string): Promise<Record<string, unknown>> {
  const result = await store.client.send(
    new GetItemCommand({
      TableName: store.tables.quarantine,
      Key: { quarantineId: { S: id } },
      ConsistentRead: true,
    }),
  );
  if (!result.Item) throw new QuarantineCommandError(`no quarantined record ${id}`);
  // However the image is kept (text, gzipped, or in parts), the commands see it as DynamoDB JSON text.
  const { imageGzip: _zipped, imageParts: _parts, ...entry } = fromImage(result.Item);
  const readPart = async (partId: string) =>
    (
      await store.client.send(
        new GetItemCommand({
          TableName: store.tables.quarantine,
          Key: { quarantineId: { S: partId } },
          ConsistentRead: true,
        }),
      )
    ).Item;
  if (entry.status === PARKED_STATUS) return entry;
  return { ...entry, image: JSON.stringify(await imageOf(fromImage(result.Item), readPart)) };
}

/** `list`: the newest hundred records with the status, one line each. */
async function listQuarantined(store: Target, status: string): Promise<number> {
  const result = await store.client.send(
    new QueryCommand({
      TableName: store.tables.quarantine,
      IndexName: "byStatus",
      KeyConditionExpression: "#status = :status",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":status": { S: status } },
      ScanIndexForward: false,
      Limit: 100,
    }),
  );
  for (const item of (result.Items ?? []).map(fromImage)) {
    console.log(`${item.quarantineId}  ${item.receivedAt}  ${String(item.reason).split("\n")[0]}`);
  }
  return 0;
}

/** `show`: the record as JSON, its image and keys decoded. */
async function showQuarantined(store: Target, id: string): Promise<number> {
  const item = await load(store, id);
  if (item.status === PARKED_STATUS) {
    console.log(JSON.stringify(item, null, 2));
    return 0;
  }
  console.log(
    JSON.stringify(
      { ...item, image: JSON.parse(String(item.image)), keys: JSON.parse(String(item.keys)) },
      null,
      2,
    ),
  );
  return 0;
}

/** The item to write back: the operator's fixed item from `file`, or else the quarantined image. */
function replayCandidate(
  item: Record<string, unknown>,
  id: string,
  file: string | undefined,
): { image: Record<string, AttributeValue> | null; candidate: Record<string, unknown> } {
  const image = file ? null : (JSON.parse(String(item.image)) as Record<string, AttributeValue> | null);
  const plainItem = file ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : null;
  const candidate = plainItem ?? (image ? fromImage(image) : null);
  if (!candidate)
    throw new QuarantineCommandError(`${id} has no image to replay; give the fixed item with --file`);
  return { image, candidate };
}

/**
 * The condition that the item in its table is still the one quarantined: the same `seq` (upstream's
 * per-item sequence), or, for an image without one, an item that still has none. A replay never
 * overwrites what upstream wrote since, nor brings back what it deleted.
 */
function unchangedSince(item: Record<string, unknown>) {
  const image = JSON.parse(String(item.image ?? "null")) as Record<string, AttributeValue> | null;
  const key = item.sourceTable === "Prices" ? "asset" : "accountId";
  const seq = image?.seq;
  return seq
    ? {
        ConditionExpression: "#seq = :seq",
        ExpressionAttributeNames: { "#seq": "seq" },
        ExpressionAttributeValues: { ":seq": seq },
      }
    : {
        ConditionExpression: "attribute_exists(#key) AND attribute_not_exists(#seq)",
        ExpressionAttributeNames: { "#key": key, "#seq": "seq" },
      };
}

/** `replay`: checks the item against the contract, writes it back to its table and marks the record REPLAYED. */
async function replayQuarantined(
  store: Target,
  id: string,
  file: string | undefined,
  now: () => string,
): Promise<number> {
  const item = await load(store, id);
  if (item.status !== "OPEN") throw new QuarantineCommandError(`${id} is ${item.status}, not OPEN`);
  const isPrices = item.sourceTable === "Prices";
  const { image, candidate } = replayCandidate(item, id, file);
  const parsed = isPrices ? parsePriceItem(candidate) : parseAccountItem(candidate);
  if (!parsed.ok) {
    throw new QuarantineCommandError(`the item still breaks the contract:\n${formatIssues(parsed.issues)}`);
  }
  const { marshall } = await import("@aws-sdk/util-dynamodb");
  try {
    await store.client.send(
      new PutItemCommand({
        TableName: isPrices ? store.tables.prices : store.tables.accounts,
        Item: image ?? marshall(candidate, { removeUndefinedValues: true }),
        ...unchangedSince(item),
      }),
    );
  } catch (error) {
    if (error instanceof Error && error.name === "ConditionalCheckFailedException") {
      throw new QuarantineCommandError(
        `${id}: the item changed in its table since it was quarantined (upstream wrote or deleted it); ` +
          "nothing was replayed. Check the current item, then discard this record or replay a newer fix.",
      );
    }
    throw error;
  }
  await store.client.send(
    new UpdateItemCommand({
      TableName: store.tables.quarantine,
      Key: { quarantineId: { S: id } },
      UpdateExpression: "SET #status = :replayed, receivedAtId = :sortKey, resolvedAt = :now",
      ConditionExpression: "#status = :open",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":replayed": { S: "REPLAYED" },
        ":open": { S: "OPEN" },
        ":now": { S: now() },
        ":sortKey": { S: String(item.receivedAtId) },
      },
    }),
  );
  console.log(`replayed ${id} into ${isPrices ? "Prices" : "Accounts"}`);
  return 0;
}

/** `discard`: marks an OPEN record DISCARDED with the operator's reason. */
async function discardQuarantined(
  store: Target,
  id: string,
  reason: string | undefined,
  now: () => string,
): Promise<number> {
  if (!reason) throw new QuarantineCommandError("discard needs --reason");
  await store.client.send(
    new UpdateItemCommand({
      TableName: store.tables.quarantine,
      Key: { quarantineId: { S: id } },
      UpdateExpression: "SET #status = :discarded, resolvedAt = :now, resolution = :reason",
      ConditionExpression: "#status = :open",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":discarded": { S: "DISCARDED" },
        ":open": { S: "OPEN" },
        ":now": { S: now() },
        ":reason": { S: reason },
      },
    }),
  );
  console.log(`discarded ${id}`);
  return 0;
}

/**
 * `retry`: the parked account goes first in the sweep's next run (within a minute): its record sorts
 * before every other. The sweep values it again, and deletes the record if it can.
 */
async function retryParked(store: Target, accountId: string): Promise<number> {
  try {
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tables.quarantine,
        Key: { quarantineId: { S: parkedId(accountId) } },
        UpdateExpression: "SET receivedAtId = :first",
        ConditionExpression: "#status = :parked",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":first": { S: `0000-00-00T00:00:00.000Z#${parkedId(accountId)}` },
          ":parked": { S: PARKED_STATUS },
        },
      }),
    );
  } catch (error) {
    if (error instanceof Error && error.name === "ConditionalCheckFailedException") {
      throw new QuarantineCommandError(`account ${accountId} is not parked`);
    }
    throw error;
  }
  console.log(`account ${accountId} goes first in the sweep's next run`);
  return 0;
}

export async function runQuarantine(args: string[], now = () => new Date().toISOString()): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      status: { type: "string", default: "OPEN" },
      file: { type: "string" },
      reason: { type: "string" },
    },
  });
  const [command, id = ""] = positionals;
  const store = target();
  try {
    switch (command) {
      case "list":
        return await listQuarantined(store, values.status ?? "OPEN");
      case "show":
        return await showQuarantined(store, id);
      case "replay":
        return await replayQuarantined(store, id, values.file, now);
      case "discard":
        return await discardQuarantined(store, id, values.reason, now);
      case "retry":
        return await retryParked(store, id);
      default:
        console.error(QUARANTINE_USAGE);
        return 2;
    }
  } finally {
    store.client.destroy();
  }
}
