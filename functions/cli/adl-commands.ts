/**
 * `margin-call adl rank INSTRUMENT [--account ACCOUNT]`: the auto-deleveraging queue of one instrument, as the
 * loss waterfall would rank it now (docs/liquidation.md, section 9): each side's holders, highest score first
 * (BitMEX's PnL% × effective leverage, domain/adl.ts), with their quantity, score, percentile and lights. With
 * `--account`, that account's standing alone: "what is my ADL rank".
 *
 * The holders come from the Accounts table's byInstrument index and are valued now, exactly, by the code the
 * waterfall uses (adapters/counterparties.ts); the mark is the underlying's, resolved from the Prices table
 * under the policy that lists the instrument. So the queue printed is the one a loss recorded at this moment
 * would deleverage, give or take the prices that move in between.
 *
 * It talks to the tables named by ACCOUNTS_TABLE, PRICES_TABLE and POLICIES_TABLE (the deployed stack's) with
 * the default AWS credentials, or to the local engine's session (.local/session.json).
 */
import { parseArgs } from "node:util";
import { loadSources } from "../adapters/account-inputs.ts";
import { loadCounterparties } from "../adapters/counterparties.ts";
import { loadActivePolicies } from "../adapters/policy-store.ts";
import type { Tables } from "../adapters/settings.ts";
import { type AdlStanding, type PositionSide, rankAdl } from "../domain/adl.ts";
import { toPlainString } from "../domain/money.ts";
import { resolveMark } from "../domain/prices.ts";
import { operatorClient } from "./operator-client.ts";

export const ADL_USAGE = "usage: margin-call adl rank INSTRUMENT [--account ACCOUNT]";

/** A refusal the operator can act on: exit status 2, the message alone. */
export class AdlCommandError extends Error {}

function tables(): Tables {
  const env = process.env;
  return {
    accounts: env.ACCOUNTS_TABLE ?? "Accounts",
    prices: env.PRICES_TABLE ?? "Prices",
    marginCalls: env.MARGIN_CALLS_TABLE ?? "MarginCalls",
    triggerIndex: env.TRIGGER_INDEX_TABLE ?? "TriggerIndex",
    outbox: env.OUTBOX_TABLE ?? "Outbox",
    auditLog: env.AUDIT_LOG_TABLE ?? "AuditLog",
    quarantine: env.QUARANTINE_TABLE ?? "Quarantine",
    policies: env.POLICIES_TABLE ?? "Policies",
    insuranceFund: env.INSURANCE_FUND_TABLE ?? "InsuranceFund",
  };
}

export interface AdlQueue {
  readonly instrument: string;
  readonly currency: string;
  readonly markPrice: string;
  readonly standings: readonly AdlStanding[];
  /** Holders that could not be valued now, with why: they are in no queue. */
  readonly unvalued: ReadonlyArray<{ readonly accountId: string; readonly reason: string }>;
}

/** Both sides' queues of an instrument, longs first. */
export async function adlQueue(
  dynamo: Parameters<typeof loadCounterparties>[0]["dynamo"],
  names: Tables,
  instrument: string,
  nowMs: number,
): Promise<AdlQueue> {
  const { policies } = await loadActivePolicies(dynamo, names.policies);
  const listing = [...policies.values()].filter((entry) => entry.policy.instruments.has(instrument));
  const first = listing[0]?.policy;
  if (!first) throw new AdlCommandError(`no active policy lists ${instrument}`);
  const currencies = new Set(listing.map((entry) => entry.policy.currency));
  if (currencies.size > 1) {
    throw new AdlCommandError(
      `${instrument} is listed in ${[...currencies].sort().join(" and ")}: one queue per currency is not supported`,
    );
  }
  const underlying = first.instruments.get(instrument)?.underlying ?? "";
  const mark = resolveMark(underlying, await loadSources(dynamo, names, underlying), first, nowMs);
  if (!mark) throw new AdlCommandError(`no usable ${underlying} price now: the queue cannot be ranked`);
  const { counterparties, unvalued } = await loadCounterparties(
    { dynamo, tables: names, policies },
    instrument,
    first.currency,
    "",
    nowMs,
  );
  const candidates = counterparties.flatMap(({ accountId, equity, position }) =>
    position ? [{ ...position, accountId, equity }] : [],
  );
  const sides: PositionSide[] = ["LONG", "SHORT"];
  return {
    instrument,
    currency: first.currency,
    markPrice: toPlainString(mark.price),
    standings: sides.flatMap((side) => rankAdl(candidates, instrument, side, mark.price)),
    unvalued,
  };
}

function line(standing: AdlStanding): string {
  return [
    standing.side.padEnd(5),
    `#${standing.rank}`.padStart(6),
    standing.accountId.padEnd(16),
    toPlainString(standing.quantity).padStart(14),
    standing.score.toFixed().padStart(18),
    standing.percentile.toFixed().padStart(16),
    `${"●".repeat(standing.lights)}${"○".repeat(5 - standing.lights)}`,
  ].join("  ");
}

export async function runAdl(
  args: string[],
  now = () => new Date().toISOString(),
  print: (text: string) => void = console.log,
): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { account: { type: "string" } },
  });
  const [command, instrument] = positionals;
  if (command !== "rank" || !instrument) {
    console.error(ADL_USAGE);
    return 2;
  }
  const dynamo = operatorClient(
    Boolean(process.env.ACCOUNTS_TABLE),
    () =>
      new AdlCommandError(
        "set ACCOUNTS_TABLE (and PRICES_TABLE, POLICIES_TABLE) for a deployed stack, or run npm start -- --engine-only",
      ),
  );
  try {
    const queue = await adlQueue(dynamo, tables(), instrument, Date.parse(now()));
    const shown = values.account
      ? queue.standings.filter((standing) => standing.accountId === values.account)
      : queue.standings;
    if (values.account && shown.length === 0) {
      throw new AdlCommandError(`${values.account} holds no ${instrument} position that can be ranked now`);
    }
    print(`${instrument} at ${queue.markPrice} ${queue.currency}: ${queue.standings.length} ranked`);
    print(
      [
        "side ",
        "  rank",
        "account".padEnd(16),
        "quantity".padStart(14),
        "score".padStart(18),
        "percentile".padStart(16),
        "lights",
      ].join("  "),
    );
    for (const standing of shown) print(line(standing));
    for (const { accountId, reason } of values.account ? [] : queue.unvalued)
      print(`not ranked: ${accountId}: ${reason}`);
    return 0;
  } finally {
    dynamo.destroy();
  }
}
