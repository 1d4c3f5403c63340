/**
 * The accounts that share a bankrupt account's loss past the insurance fund (loss-waterfall.ts): every account
 * with a position on the bankrupt position's instrument, each valued now, exactly, as the engine values it.
 *
 * Where they come from. Position items (`POSITION#<instrument>`) are the only account items with an
 * `instrument` attribute, so the Accounts table's `byInstrument` index (partition key `instrument`, sort key
 * `accountId`, keys only) is sparse: one Query lists the instrument's holders in account order, and each is
 * loaded and valued through `loadAccountInputs`, the engine's own reader (its policy from the active set, its
 * marks from the Prices table, each asset's sources read once for all of them). A holder that cannot be
 * valued now (no price, a bad item, not onboarded), or whose policy is in another currency, shares nothing:
 * it is listed in `unvalued` for the caller to log.
 *
 * Why valued now, not from the last decision. ADL's score needs the holder's equity at the mark; the state
 * item keeps no valuation (a tick changes equity without any commit), so a stored figure would be as old as
 * the account's last transition. Valuing at the waterfall's time ranks on the prices of that time, as BitMEX
 * ranks on its current marks. The waterfall runs once per loss (its flow id), so the ranking it used is the
 * one recorded in its events and audit entry.
 *
 * Bounded. At most MAX_COUNTERPARTIES holders are valued; an instrument with more fails the loss's record
 * with that reason (it comes back, then goes to the relay's on-failure queue with its alarm) rather than
 * rank a part of the side: an ADL that skipped the top of the ranking would take from the wrong accounts.
 */
import { type DynamoDBClient, paginateQuery, type QueryCommandInput } from "@aws-sdk/client-dynamodb";
import type { Counterparty } from "../domain/loss-waterfall.ts";
import type { Dec } from "../domain/money.ts";
import type { SourceMark } from "../domain/prices.ts";
import { valueAccount } from "../domain/valuation.ts";
import { loadAccountInputs, loadSources } from "./account-inputs.ts";
import type { PolicyEntry, Tables } from "./settings.ts";

export const BY_INSTRUMENT_INDEX = "byInstrument";

/** The most holders of one instrument the waterfall values for one loss. */
export const MAX_COUNTERPARTIES = 20_000;

/** How many holders are loaded at once. */
const CONCURRENCY = 16;

export interface CounterpartyDeps {
  readonly dynamo: DynamoDBClient;
  readonly tables: Tables;
  readonly policies: ReadonlyMap<string, PolicyEntry>;
}

export interface CounterpartyRead {
  readonly counterparties: Counterparty[];
  /** Holders left out, each with why. */
  readonly unvalued: Array<{ readonly accountId: string; readonly reason: string }>;
}

export class CounterpartyLimitError extends Error {
  override readonly name = "CounterpartyLimitError";
}

/** The account ids with a position item on the instrument, in account order (the byInstrument index). */
export async function holdersOf(
  deps: Pick<CounterpartyDeps, "dynamo" | "tables">,
  instrument: string,
  limit = MAX_COUNTERPARTIES,
): Promise<string[]> {
  const input: QueryCommandInput = {
    TableName: deps.tables.accounts,
    IndexName: BY_INSTRUMENT_INDEX,
    KeyConditionExpression: "instrument = :instrument",
    ExpressionAttributeValues: { ":instrument": { S: instrument } },
    ProjectionExpression: "accountId",
  };
  const ids: string[] = [];
  for await (const page of paginateQuery({ client: deps.dynamo }, input)) {
    for (const item of page.Items ?? []) {
      const id = item.accountId?.S;
      if (id !== undefined && ids.at(-1) !== id) ids.push(id);
    }
    if (ids.length > limit) {
      throw new CounterpartyLimitError(
        `more than ${limit} accounts hold ${instrument}: the loss waterfall values at most ${limit}`,
      );
    }
  }
  return ids;
}

/**
 * Every other holder of the instrument in the currency, valued at `nowMs`: its equity, and its position on
 * the instrument (size and entry price).
 */
export async function loadCounterparties(
  deps: CounterpartyDeps,
  instrument: string,
  currency: string,
  excludeAccountId: string,
  nowMs: number,
): Promise<CounterpartyRead> {
  const ids = (await holdersOf(deps, instrument)).filter((id) => id !== excludeAccountId);
  const sources = new Map<string, Promise<SourceMark[]>>();
  const sourcesOf = (asset: string): Promise<SourceMark[]> => {
    let read = sources.get(asset);
    if (!read) {
      read = loadSources(deps.dynamo, deps.tables, asset);
      sources.set(asset, read);
    }
    return read;
  };
  const results: Array<Counterparty | { accountId: string; reason: string }> = new Array(ids.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const index = next;
      next += 1;
      const accountId = ids[index] as string;
      results[index] = await valued(deps, accountId, instrument, currency, nowMs, sourcesOf);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker));
  const counterparties: Counterparty[] = [];
  const unvalued: Array<{ accountId: string; reason: string }> = [];
  for (const result of results) {
    if ("equity" in result) counterparties.push(result);
    else unvalued.push(result);
  }
  return { counterparties, unvalued };
}

async function valued(
  deps: CounterpartyDeps,
  accountId: string,
  instrument: string,
  currency: string,
  nowMs: number,
  sourcesOf: (asset: string) => Promise<SourceMark[]>,
): Promise<Counterparty | { accountId: string; reason: string }> {
  const loaded = await loadAccountInputs(
    deps.dynamo,
    deps.tables,
    deps.policies,
    accountId,
    nowMs,
    undefined,
    sourcesOf,
  );
  if (!loaded.ok) return { accountId, reason: loaded.reason };
  const { account, marks, policy } = loaded.inputs;
  if (policy.policy.currency !== currency) {
    return { accountId, reason: `its policy's currency is ${policy.policy.currency}, not ${currency}` };
  }
  let equity: Dec;
  try {
    equity = valueAccount(account, marks, policy.policy).equity;
  } catch (error) {
    return { accountId, reason: error instanceof Error ? error.message : String(error) };
  }
  const held = account.positions.find((position) => position.instrument === instrument);
  return {
    accountId,
    equity,
    position: held ? { instrument, size: held.size, entryPrice: held.entryPrice } : null,
  };
}
