/**
 * The notifier reads a batch's outbox items and their PROFILEs with two BatchGetItem requests instead of two
 * GetItem requests per notice. What is read ahead is used once, by the first read of that notice; any read
 * after it (a claim that lost, a retry) goes to the table. A key DynamoDB leaves unprocessed is simply read
 * on its own later: reading ahead is an optimisation, never a condition of delivery.
 */
import { type AttributeValue, BatchGetItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { fromImage } from "./codec.ts";
import { OutboxClaims, type OutboxItem } from "./outbox-claims.ts";
import type { Tables } from "./settings.ts";

type Key = Record<string, AttributeValue>;
type RawItem = Record<string, AttributeValue>;

/** BatchGetItem's limit on keys per request. */
const KEYS_PER_REQUEST = 100;

/** Reads `keys` of `table` consistently; each key found or not found (null). Unprocessed keys are left out. */
async function readAhead(
  dynamo: DynamoDBClient,
  table: string,
  keys: readonly Key[],
  idOf: (item: RawItem) => string,
  idOfKey: (key: Key) => string,
): Promise<Map<string, RawItem | null>> {
  const found = new Map<string, RawItem | null>();
  for (let start = 0; start < keys.length; start += KEYS_PER_REQUEST) {
    const chunk = keys.slice(start, start + KEYS_PER_REQUEST);
    const result = await dynamo.send(
      new BatchGetItemCommand({ RequestItems: { [table]: { Keys: chunk, ConsistentRead: true } } }),
    );
    const unprocessed = new Set((result.UnprocessedKeys?.[table]?.Keys ?? []).map(idOfKey));
    for (const key of chunk) if (!unprocessed.has(idOfKey(key))) found.set(idOfKey(key), null);
    for (const item of result.Responses?.[table] ?? []) found.set(idOf(item), item);
  }
  return found;
}

/** OutboxClaims whose first read of each notice of the batch is served from what was read ahead. */
export class ReadAheadClaims extends OutboxClaims {
  constructor(
    dynamo: DynamoDBClient,
    table: string,
    private readonly ahead: Map<string, RawItem | null>,
  ) {
    super(dynamo, table);
  }

  override async item(outboxId: string): Promise<OutboxItem | undefined> {
    if (!this.ahead.has(outboxId)) return super.item(outboxId);
    const item = this.ahead.get(outboxId) ?? null;
    this.ahead.delete(outboxId);
    return item ? fromImage(item) : undefined;
  }
}

export interface NoticesAhead {
  readonly claims: ReadAheadClaims;
  /** Raw PROFILE items by account (null: the account has none), each used once. */
  readonly profiles: Map<string, RawItem | null>;
}

/** Reads the batch's outbox items, then the PROFILEs of their accounts: two requests for up to 100 notices. */
export async function readNoticesAhead(
  deps: { readonly dynamo: DynamoDBClient; readonly tables: Tables },
  notificationIds: readonly string[],
): Promise<NoticesAhead> {
  const { dynamo, tables } = deps;
  const outbox = await readAhead(
    dynamo,
    tables.outbox,
    [...new Set(notificationIds)].map((id) => ({ outboxId: { S: id } })),
    (item) => item.outboxId?.S ?? "",
    (key) => key.outboxId?.S ?? "",
  );
  const accountIds = new Set<string>();
  for (const item of outbox.values()) if (item?.accountId?.S) accountIds.add(item.accountId.S);
  const profiles = await readAhead(
    dynamo,
    tables.accounts,
    [...accountIds].map((id) => ({ accountId: { S: id }, sk: { S: "PROFILE" } })),
    (item) => item.accountId?.S ?? "",
    (key) => key.accountId?.S ?? "",
  );
  return { claims: new ReadAheadClaims(dynamo, tables.outbox, outbox), profiles };
}
