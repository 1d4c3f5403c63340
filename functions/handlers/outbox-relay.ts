/**
 * Handler 4: the outbox relay, the one consumer of the Outbox stream. It hands each inserted NOTIFY item to
 * the notice queue (the notifier sends it at SNS's pace; a batch's notices go ten to a request first), and puts each REQUEST_LIQUIDATION and RECORD_LOSS,
 * and each event written with its decision (LIQUIDATION_EVENT: a circuit breaker's, the insurance fund's), on the engine's bus, at most once per reference (adapters/event-dispatch.ts).
 * It applies each FUND_FEE to the insurance fund, and runs each RECORD_LOSS's loss waterfall, once
 * (adapters/insurance-fund-store.ts, adapters/loss-waterfall-record.ts; docs/liquidation.md, section 9). A liquidation request goes
 * out only once its call notice has its outcome: the relay holds it on the notice's outbox item, and the
 * notice's completion (a MODIFY of that item) releases it. Both are conditional writes on one item, so the
 * order is structural, not a race between consumers. A notice recorded undeliverable releases its requests
 * as the policy says (`notices.whenUndelivered`), with an alarm either way. docs/pipeline.md has the argument.
 */
import { EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { fromImage } from "../adapters/codec.ts";
import { loadCounterparties } from "../adapters/counterparties.ts";
import { type DispatchPorts, dispatchEvent } from "../adapters/event-dispatch.ts";
import { creditFund, readFlow } from "../adapters/insurance-fund-store.ts";
import { LIQUIDATION_EVENT } from "../adapters/liquidation-event-items.ts";
import { eventBridgePublisher, LIQUIDATION_REQUESTED, LOSS_RECORDED } from "../adapters/liquidation-ports.ts";
import { coverLoss } from "../adapters/loss-waterfall-record.ts";
import { type HoldResult, noticeOutcome, OutboxClaims, type OutboxItem } from "../adapters/outbox-claims.ts";
import { readPolicyVersion } from "../adapters/policy-store.ts";
import { ENV, required } from "../adapters/settings.ts";
import { LOG_SIGNALS } from "../domain/alarms.ts";
import { LIQUIDATION_EVENT_DETAILS, type LiquidationEventType } from "../domain/liquidation-events.ts";
import type { BankruptPosition } from "../domain/loss-waterfall.ts";
import { dec } from "../domain/money.ts";
import {
  type LossPayload,
  OutboxPayloadError,
  parseFundFeePayload,
  parseLiquidationPayload,
} from "../domain/outbox-payloads.ts";
import type { Policy } from "../domain/policy.ts";
import { ReportingBatchProcessor } from "./batch.ts";
import { type Runtime, runtime, runtimeWithPolicies } from "./runtime.ts";

export { EVENT_SOURCE, LIQUIDATION_REQUESTED, LOSS_RECORDED } from "../adapters/liquidation-ports.ts";

interface Ports extends DispatchPorts {
  readonly engine: Runtime;
}

/** Puts a REQUEST_LIQUIDATION or RECORD_LOSS item's event, saying whether its call notice went out. */
async function dispatch(ports: Ports, item: OutboxItem, noticeDelivered: boolean): Promise<void> {
  const kind = String(item.kind);
  const reference = String(item.outboxId);
  const payload = parseLiquidationPayload(kind, String(item.payload));
  const { kind: _kind, ...fields } = payload;
  const detail = {
    reference,
    ...fields,
    recordedAt: String(item.createdAt),
    ...(kind === "REQUEST_LIQUIDATION" ? { noticeDelivered } : {}),
  };
  const detailType = kind === "REQUEST_LIQUIDATION" ? LIQUIDATION_REQUESTED : LOSS_RECORDED;
  await dispatchEvent(ports, reference, String(item.accountId), { detailType, detail });
}

/** A request whose call notice has its outcome (or was never there): out now, or held for an operator. */
async function release(
  ports: Ports,
  request: OutboxItem,
  notice: HoldResult,
  noticeId: string,
): Promise<void> {
  const fields = {
    reference: String(request.outboxId),
    accountId: request.accountId,
    callNotificationId: noticeId,
  };
  if (notice.status === "NOTICE_UNDELIVERABLE") {
    if (notice.whenUndelivered === "HOLD") {
      ports.engine.logger.error(LOG_SIGNALS.LIQUIDATION_HELD.message, fields);
      return;
    }
    ports.engine.logger.error(LOG_SIGNALS.LIQUIDATION_WITHOUT_NOTICE.message, fields);
  }
  // A call notice that is not there cannot be said to have been delivered.
  if (notice.status === "NOTICE_MISSING")
    ports.engine.logger.error(LOG_SIGNALS.LIQUIDATION_WITHOUT_NOTICE.message, fields);
  await dispatch(ports, request, notice.status === "NOTICE_SENT");
}

/** The records that insert a notice: queued together, ten to a request, before the batch is processed. */
const insertedNotice = (record: DynamoDBRecord): OutboxItem | undefined => {
  const image = record.dynamodb?.NewImage;
  if (record.eventName !== "INSERT" || !image) return undefined;
  const item = fromImage(image);
  return item.kind === "NOTIFY" ? item : undefined;
};

/**
 * Queues every notice the batch inserts, ten to a SendMessageBatch, and returns why each one that was not
 * queued was not: its record then fails and comes back (a notice queued twice is sent once: its claim).
 */
async function queueNotices(
  engine: Runtime,
  records: readonly DynamoDBRecord[],
): Promise<Map<DynamoDBRecord, string>> {
  const notices = records.flatMap((record) => {
    const item = insertedNotice(record);
    return item ? [{ record, item }] : [];
  });
  const unsent = new Map<DynamoDBRecord, string>();
  for (let start = 0; start < notices.length; start += 10) {
    const chunk = notices.slice(start, start + 10);
    try {
      const result = await engine.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: required(engine.env, ENV.noticeQueueUrl),
          // Only the id: the notifier renders what the outbox item says, never what a message claims.
          Entries: chunk.map(({ item }, index) => ({
            Id: String(index),
            MessageBody: JSON.stringify({ notificationId: item.outboxId, accountId: item.accountId }),
          })),
        }),
      );
      for (const failure of result.Failed ?? []) {
        const entry = chunk[Number(failure.Id)];
        if (entry) unsent.set(entry.record, `${failure.Code ?? "refused"}: ${failure.Message ?? ""}`);
      }
    } catch (error) {
      for (const { record } of chunk)
        unsent.set(record, error instanceof Error ? error.message : String(error));
    }
  }
  return unsent;
}

