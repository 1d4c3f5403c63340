/**
 * The demo's insurance fund: an operator's top-up before the crash, as `margin-call fund topup` writes it
 * (adapters/insurance-fund-store.ts `creditFund`: the flow, its InsuranceFundFlow event and its audit entry in
 * one transaction), and what the live progress reads of the fund: the InsuranceFund table's BALANCE item.
 *
 * The seed's size: it covers ACC-BANKRUPT's loss in full (about 300 to 3,600 USD, book.ts), the first of
 * the run, and is far less than ACC-EXHAUSTS's (about 15,000 to 70,000 USD) even with the fees the crash's
 * liquidations credit before it, so the fund is exhausted and the rest of that loss is bad debt.
 */
import { GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import { TABLE_LOGICAL_IDS } from "../../../lib/tables.ts";
import { fromImage } from "../../adapters/codec.ts";
import { creditFund, type FundStoreDeps } from "../../adapters/insurance-fund-store.ts";
import { dec, Rounding, toFixedString, ZERO } from "../../domain/money.ts";
import type { Policy } from "../../domain/policy.ts";
import type { LocalRuntime } from "../runtime.ts";

/** The operator's top-up before the crash: its ticket (flow id `topup:demo-seed`) and amount. */
export const FUND_SEED = { reference: "demo-seed", amount: "10000.00" } as const;

/** At most this many pages of the fund's ledger are read at the end of a run (1 MB each). */
const MAX_LEDGER_PAGES = 100;

function fundStore(runtime: LocalRuntime): FundStoreDeps {
  // Local tables are named after their logical ids.
  const { insuranceFund, outbox, auditLog } = TABLE_LOGICAL_IDS;
  return { dynamo: runtime.dynamo, tables: { insuranceFund, outbox, auditLog } };
}

/** Credits the seed to the policy currency's fund, once: a second run on the same data changes nothing. */
export async function seedFund(runtime: LocalRuntime, policy: Policy): Promise<string> {
  const now = runtime.now();
  const { flow } = await creditFund(
    fundStore(runtime),
    {
      flowId: `topup:${FUND_SEED.reference}`,
      currency: policy.currency,
      cause: "MANUAL_TOPUP",
      amount: dec(FUND_SEED.amount),
      accountId: null,
      sourceReference: FUND_SEED.reference,
      recordedAt: now,
    },
    policy.currencyScale,
    `${policy.policyId}@${policy.version}`,
    now,
  );
  return toFixedString(flow.balanceAfter, policy.currencyScale, Rounding.HALF_EVEN);
}

/** The fund's balance as its head (the BALANCE item) holds it, at the currency's scale; 0 before any flow. */
export async function fundBalance(runtime: LocalRuntime, currency: string, scale: number): Promise<string> {
  const result = await runtime.dynamo.send(
    new GetItemCommand({
      TableName: TABLE_LOGICAL_IDS.insuranceFund,
      Key: { fund: { S: `FUND#${currency}` }, entry: { S: "BALANCE" } },
      ConsistentRead: true,
    }),
  );
  const balance = result.Item ? dec(String(fromImage(result.Item).balance)) : ZERO;
  return toFixedString(balance, scale, Rounding.HALF_EVEN);
}

/** Every item of a currency's fund partition: the head, the flows and the flow-id markers. */
export async function fundLedger(
  runtime: LocalRuntime,
  currency: string,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, never> | undefined;
  for (let page = 0; page < MAX_LEDGER_PAGES; page += 1) {
    const result = await runtime.dynamo.send(
      new QueryCommand({
        TableName: TABLE_LOGICAL_IDS.insuranceFund,
        KeyConditionExpression: "fund = :fund",
        ExpressionAttributeValues: { ":fund": { S: `FUND#${currency}` } },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(result.Items ?? []).map(fromImage));
    start = result.LastEvaluatedKey as Record<string, never> | undefined;
    if (!start) return items;
  }
  throw new Error(`the ${currency} fund's ledger is longer than ${MAX_LEDGER_PAGES} pages`);
}
