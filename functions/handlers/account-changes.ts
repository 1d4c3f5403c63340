/**
 * Handler 1: the Accounts stream. Every upstream write (holding, position, deposit, execution report,
 * profile) revalues its account and applies the state machine. A record that breaks the data contract is
 * quarantined and the batch goes on. Records are processed in order, one at a time; an account touched
 * several times in one batch is revalued once (the table is always ahead of the stream, so the first
 * revaluation already sees the later writes), except for execution reports, each of which is an event.
 */
import { EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { revalueAccount } from "../adapters/engine.ts";
import { REVALUE_CONCURRENCY } from "../adapters/fan-out.ts";
import { type AccountItem, parseAccountItem } from "../domain/contract.ts";
import type { EngineEvent } from "../domain/machine.ts";
import { ReportingBatchProcessor } from "./batch.ts";
import { logOutcome } from "./outcomes.ts";
import { type Runtime, runtimeWithPolicies } from "./runtime.ts";
import { isTtlDeletion, parseOrQuarantine } from "./stream-records.ts";

export const ACCOUNTS_TABLE = "Accounts";

function eventFor(item: AccountItem): EngineEvent | undefined {
  if (!item.sk.startsWith("EXEC#") || !("reportId" in item)) return undefined;
  return {
    type: "EXECUTION_REPORT",
    eventId: `exec:${item.accountId}:${item.reportId}:${item.seq}`,
    requestId: item.requestId,
    final: item.final,
  };
}

async function handleRecord(engine: Runtime, record: DynamoDBRecord, revalued: Set<string>): Promise<void> {
  if (isTtlDeletion(record)) return;
  let accountId: string;
  let execution: EngineEvent | undefined;
  if (record.eventName === "REMOVE") {
    // A deletion needs only the key: the item is gone, whatever it held (even a record that broke the
    // contract, whose removal lets the account be valued again). Nothing to quarantine.
    const key = record.dynamodb?.Keys?.accountId?.S;
    if (!key) return;
    accountId = key;
  } else {
    const item = await parseOrQuarantine(engine, ACCOUNTS_TABLE, record, parseAccountItem);
    if (!item) return;
    accountId = item.accountId;
    execution = eventFor(item);
  }
  if (!execution && revalued.has(accountId)) return;
  const event: EngineEvent = execution ?? {
    type: "REVALUE",
    cause: "ACCOUNT_CHANGE",
    eventId: record.eventID ?? `account:${accountId}:${record.dynamodb?.SequenceNumber ?? ""}`,
  };
  const outcome = await revalueAccount(engine, accountId, event, engine.now);
  revalued.add(accountId);
  logOutcome(engine, outcome);
}

/**
 * Runs each record's work after the work of the records of the same account before it in the batch, with
 * at most `limit` accounts at once: an account's records keep the stream's order, and the batch waits for
 * its slowest accounts rather than for the sum of all.
 */
export function perAccountLanes(limit: number) {
  const lanes = new Map<string, Promise<unknown>>();
  const waiting: Array<() => void> = [];
  let running = 0;
  const slot = async () => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
  };
  const free = () => {
    running -= 1;
    waiting.shift()?.();
  };
  return <T>(accountId: string, work: () => Promise<T>): Promise<T> => {
    const before = lanes.get(accountId) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(async () => {
        await slot();
        try {
          return await work();
        } finally {
          free();
        }
      });
    lanes.set(accountId, next);
    return next;
  };
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const engine = await runtimeWithPolicies();
  const revalued = new Set<string>();
  const lane = perAccountLanes(REVALUE_CONCURRENCY);
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) =>
      lane(record.dynamodb?.Keys?.accountId?.S ?? "", () => handleRecord(engine, record, revalued)),
    new ReportingBatchProcessor(EventType.DynamoDBStreams, engine.logger),
    {
      ...(context ? { context } : {}),
      processInParallel: true,
    },
  );
}
