/** Strongly consistent reads of many keys, for the adapters that read in bulk. */
import { type AttributeValue, BatchGetItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { fromImage } from "./codec.ts";

type Item = Record<string, unknown>;

const BATCH_GET_KEYS = 100;

/** BatchGetItem, strongly consistent, 100 keys a request (in parallel), unprocessed keys retried. */
export async function batchGet(
  client: DynamoDBClient,
  table: string,
  keys: readonly Record<string, AttributeValue>[],
): Promise<Item[]> {
  const items: Item[] = [];
  const chunks: Record<string, AttributeValue>[][] = [];
  for (let start = 0; start < keys.length; start += BATCH_GET_KEYS) {
    chunks.push(keys.slice(start, start + BATCH_GET_KEYS));
  }
  await Promise.all(
    chunks.map(async (chunk) => {
      let pending = chunk;
      for (let attempt = 0; pending.length > 0; attempt += 1) {
        if (attempt > 8) throw new Error(`${table}: ${pending.length} keys left unprocessed`);
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
        const result = await client.send(
          new BatchGetItemCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }),
        );
        for (const item of result.Responses?.[table] ?? []) items.push(fromImage(item));
        pending = result.UnprocessedKeys?.[table]?.Keys ?? [];
      }
    }),
  );
  return items;
}