/**
 * An event decided elsewhere and written with its decision: a breaker's LiquidationPaused or
 * LiquidationResumed (adapters/breakers.ts), the fund's InsuranceFundFlow and a loss's BadDebtRecorded
 * (adapters/insurance-fund-store.ts). Checked against its schema and put as written, once.
 */
async function liquidationEvent(ports: Ports, item: OutboxItem): Promise<void> {
  const detailType = String(item.detailType) as LiquidationEventType;
  // A LiquidationRequested goes out only after its call notice (`inserted`), never through this path.
  const schema = detailType === "LiquidationRequested" ? undefined : LIQUIDATION_EVENT_DETAILS[detailType];
  if (!schema)
    throw new OutboxPayloadError(`${String(item.outboxId)}: not an event this path puts: ${detailType}`);
  const parsed = schema.safeParse(JSON.parse(String(item.payload)));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `$.${issue.path.join(".")}: ${issue.message}`);
    throw new OutboxPayloadError(`the ${detailType} payload breaks its schema: ${issues.join("; ")}`);
  }
  const reference = String(item.outboxId);
  await dispatchEvent(ports, reference, String(item.accountId), { detailType, detail: parsed.data });
}

/**
 * The policy versions read, per runtime (one execution environment), by `<policyId>@<version>`: a stored
 * version never changes, so each is read once; at most POLICY_VERSIONS_KEPT are kept.
 */
const policyVersions = new WeakMap<Runtime, Map<string, Policy>>();
const POLICY_VERSIONS_KEPT = 100;

/** The policy version that decided an outbox item's step: its `policy` attribute, `<policyId>@<version>`. */
async function decidingPolicy(ports: Ports, item: OutboxItem): Promise<Policy> {
  const label = String(item.policy ?? "");
  const kept = policyVersions.get(ports.engine) ?? new Map<string, Policy>();
  policyVersions.set(ports.engine, kept);
  const known = kept.get(label);
  if (known) return known;
  const match = /^(.+)@([1-9]\d{0,9})$/.exec(label);
  if (!match?.[1]) throw new OutboxPayloadError(`${String(item.outboxId)}: no policy version recorded`);
  const { dynamo, tables } = ports.engine;
  const { policy } = await readPolicyVersion(dynamo, tables.policies, match[1], Number(match[2]));
  if (kept.size >= POLICY_VERSIONS_KEPT) kept.clear();
  kept.set(label, policy);
  return policy;
}

