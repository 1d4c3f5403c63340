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
  type ProfileItem,
  parsePriceItem,
  Timestamp,
} from "../domain/contract.ts";
import { judgeAccountItem } from "../domain/item-rules.ts";
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
    const mark = sourceMarkOf(item);
    return mark ? [mark] : [];
  });
}

/** A Prices item as a source's mark, or undefined when it breaks the contract. */
export function sourceMarkOf(item: unknown): SourceMark | undefined {
  const parsed = parsePriceItem(item);
  if (!parsed.ok) return undefined;
  const { source, price, asOf, realizedVolatility } = parsed.value;
  return {
    source,
    price: dec(price),
    asOf,
    ...(realizedVolatility !== undefined ? { realizedVolatility: dec(realizedVolatility) } : {}),
  };
}

type Failure = { readonly ok: false; readonly reason: string };

/** How the reason of an account without its PROFILE begins. */
export const NOT_ONBOARDED = "no PROFILE item";

/**
 * Every item of the account, judged by its kind (domain/item-rules.ts): a PROFILE whose delivery fields
 * break the contract is used without them; a broken item of any other known kind stops the valuation.
 */
async function accountItems(client: DynamoDBClient, tables: Tables, accountId: string) {
  const raw = await queryAll(client, {
    TableName: tables.accounts,
    KeyConditionExpression: "accountId = :id",
    ExpressionAttributeValues: { ":id": { S: accountId } },
    ConsistentRead: true,
  });
  return usableItems(raw);
}

/** The items the account is valued on, or why it cannot be. */
export function usableItems(raw: readonly Record<string, unknown>[]): AccountItem[] | Failure {
  const items: AccountItem[] = [];
  for (const item of raw) {
    const verdict = judgeAccountItem(item);
    if (verdict.kind === "UNVALUABLE") return { ok: false, reason: verdict.reason };
    if (verdict.kind === "USE") items.push(verdict.item);
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

/**
 * The account as it is valued under its policy: an owned asset the policy does not list (an airdropped
 * token, say) counts as zero collateral and is left out; a borrowed one, or a position in an instrument
 * the policy does not list, makes the account unvaluable.
 */
export function valuedAccount(account: Account, entry: PolicyEntry): Account | Failure {
  const policy = entry.policy;
  const unlisted = (asset: string) => asset !== policy.currency && !policy.assets.has(asset);
  const borrowed = account.holdings.find(
    (holding) => unlisted(holding.asset) && holding.quantity.isNegative(),
  );
  if (borrowed) return { ok: false, reason: `asset ${borrowed.asset} is not in policy ${policy.policyId}` };
  const unknown = account.positions.find((position) => !policy.instruments.has(position.instrument));
  if (unknown) {
    return { ok: false, reason: `instrument ${unknown.instrument} is not in policy ${policy.policyId}` };
  }
  // Zero quantities are left out too: they are worth nothing and require nothing, and ten thousand of
  // them must not make the decision's snapshot exceed an item.
  const leftOut = (holding: Account["holdings"][number]) =>
    unlisted(holding.asset) || holding.quantity.isZero();
  const zeroSize = account.positions.some((position) => position.size.isZero());
  if (!account.holdings.some(leftOut) && !zeroSize) return account;
  return {
    ...account,
    holdings: account.holdings.filter((holding) => !leftOut(holding)),
    positions: account.positions.filter((position) => !position.size.isZero()),
  };
}

/** The assets whose marks the account needs (valued as `valuedAccount` gives it). */
export function assetsNeeded(account: Account, entry: PolicyEntry): string[] {
  const policy = entry.policy;
  const assets = new Set<string>();
  for (const holding of account.holdings) {
    if (holding.asset !== policy.currency && !holding.quantity.isZero()) assets.add(holding.asset);
  }
  for (const position of account.positions) {
    const instrument = policy.instruments.get(position.instrument);
    if (instrument && !position.size.isZero()) assets.add(instrument.underlying);
  }
  return [...assets].sort();
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
  if (!profile) return { ok: false, reason: `${NOT_ONBOARDED}: the account is not onboarded` };
  const policy = policies.get(profile.policyId);
  if (!policy) return { ok: false, reason: `policy ${profile.policyId} is not deployed` };
  const account = valuedAccount(accountOf(accountId, items, policy.policy.currency), policy);
  if ("ok" in account) return account;
  const executionReports = items.filter((item): item is ExecutionReportItem => item.sk.startsWith("EXEC#"));
  const assets = assetsNeeded(account, policy);
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
