/**
 * The insurance fund's ledger in DynamoDB (domain: insurance-fund.ts, whose header gives the item keys;
 * docs/liquidation.md, section 9). The InsuranceFund table holds one partition per currency, `FUND#<currency>`:
 * the head `BALANCE`, one `FLOW#<seq>` per flow and one `FLOWID#<flowId>` marker per flow id.
 *
 * A flow is applied with one TransactWriteItems, planned from the head as read: the FLOWID marker (only if
 * absent), the FLOW item (only if absent), the BALANCE at the next seq (only if still at the one read), the
 * outbox items of the decision's events (the relay puts them on the bus: InsuranceFundFlow, and a loss's
 * BadDebtRecorded) and its audit entry in the fund's own partition of the audit log (`FUND#<currency>`). So
 * none of them exists without the others, and the stored balance is always the sum of the flows.
 *
 * Idempotent on the flow id: a flow id found applied returns the flow it made (the same request
 * redelivered) or throws FundFlowConflictError (a different request under the same id). A transaction that
 * fails (another flow took the seq, or a concurrent duplicate took the flow id) is read and planned again,
 * at most FLOW_ATTEMPTS times; past that the caller fails and its record comes back.
 */
import {
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { assert, InvariantError } from "../domain/assert.ts";
import {
  appliedBefore,
  causeDirection,
  FUND_FLOW_CAUSES,
  type FundFlow,
  type FundFlowCause,
  type FundFlowRequest,
  type FundHead,
  fundItemKeys,
  planFlow,
} from "../domain/insurance-fund.ts";
import { type EventDetail, fundFlowEvent } from "../domain/liquidation-events.ts";
import { type Dec, dec, Rounding, toFixedString, ZERO } from "../domain/money.ts";
import { fromImage, toItem } from "./codec.ts";
import { liquidationEventItem } from "./liquidation-event-items.ts";
import type { Tables } from "./settings.ts";
import { auditSeq, shardOf } from "./step-items.ts";

export interface FundStoreDeps {
  readonly dynamo: DynamoDBClient;
  readonly tables: Pick<Tables, "insuranceFund" | "outbox" | "auditLog">;
  readonly outboxRetentionSeconds?: number | undefined;
}

/** How many times a flow is read and planned again after losing a race, before its caller fails. */
export const FLOW_ATTEMPTS = 5;

/** The longest pause after the first lost race, in milliseconds; attempt k pauses up to k times it. */
const RACE_PAUSE_MS = 25;

const DAY_SHARDS = 8;

/** What one flow decides, planned from the head: the flow, the events it puts and what its audit says. */
export interface FlowDecision {
  readonly flow: FundFlow;
  /** In order; the first is the flow's InsuranceFundFlow. */
  readonly events: readonly EventDetail[];
  /** The audit entry's reason, and figures beyond the flow's own. */
  readonly reason: string;
  readonly figures?: Readonly<Record<string, string>>;
}

export interface FlowOutcome {
  readonly flow: FundFlow;
  /** False: the flow id was applied before (a redelivery); nothing was written. */
  readonly applied: boolean;
}

const partition = (currency: string) => ({ fund: { S: `FUND#${currency}` } });

/** The head of a currency's fund (strongly consistent); seq 0 and balance 0 before its first flow. */
export async function readFundHead(deps: FundStoreDeps, currency: string, scale: number): Promise<FundHead> {
  const result = await deps.dynamo.send(
    new GetItemCommand({
      TableName: deps.tables.insuranceFund,
      Key: { ...partition(currency), entry: { S: "BALANCE" } },
      ConsistentRead: true,
    }),
  );
  if (!result.Item) return { currency, scale, balance: ZERO, seq: 0 };
  const item = fromImage(result.Item);
  assert(
    Number(item.scale) === scale,
    `the ${currency} fund is kept at ${String(item.scale)} decimal places, not ${scale}: policies must agree on a currency's scale`,
  );
  return { currency, scale, balance: dec(String(item.balance)), seq: Number(item.seq) };
}

function flowOf(currency: string, item: Record<string, unknown>): FundFlow {
  const cause = String(item.cause) as FundFlowCause;
  assert(FUND_FLOW_CAUSES.includes(cause), `flow ${String(item.flowId)} has a known cause`);
  return {
    flowId: String(item.flowId),
    currency,
    seq: Number(item.seq),
    cause,
    amount: dec(String(item.amount)),
    requested: dec(String(item.requested)),
    balanceAfter: dec(String(item.balanceAfter)),
    accountId: typeof item.accountId === "string" ? item.accountId : null,
    sourceReference: String(item.sourceReference),
    recordedAt: String(item.recordedAt),
  };
}

/** The flow a flow id made, or undefined when it has not been applied. */
export async function readFlow(
  deps: FundStoreDeps,
  currency: string,
  flowId: string,
): Promise<FundFlow | undefined> {
  const get = async (entry: string) =>
    (
      await deps.dynamo.send(
        new GetItemCommand({
          TableName: deps.tables.insuranceFund,
          Key: { ...partition(currency), entry: { S: entry } },
          ConsistentRead: true,
        }),
      )
    ).Item;
  const marker = await get(`FLOWID#${flowId}`);
  if (!marker) return undefined;
  const { flowSk } = fundItemKeys(currency, Number(fromImage(marker).seq), flowId);
  const item = await get(flowSk);
  assert(item !== undefined, `flow ${flowId}'s marker names a FLOW item that exists`);
  return flowOf(currency, fromImage(item));
}

/** The latest `limit` flows of a currency, newest first (one page of a Query). */
export async function latestFlows(deps: FundStoreDeps, currency: string, limit: number): Promise<FundFlow[]> {
  assert(Number.isInteger(limit) && limit >= 1 && limit <= 1000, "a page of 1..1000 flows");
  const result = await deps.dynamo.send(
    new QueryCommand({
      TableName: deps.tables.insuranceFund,
      KeyConditionExpression: "fund = :fund AND begins_with(entry, :flow)",
      ExpressionAttributeValues: { ":fund": { S: `FUND#${currency}` }, ":flow": { S: "FLOW#" } },
      ScanIndexForward: false,
      Limit: limit,
      ConsistentRead: true,
    }),
  );
  return (result.Items ?? []).map((item) => flowOf(currency, fromImage(item)));
}

/**
 * Applies one flow once. `decide` plans it from the head as read (it may be called again after a lost
 * race); `policy` (`<policyId>@<version>`) is recorded on the audit entry. Throws FundFlowConflictError when
 * the flow id was applied with a different request.
 */
export async function applyFundFlow(
  deps: FundStoreDeps,
  request: FundFlowRequest,
  scale: number,
  policy: string,
  now: string,
  decide: (head: FundHead) => FlowDecision,
): Promise<FlowOutcome> {
  for (let attempt = 1; attempt <= FLOW_ATTEMPTS; attempt += 1) {
    const existing = await readFlow(deps, request.currency, request.flowId);
    if (existing) return { flow: appliedBefore(existing, request), applied: false };
    const head = await readFundHead(deps, request.currency, scale);
    const decision = decide(head);
    assert(decision.flow.flowId === request.flowId, "a decision applies the flow asked for");
    try {
      await deps.dynamo.send(
        new TransactWriteItemsCommand({ TransactItems: flowItems(deps, head, decision, policy, now) }),
      );
      return { flow: decision.flow, applied: true };
    } catch (error) {
      // Another flow took the seq, or a duplicate took the flow id: read both again. An event or audit
      // entry already there while the ledger's three items passed is not a race but a broken invariant.
      if (!(error instanceof Error && error.name === "TransactionCanceledException")) throw error;
      const failed = ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map(
        (reason) => reason.Code === "ConditionalCheckFailed",
      );
      const beyondLedger = failed.findIndex((isFailed, index) => index >= 3 && isFailed);
      if (beyondLedger >= 0 && !failed.slice(0, 3).some(Boolean)) {
        throw new InvariantError(
          `flow ${request.flowId}: item ${beyondLedger} of its transaction exists without the flow`,
        );
      }
      // A short, growing, random pause, so that writers racing on the head do not meet again in step.
      await new Promise((resolve) =>
        setTimeout(resolve, Math.floor(Math.random() * RACE_PAUSE_MS * attempt)),
      );
    }
  }
  throw new Error(
    `flow ${request.flowId}: the ${request.currency} fund moved under it ${FLOW_ATTEMPTS} times`,
  );
}

function flowItems(
  deps: FundStoreDeps,
  head: FundHead,
  decision: FlowDecision,
  policy: string,
  now: string,
): TransactWriteItem[] {
  const { flow } = decision;
  const keys = fundItemKeys(flow.currency, flow.seq, flow.flowId);
  const amount = (value: Dec) => money(value, head.scale);
  const key = (entry: string) => ({ fund: keys.pk, entry });
  const table = deps.tables.insuranceFund;
  return [
    {
      Put: {
        TableName: table,
        Item: toItem({ ...key(keys.flowIdSk), flowId: flow.flowId, seq: flow.seq }),
        ConditionExpression: "attribute_not_exists(fund)",
      },
    },
    {
      Put: {
        TableName: table,
        Item: toItem({
          ...key(keys.flowSk),
          flowId: flow.flowId,
          seq: flow.seq,
          cause: flow.cause,
          amount: amount(flow.amount),
          requested: amount(flow.requested),
          balanceAfter: amount(flow.balanceAfter),
          accountId: flow.accountId ?? undefined,
          sourceReference: flow.sourceReference,
          recordedAt: flow.recordedAt,
        }),
        ConditionExpression: "attribute_not_exists(fund)",
      },
    },
    {
      Put: {
        TableName: table,
        Item: toItem({
          ...key(keys.balanceSk),
          balance: amount(flow.balanceAfter),
          seq: flow.seq,
          scale: head.scale,
          updatedAt: now,
        }),
        ...(head.seq === 0
          ? { ConditionExpression: "attribute_not_exists(fund)" }
          : {
              ConditionExpression: "seq = :read",
              ExpressionAttributeValues: { ":read": { N: String(head.seq) } },
            }),
      },
    },
    ...decision.events.map((event) =>
      liquidationEventItem(
        deps.tables.outbox,
        event,
        flow.accountId ?? keys.pk,
        now,
        deps.outboxRetentionSeconds,
      ),
    ),
    auditItem(deps.tables.auditLog, head, decision, policy, now),
  ];
}

/** The flow's entry in the fund's partition of the audit log, `FUND#<currency>`, versioned by the flow's seq. */
function auditItem(
  table: string,
  head: FundHead,
  decision: FlowDecision,
  policy: string,
  now: string,
): TransactWriteItem {
  const { flow } = decision;
  const accountId = `FUND#${flow.currency}`;
  const auditId = `${accountId}:v${flow.seq}`;
  const amount = (value: Dec) => money(value, head.scale);
  return {
    Put: {
      TableName: table,
      Item: toItem({
        accountId,
        seq: auditSeq(flow.seq, 0),
        auditId,
        version: flow.seq,
        from: "FUND",
        to: "FUND",
        reason: decision.reason,
        at: flow.recordedAt,
        recordedAt: now,
        eventId: flow.flowId,
        figures: {
          policy,
          cause: flow.cause,
          accountId: flow.accountId,
          sourceReference: flow.sourceReference,
          requested: amount(flow.requested),
          amount: amount(flow.amount),
          balanceBefore: amount(head.balance),
          balanceAfter: amount(flow.balanceAfter),
          ...decision.figures,
        },
        dayShard: `${now.slice(0, 10)}#${shardOf(auditId, DAY_SHARDS)}`,
        recordedAtAccount: `${now}#${accountId}`,
      }),
      ConditionExpression: "attribute_not_exists(seq)",
    },
  };
}

/** A credit (a liquidation's fee, an operator's top-up), applied once: its InsuranceFundFlow goes out with it. */
export function creditFund(
  deps: FundStoreDeps,
  request: FundFlowRequest,
  scale: number,
  policy: string,
  now: string,
): Promise<FlowOutcome> {
  assert(causeDirection(request.cause) === 1, `${request.cause} is not a credit`);
  return applyFundFlow(deps, request, scale, policy, now, (head) => {
    const flow = planFlow(head, request);
    return {
      flow,
      events: [fundFlowEvent(flow, scale)],
      reason: `insurance fund: ${request.cause} ${money(flow.amount, scale)} ${flow.currency}, balance ${money(flow.balanceAfter, scale)}`,
    };
  });
}

function money(value: Dec, scale: number): string {
  return toFixedString(value, scale, Rounding.HALF_EVEN);
}