/**
 * A loss: LossRecorded on the bus, then the loss waterfall, once (loss-waterfall-record.ts `coverLoss`): the
 * fund covers what it can, the policy's `afterFund` takes what it can from the counterparties (read only when
 * it names them and the loss has an open position: adapters/counterparties.ts), and the rest is
 * BadDebtRecorded, all written with the fund's flow; the relay puts those events when their outbox items
 * arrive. Each half is skipped when redelivered: the event by its claim, the waterfall by its flow id.
 */
async function recordLoss(ports: Ports, item: OutboxItem): Promise<void> {
  await dispatch(ports, item, true);
  const payload = parseLiquidationPayload("RECORD_LOSS", String(item.payload));
  if (payload.kind !== "RECORD_LOSS") throw new OutboxPayloadError(`${String(item.outboxId)} is not a loss`);
  const policy = await decidingPolicy(ports, item);
  const loss = {
    lossReference: String(item.outboxId),
    accountId: payload.accountId,
    shortfall: dec(payload.amount),
    position: payload.position ? bankruptPositionOf(payload.position) : null,
    recordedAt: String(item.createdAt),
  };
  // Counterparties are read only for a waterfall not yet run: a redelivered loss finds its flow id spent.
  const spent =
    policy.lossWaterfall.afterFund !== "NONE" &&
    loss.position !== null &&
    (await readFlow(ports.engine, policy.currency, `${loss.lossReference}:fund`)) !== undefined;
  const { counterparties, unvalued } =
    policy.lossWaterfall.afterFund !== "NONE" && loss.position && !spent
      ? await loadCounterparties(
          await runtimeWithPolicies(),
          loss.position.instrument,
          policy.currency,
          loss.accountId,
          Date.parse(ports.now()),
        )
      : { counterparties: [], unvalued: [] };
  const { flow, applied, waterfall } = await coverLoss(
    ports.engine,
    loss,
    policy,
    counterparties,
    ports.now(),
  );
  const fields = {
    reference: loss.lossReference,
    accountId: loss.accountId,
    fundCover: flow.amount.negated().toFixed(),
    fundBalance: flow.balanceAfter.toFixed(),
    counterparties: counterparties.length,
    ...(unvalued.length > 0 ? { unvalued: unvalued.slice(0, 20), unvaluedCount: unvalued.length } : {}),
  };
  const shared = {
    afterFund: policy.lossWaterfall.afterFund,
    adlCover: waterfall?.adl?.cover.toFixed() ?? "0",
    socialisedCover: waterfall?.socialised?.cover.toFixed() ?? "0",
  };
  // Bad debt is said once, when the waterfall ran.
  if (waterfall?.badDebt.greaterThan(0)) {
    ports.engine.logger.error(LOG_SIGNALS.BAD_DEBT_RECORDED.message, {
      ...fields,
      ...shared,
      badDebt: waterfall.badDebt.toFixed(),
    });
  } else
    ports.engine.logger.info(applied ? "loss waterfall run" : "loss waterfall already run", {
      ...fields,
      ...shared,
    });
}

function bankruptPositionOf(position: NonNullable<LossPayload["position"]>): BankruptPosition {
  return {
    instrument: position.instrument,
    side: position.side,
    quantity: dec(position.quantity),
    quantityScale: position.quantityScale,
    markPrice: dec(position.markPrice),
    bankruptcyPrice: dec(position.bankruptcyPrice),
  };
}

