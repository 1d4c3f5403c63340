/**
 * `margin-call fund ...`: the insurance fund, for an operator (docs/liquidation.md, section 9).
 *
 *   show [CURRENCY]                          the balance and the latest flows of one currency's fund, or of
 *                                            the currency of every active policy
 *   topup CURRENCY AMOUNT --reference TICKET credits AMOUNT (at the currency's scale) as a MANUAL_TOPUP, once
 *                                            per TICKET: the same command again changes nothing, another
 *                                            amount under the same ticket is refused
 *
 * A top-up is written as every flow is: the ledger, its InsuranceFundFlow event's outbox item and its audit
 * entry in one transaction (adapters/insurance-fund-store.ts). The currency's scale, and the policy the
 * audit entry names, come from the active policies in that currency, which must agree on the scale.
 *
 * It talks to the tables named by INSURANCE_FUND_TABLE, POLICIES_TABLE, OUTBOX_TABLE and AUDIT_LOG_TABLE (the
 * deployed stack's) with the default AWS credentials, or to the local engine's session (.local/session.json).
 */
import { parseArgs } from "node:util";
import {
  creditFund,
  type FundStoreDeps,
  latestFlows,
  readFundHead,
} from "../adapters/insurance-fund-store.ts";
import { loadActivePolicies } from "../adapters/policy-store.ts";
import { FundFlowConflictError, FundFlowError } from "../domain/insurance-fund.ts";
import { dec, isCanonicalDecimal, Rounding, toFixedString } from "../domain/money.ts";
import type { Policy } from "../domain/policy.ts";
import { operatorClient } from "./operator-client.ts";

export const FUND_USAGE = `usage: margin-call fund show [CURRENCY]
       margin-call fund topup CURRENCY AMOUNT --reference TICKET`;

/** A refusal the operator can act on: exit status 2, the message alone. */
export class FundCommandError extends Error {}

/** The latest flows `show` prints. */
const SHOWN_FLOWS = 10;

interface Target extends FundStoreDeps {
  readonly policiesTable: string;
}

function target(): Target {
  const env = process.env;
  return {
    dynamo: operatorClient(
      Boolean(env.INSURANCE_FUND_TABLE),
      () =>
        new FundCommandError(
          "set INSURANCE_FUND_TABLE (and POLICIES_TABLE, OUTBOX_TABLE, AUDIT_LOG_TABLE) for a deployed stack, or run npm start -- --engine-only",
        ),
    ),
    tables: {
      insuranceFund: env.INSURANCE_FUND_TABLE ?? "InsuranceFund",
      outbox: env.OUTBOX_TABLE ?? "Outbox",
      auditLog: env.AUDIT_LOG_TABLE ?? "AuditLog",
    },
    policiesTable: env.POLICIES_TABLE ?? "Policies",
  };
}

/** The active policies in `currency`, by id; refused when there is none or they disagree on its scale. */
async function policiesIn(store: Target, currency: string): Promise<Policy[]> {
  const { policies } = await loadActivePolicies(store.dynamo, store.policiesTable);
  const matching = [...policies.values()]
    .map((entry) => entry.policy)
    .filter((policy) => policy.currency === currency)
    .sort((a, b) => a.policyId.localeCompare(b.policyId));
  if (matching.length === 0) throw new FundCommandError(`no active policy is in ${currency}`);
  const scales = new Set(matching.map((policy) => policy.currencyScale));
  if (scales.size > 1) throw new FundCommandError(`the active ${currency} policies disagree on its scale`);
  return matching;
}

async function show(store: Target, only: string | undefined): Promise<number> {
  const { policies } = await loadActivePolicies(store.dynamo, store.policiesTable);
  const currencies = only
    ? [only]
    : [...new Set([...policies.values()].map((e) => e.policy.currency))].sort();
  for (const currency of currencies) {
    const [policy] = await policiesIn(store, currency);
    const scale = policy?.currencyScale ?? 0;
    const money = (value: ReturnType<typeof dec>) => toFixedString(value, scale, Rounding.HALF_EVEN);
    const head = await readFundHead(store, currency, scale);
    console.log(`${currency}  balance ${money(head.balance)}  flows ${head.seq}`);
    for (const flow of await latestFlows(store, currency, SHOWN_FLOWS)) {
      console.log(
        `  #${flow.seq}  ${flow.recordedAt}  ${flow.cause}  ${money(flow.amount)}  → ${money(flow.balanceAfter)}  ${flow.accountId ?? "-"}  ${flow.sourceReference}`,
      );
    }
  }
  return 0;
}

async function topUp(
  store: Target,
  currency: string,
  amountText: string,
  reference: string | undefined,
  now: string,
): Promise<number> {
  if (!reference)
    throw new FundCommandError("a top-up needs --reference TICKET: it is credited once per ticket");
  if (!isCanonicalDecimal(amountText)) {
    throw new FundCommandError(`AMOUNT must be a decimal such as 1000.00, not ${amountText || "nothing"}`);
  }
  const [policy] = await policiesIn(store, currency);
  if (!policy) throw new FundCommandError(`no active policy is in ${currency}`);
  const request = {
    flowId: `topup:${reference}`,
    currency,
    cause: "MANUAL_TOPUP" as const,
    amount: dec(amountText),
    accountId: null,
    sourceReference: reference,
    recordedAt: now,
  };
  const label = `${policy.policyId}@${policy.version}`;
  try {
    const { flow, applied } = await creditFund(store, request, policy.currencyScale, label, now);
    const money = (value: ReturnType<typeof dec>) =>
      toFixedString(value, policy.currencyScale, Rounding.HALF_EVEN);
    console.log(
      applied
        ? `credited ${money(flow.amount)} ${currency} (flow #${flow.seq}); the ${currency} fund holds ${money(flow.balanceAfter)}`
        : `ticket ${reference} was credited before (flow #${flow.seq}, ${money(flow.amount)} ${currency}); nothing changed`,
    );
    return 0;
  } catch (error) {
    if (error instanceof FundFlowError || error instanceof FundFlowConflictError) {
      throw new FundCommandError(error.message);
    }
    throw error;
  }
}

export async function runFund(args: string[], now = () => new Date().toISOString()): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { reference: { type: "string" } },
  });
  const [command, first, second = ""] = positionals;
  const store = target();
  try {
    switch (command) {
      case "show":
        return await show(store, first);
      case "topup":
        return await topUp(store, first ?? "", second, values.reference, now());
      default:
        console.error(FUND_USAGE);
        return 2;
    }
  } finally {
    store.dynamo.destroy();
  }
}
