/**
 * Reads everything one revaluation needs: the account's items (one strongly consistent Query), its policy,
 * the marks of the assets it holds (one Query per asset on the Prices table) and, while a liquidation
 * request is outstanding, when the outbox relay dispatched it (one GetItem on the Outbox, alongside the
 * Query). Items are checked against the upstream contract again here: an item that breaks it was
 * quarantined by the stream consumer, and the account is not valued on a guess while it is there.
 */
import {
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  type QueryCommandOutput,
} from "@aws-sdk/client-dynamodb";
import {
  type AccountItem,
  type ExecutionReportItem,
  formatIssues,
  type ProfileItem,
  parseAccountItem,
  parsePriceItem,
  Timestamp,
} from "../domain/contract.ts";
import type { CallState, LiquidationDispatch } from "../domain/machine.ts";
import { dec } from "../domain/money.ts";
import { type ResolvedMark, resolveMark, type SourceMark } from "../domain/prices.ts";
import type { Account } from "../domain/valuation.ts";
import { fromImage } from "./codec.ts";
import type { PolicyEntry, Tables } from "./settings.ts";

export interface AccountInputs {
  readonly profile: ProfileItem;
  readonly policy: PolicyEntry;
  readonly account: Account;
  readonly executionReports: readonly ExecutionReportItem[];
  /** Every source of every asset the account needs, as read: the audit log keeps them for replay. */
  readonly sources: ReadonlyMap<string, readonly SourceMark[]>;
  readonly marks: ReadonlyMap<string, ResolvedMark>;
  /**
   * The dispatch of the state's current liquidation request, when the state read before the inputs is
   * LIQUIDATING with one and its Outbox item was found; absent otherwise (unknown: the retry counts from the
   * commit). An input of the decision, kept in its snapshot.
   */
  readonly liquidationDispatch?: LiquidationDispatch;
}

export type LoadResult =
  | { readonly ok: true; readonly inputs: AccountInputs }
  | { readonly ok: false; readonly reason: string };