/** A settled liquidation's fee: credited to the insurance fund once, its InsuranceFundFlow with it. */
async function creditFee(ports: Ports, item: OutboxItem): Promise<void> {
  const fee = parseFundFeePayload(String(item.payload));
  const policy = await decidingPolicy(ports, item);
  if (policy.currency !== fee.currency) {
    throw new OutboxPayloadError(`${fee.flowId}: a ${fee.currency} fee under a ${policy.currency} policy`);
  }
  const request = {
    flowId: fee.flowId,
    currency: fee.currency,
    cause: "LIQUIDATION_FEE" as const,
    amount: dec(fee.amount),
    accountId: fee.accountId,
    sourceReference: fee.requestId,
    recordedAt: String(item.createdAt),
  };
  const label = `${policy.policyId}@${policy.version}`;
  const { flow, applied } = await creditFund(ports.engine, request, policy.currencyScale, label, ports.now());
  ports.engine.logger.info(applied ? "fee credited to the fund" : "fee already credited", {
    reference: fee.flowId,
    accountId: fee.accountId,
    fundBalance: flow.balanceAfter.toFixed(),
  });
}

async function inserted(ports: Ports, item: OutboxItem): Promise<void> {
  if (item.kind === "RECORD_LOSS") return recordLoss(ports, item);
  if (item.kind === "FUND_FEE") return creditFee(ports, item);
  if (item.kind === LIQUIDATION_EVENT) return liquidationEvent(ports, item);
  if (item.kind !== "REQUEST_LIQUIDATION") return;
  const payload = parseLiquidationPayload("REQUEST_LIQUIDATION", String(item.payload));
  if (payload.kind !== "REQUEST_LIQUIDATION") return;
  const noticeId = payload.callNotificationId;
  const hold = await ports.claims.holdOnNotice(noticeId, String(item.outboxId));
  if (hold.status === "HELD") {
    ports.engine.logger.info("liquidation held for its call notice", {
      reference: item.outboxId,
      callNotificationId: noticeId,
    });
    return;
  }
  await release(ports, item, hold, noticeId);
}

/** A notice got its outcome: release every request held on it. */
async function noticeDone(ports: Ports, notice: OutboxItem): Promise<void> {
  const outcome = noticeOutcome(notice);
  if (outcome.status === "HELD") return;
  const held = notice.held instanceof Set ? [...(notice.held as Set<string>)].sort() : [];
  // Each request on its own: one that cannot be put now does not keep the others back; the record is
  // retried for it, and the ones already put are skipped by their claims.
  const failures: string[] = [];
  for (const requestId of held) {
    try {
      const request = await ports.claims.item(requestId);
      if (!request) throw new Error(`held request ${requestId} has no outbox item`);
      await release(ports, request, outcome, String(notice.outboxId));
    } catch (error) {
      failures.push(`${requestId}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (failures.length > 0) throw new Error(`held requests not released: ${failures.join("; ")}`);
}

/**
 * The time a record that puts events may need: a claim, up to four PutEvents of at most 5 s each, and a
 * completion; a loss's waterfall or a fee's credit adds a policy read (once per version) and a few reads and one transaction
 * per attempt (at most FLOW_ATTEMPTS), each a few milliseconds to DynamoDB, well within the 3.6 s the
 * PutEvents leave. A record started with less left fails at once and comes back with the rest of the batch.
 */
export const RELAY_RECORD_RESERVE_MS = 25_000;

async function handleRecord(
  ports: Ports,
  record: DynamoDBRecord,
  unsent: ReadonlyMap<DynamoDBRecord, string>,
): Promise<void> {
  const image = record.dynamodb?.NewImage;
  if (!image) return;
  if (!insertedNotice(record) && ports.remainingMs() < RELAY_RECORD_RESERVE_MS) {
    throw new Error("left for the next invocation: too little time before this one's timeout");
  }
  const item = fromImage(image);
  if (insertedNotice(record)) {
    const why = unsent.get(record);
    if (why !== undefined) throw new Error(`notice ${String(item.outboxId)} not queued: ${why}`);
    return;
  }
  if (record.eventName === "INSERT") return inserted(ports, item);
  if (record.eventName === "MODIFY" && item.kind === "NOTIFY") return noticeDone(ports, item);
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const engine = runtime();
  const claims = new OutboxClaims(engine.dynamo, engine.tables.outbox);
  const ports: Ports = {
    engine,
    claims,
    publisher: eventBridgePublisher(engine),
    logger: engine.logger,
    now: engine.now,
    remainingMs: () => context?.getRemainingTimeInMillis() ?? 60_000,
  };
  const unsent = await queueNotices(engine, event.Records);
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(ports, record, unsent),
    new ReportingBatchProcessor(EventType.DynamoDBStreams, engine.logger),
    { ...(context ? { context } : {}), processInParallel: false },
  );
}
