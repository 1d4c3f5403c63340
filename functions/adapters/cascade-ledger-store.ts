/**
 * The cascade caps' ledger in DynamoDB (domain: cascade-ledger.ts; docs/liquidation.md, section 10): one item
 * per policy with caps, in the trigger-index table, line `CASCADE#<policyId>`, triggerKey `LEDGER`, holding
 * a version and the ledger (requests in flight, accounts waiting) as gzipped JSON. At most MAX_IN_FLIGHT
 * requests of about 150 bytes and MAX_WAITING waits of about 200 (before compression) keep it well under
 * DynamoDB's 400 KB.
 *
 * Written only inside an account's step transaction (`ledgerPut`), conditional on the version read, so a
 * step that admits a request and the ledger that counts it commit together or not at all, and two steps
 * never admit against the same room. A step that changes nothing else but must refresh its wait writes the
 * ledger alone, under the same condition (`putLedgerAlone`).
 */
import { gunzipSync, gzipSync } from "node:zlib";
import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type TransactWriteItem,
} from "@aws-sdk/client-dynamodb";
import {
  type CascadeLedger,
  EMPTY_LEDGER,
  type LedgerRequest,
  type LedgerWaiting,
} from "../domain/cascade-ledger.ts";
import { type Dec, dec, toPlainString } from "../domain/money.ts";
import type { Tables } from "./settings.ts";

interface LedgerDeps {
  readonly dynamo: DynamoDBClient;
  readonly tables: Pick<Tables, "triggerIndex">;
}

export const ledgerKey = (policyId: string) => ({
  line: { S: `CASCADE#${policyId}` },
  triggerKey: { S: "LEDGER" },
});

type Notional = Array<[string, string]>;
interface StoredRequest {
  readonly accountId: string;
  readonly callId: string;
  readonly requestedAt: string;
  readonly settledAt: string | null;
  readonly notional: Notional;
}
interface StoredWaiting {
  readonly accountId: string;
  readonly marginRatio: string;
  readonly since: string;
  readonly seenAt: string;
  readonly notional: Notional;
}

const toNotional = (byAsset: ReadonlyMap<string, Dec>): Notional =>
  [...byAsset].sort(([a], [b]) => (a < b ? -1 : 1)).map(([asset, value]) => [asset, toPlainString(value)]);
const fromNotional = (stored: Notional): Map<string, Dec> =>
  new Map(stored.map(([asset, value]) => [asset, dec(value)]));

export function encodeLedger(ledger: CascadeLedger): Uint8Array {
  const stored = {
    inFlight: ledger.inFlight.map(
      (r): StoredRequest => ({
        accountId: r.accountId,
        callId: r.callId,
        requestedAt: r.requestedAt,
        settledAt: r.settledAt,
        notional: toNotional(r.notionalByAsset),
      }),
    ),
    waiting: ledger.waiting.map(
      (w): StoredWaiting => ({
        accountId: w.accountId,
        marginRatio: toPlainString(w.marginRatio),
        since: w.since,
        seenAt: w.seenAt,
        notional: toNotional(w.notionalByAsset),
      }),
    ),
  };
  return gzipSync(JSON.stringify(stored));
}

export function decodeLedger(version: number, body: Uint8Array): CascadeLedger {
  const stored = JSON.parse(gunzipSync(body).toString("utf8")) as {
    inFlight: StoredRequest[];
    waiting: StoredWaiting[];
  };
  return {
    version,
    inFlight: stored.inFlight.map(
      (r): LedgerRequest => ({
        accountId: r.accountId,
        callId: r.callId,
        requestedAt: r.requestedAt,
        settledAt: r.settledAt,
        notionalByAsset: fromNotional(r.notional),
      }),
    ),
    waiting: stored.waiting.map(
      (w): LedgerWaiting => ({
        accountId: w.accountId,
        marginRatio: dec(w.marginRatio),
        since: w.since,
        seenAt: w.seenAt,
        notionalByAsset: fromNotional(w.notional),
      }),
    ),
  };
}

/** The policy's ledger, strongly consistent; the empty ledger at version 0 before its first write. */
export async function readLedger(deps: LedgerDeps, policyId: string): Promise<CascadeLedger> {
  const result = await deps.dynamo.send(
    new GetItemCommand({
      TableName: deps.tables.triggerIndex,
      Key: ledgerKey(policyId),
      ConsistentRead: true,
    }),
  );
  const item = result.Item;
  if (!item?.version?.N || !item.ledger?.B) return EMPTY_LEDGER;
  return decodeLedger(Number(item.version.N), item.ledger.B);
}

function ledgerItem(table: string, policyId: string, read: CascadeLedger, next: CascadeLedger, now: string) {
  return {
    TableName: table,
    Item: {
      ...ledgerKey(policyId),
      version: { N: String(read.version + 1) },
      ledger: { B: encodeLedger(next) },
      inFlight: { N: String(next.inFlight.length) },
      waiting: { N: String(next.waiting.length) },
      updatedAt: { S: now },
    },
    ...(read.version === 0
      ? { ConditionExpression: "attribute_not_exists(line)" }
      : {
          ConditionExpression: "version = :read",
          ExpressionAttributeValues: { ":read": { N: String(read.version) } },
        }),
  };
}

/** The ledger `next`, written only if the stored one is still at the version `read` was. */
export function ledgerPut(
  table: string,
  policyId: string,
  read: CascadeLedger,
  next: CascadeLedger,
  now: string,
): TransactWriteItem {
  return { Put: ledgerItem(table, policyId, read, next, now) };
}

/** Writes the ledger alone; false when another step wrote it since it was read. */
export async function putLedgerAlone(
  deps: LedgerDeps,
  policyId: string,
  read: CascadeLedger,
  next: CascadeLedger,
  now: string,
): Promise<boolean> {
  try {
    await deps.dynamo.send(
      new PutItemCommand(ledgerItem(deps.tables.triggerIndex, policyId, read, next, now)),
    );
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === "ConditionalCheckFailedException") return false;
    throw error;
  }
}