async function queryAll(
  client: DynamoDBClient,
  input: ConstructorParameters<typeof QueryCommand>[0],
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: QueryCommandOutput["LastEvaluatedKey"];
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    for (const item of page.Items ?? []) items.push(fromImage(item));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

export async function loadSources(
  client: DynamoDBClient,
  tables: Tables,
  asset: string,
): Promise<SourceMark[]> {
  const items = await queryAll(client, {
    TableName: tables.prices,
    KeyConditionExpression: "asset = :asset",
    ExpressionAttributeValues: { ":asset": { S: asset } },
    ConsistentRead: true,
  });
  return items.flatMap((item) => {
    const parsed = parsePriceItem(item);
    if (!parsed.ok) return [];
    const { source, price, asOf, realizedVolatility } = parsed.value;
    return [
      {
        source,
        price: dec(price),
        asOf,
        ...(realizedVolatility !== undefined ? { realizedVolatility: dec(realizedVolatility) } : {}),
      },
    ];
  });
}

type Failure = { readonly ok: false; readonly reason: string };

/** Every item of the account, checked against the contract: one that breaks it stops the valuation. */
async function accountItems(client: DynamoDBClient, tables: Tables, accountId: string) {
  const raw = await queryAll(client, {
    TableName: tables.accounts,
    KeyConditionExpression: "accountId = :id",
    ExpressionAttributeValues: { ":id": { S: accountId } },
    ConsistentRead: true,
  });
  const items: AccountItem[] = [];
  for (const item of raw) {
    const parsed = parseAccountItem(item);
    if (!parsed.ok) {
      return {
        ok: false,
        reason: `item ${String(item.sk)} breaks the contract: ${formatIssues(parsed.issues)}`,
      } as Failure;
    }
    items.push(parsed.value);
  }
  return items;
}

/** The account as the domain sees it, from its items: cash comes from the currency's holding. */
export function accountOf(accountId: string, items: readonly AccountItem[], currency: string): Account {
  return {
    accountId,
    cash: dec("0"),
    holdings: items.flatMap((item) =>
      "quantity" in item && item.sk.startsWith("HOLDING#")
        ? [{ asset: item.asset, quantity: dec(item.quantity) }]
        : [],
    ),
    positions: items.flatMap((item) =>
      "size" in item
        ? [{ instrument: item.instrument, size: dec(item.size), entryPrice: dec(item.entryPrice) }]
        : [],
    ),
    pendingDeposits: items.flatMap((item) =>
      "depositId" in item && item.status === "PENDING" && item.currency === currency
        ? [{ depositId: item.depositId, amount: dec(item.amount) }]
        : [],
    ),
    settledDeposits: items.flatMap((item) =>
      "depositId" in item &&
      item.status === "SETTLED" &&
      item.settledAt !== undefined &&
      item.currency === currency
        ? [{ depositId: item.depositId, amount: dec(item.amount), settledAt: item.settledAt }]
        : [],
    ),
  };
}

/** The assets whose marks the account needs, or why it cannot be valued under its policy. */
export function assetsNeeded(account: Account, entry: PolicyEntry): string[] | Failure {
  const policy = entry.policy;
  const assets = new Set<string>();
  for (const holding of account.holdings) {
    if (holding.asset !== policy.currency && !holding.quantity.isZero()) assets.add(holding.asset);
  }
  for (const position of account.positions) {
    const instrument = policy.instruments.get(position.instrument);
    if (!instrument) {
      return { ok: false, reason: `instrument ${position.instrument} is not in policy ${policy.policyId}` };
    }
    if (!position.size.isZero()) assets.add(instrument.underlying);
  }
  const sorted = [...assets].sort();
  const unknown = sorted.find((asset) => !policy.assets.has(asset));
  return unknown ? { ok: false, reason: `asset ${unknown} is not in policy ${policy.policyId}` } : sorted;
}

/**
 * When the outbox relay put the request on the bus: its Outbox item's `dispatchedAt` (set once the put
 * succeeded, or to the relay's claim time when its outcome was uncertain), null while it is absent.
 * Undefined, unknown, when the item is gone (expired) or the attribute is not an ISO-8601 UTC time.
 */
export async function readLiquidationDispatch(
  client: DynamoDBClient,
  tables: Tables,
  requestId: string,
): Promise<LiquidationDispatch | undefined> {
  const result = await client.send(
    new GetItemCommand({
      TableName: tables.outbox,
      Key: { outboxId: { S: requestId } },
      ConsistentRead: true,
      ProjectionExpression: "dispatchedAt, dispatchClaimedAt, dispatchLeaseUntilMs",
    }),
  );
  if (!result.Item) return undefined;
  // A claim whose lease ran out with no outcome recorded (the relay died putting it) may have put the event:
  // it counts as dispatched at its claim time, so the machine's next attempt follows instead of waiting
  // for a relay that will not come back.
  const leaseUntil = Number(result.Item.dispatchLeaseUntilMs?.N ?? Number.POSITIVE_INFINITY);
  const attribute =
    result.Item.dispatchedAt ?? (leaseUntil < Date.now() ? result.Item.dispatchClaimedAt : undefined);
  if (attribute === undefined) return { requestId, dispatchedAt: null };
  // The replay snapshot accepts the same timestamps as the upstream contract: what is read replays.
  const dispatchedAt = Timestamp.safeParse(attribute.S);
  return dispatchedAt.success ? { requestId, dispatchedAt: dispatchedAt.data } : undefined;
}

/** The request whose dispatch the decision needs: the current one while LIQUIDATING, else none. */
function outstandingRequest(state: CallState | undefined): string | null {
  if (state?.status !== "LIQUIDATING") return null;
  return state.call?.liquidationRequestId ?? null;
}

/**
 * Everything one revaluation needs. `state` is the call state the decision will be applied to, read before
 * this: while it is LIQUIDATING with a request, the request's dispatch is read too, alongside the Query.
 */
export async function loadAccountInputs(
  client: DynamoDBClient,
  tables: Tables,
  policies: ReadonlyMap<string, PolicyEntry>,
  accountId: string,
  nowMs: number,
  state?: CallState,
  /** Where an asset's prices come from: the Prices table, unless a caller valuing many accounts caches them. */
  sourcesOf: (asset: string) => Promise<SourceMark[]> = (asset) => loadSources(client, tables, asset),
): Promise<LoadResult> {
  const requestId = outstandingRequest(state);
  const [items, liquidationDispatch] = await Promise.all([
    accountItems(client, tables, accountId),
    requestId === null ? undefined : readLiquidationDispatch(client, tables, requestId),
  ]);
  if (!Array.isArray(items)) return items;
  const profile = items.find((item): item is ProfileItem => item.sk === "PROFILE");
  if (!profile) return { ok: false, reason: "no PROFILE item: the account is not onboarded" };
  const policy = policies.get(profile.policyId);
  if (!policy) return { ok: false, reason: `policy ${profile.policyId} is not deployed` };
  const account = accountOf(accountId, items, policy.policy.currency);
  const executionReports = items.filter((item): item is ExecutionReportItem => item.sk.startsWith("EXEC#"));
  const assets = assetsNeeded(account, policy);
  if (!Array.isArray(assets)) return assets;
  const sources = new Map<string, readonly SourceMark[]>();
  const marks = new Map<string, ResolvedMark>();
  // The assets' prices are read at once: one round trip's wait, not one per asset.
  const read = await Promise.all(assets.map(sourcesOf));
  for (const [index, asset] of assets.entries()) {
    const assetSources = read[index] ?? [];
    const mark = resolveMark(asset, assetSources, policy.policy, nowMs);
    if (!mark) return { ok: false, reason: `no price for ${asset}` };
    sources.set(asset, assetSources);
    marks.set(asset, mark);
  }
  return {
    ok: true,
    inputs: {
      profile,
      policy,
      account,
      executionReports,
      sources,
      marks,
      ...(liquidationDispatch ? { liquidationDispatch } : {}),
    },
  };
}
