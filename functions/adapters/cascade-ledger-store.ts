/**
 * The cascade caps' ledger in DynamoDB (domain: cascade-ledger.ts; docs/liquidation.md, section 10): one item
 * per policy with caps, in the trigger-index table, line `CASCADE#<policyId>`, triggerKey `LEDGER`, holding
 * a version and the ledger (requests in flight, accounts waiting) as gzipped JSON. At most MAX_IN_FLIGHT
 * requests of about 150 bytes and MAX_WAITING waits of about 200 (before compression) usually keep it well
 * under DynamoDB's 400 KB; a ledger past LEDGER_MAX_BYTES is never written (the step waits, LEDGER_FULL).
 *
 * Written only inside an account's step transaction (`ledgerPut`), conditional on the version read, so a
 * step that admits a request and the ledger that counts it commit together or not at all, and two steps
 * never admit against the same room. A step that changes nothing else but must refresh its wait writes the
 * ledger alone, under the same condition (`putLedgerAlone`).
 */
import { gunzipSync, gzipSync } from "node:zlib";
import {
  type ConditionCheck,
  type DynamoDBClient,
  GetItemCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  type CascadeLedger,
  EMPTY_LEDGER,
  type LedgerRequest,
  type LedgerWaiting,
} from "../domain/cascade-ledger.ts";
import { type Dec, dec, toPlainString } from "../domain/money.ts";
import type { Tables } from "./settings.ts";

/** What the ledger's reads and writes need: the client and the trigger-index table. */
export interface LedgerDeps {
  readonly dynamo: DynamoDBClient;
  readonly tables: Pick<Tables, "triggerIndex">;
}

/**
 * The most a stored ledger may take, gzipped: a step whose ledger would be larger waits (LEDGER_FULL) and
 * writes nothing, well before DynamoDB's 400 KB item limit (with the item's other attributes).
 */
export const LEDGER_MAX_BYTES = 300_000;

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

/** The account's state item as the step read it: a refresh of its place is written only while it still is. */
export interface StateCheck {
  readonly table: string;
  readonly accountId: string;
  readonly condition: Pick<ConditionCheck, "ConditionExpression" | "ExpressionAttributeValues">;
}

/**
 * Writes the ledger alone (a wait's refreshed place), while the account's state is still the one the step
 * read: a step decided on a state read before another step's commit must not write a ledger that state
 * does not know. False when either moved since it was read.
 */
export async function putLedgerAlone(
  deps: LedgerDeps,
  policyId: string,
  read: CascadeLedger,
  next: CascadeLedger,
  now: string,
  state: StateCheck,
): Promise<boolean> {
  try {
    await deps.dynamo.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: ledgerItem(deps.tables.triggerIndex, policyId, read, next, now) },
          {
            ConditionCheck: {
              TableName: state.table,
              Key: { accountId: { S: state.accountId } },
              ...state.condition,
            },
          },
        ],
      }),
    );
    return true;
  } catch (error) {
    const lost = ["TransactionCanceledException", "TransactionConflictException"];
    if (error instanceof Error && lost.includes(error.name)) return false;
    throw error;
  }
}
