/**
 * Handler 1: the Accounts stream. Every upstream write (holding, position, deposit, execution report,
 * profile) revalues its account and applies the state machine. A record that breaks the data contract is
 * quarantined and the batch goes on. Records are processed in order, one at a time; an account touched
 * several times in one batch is revalued once (the table is always ahead of the stream, so the first
 * revaluation already sees the later writes), except for execution reports, each of which is an event.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { revalueAccount } from "../adapters/engine.ts";
import { type AccountItem, parseAccountItem } from "../domain/contract.ts";
import type { EngineEvent } from "../domain/machine.ts";
import { logOutcome } from "./outcomes.ts";
import { type Runtime, runtime } from "./runtime.ts";
import { isTtlDeletion, parseOrQuarantine } from "./stream-records.ts";

export const ACCOUNTS_TABLE = "Accounts";

function eventFor(item: AccountItem, record: DynamoDBRecord): EngineEvent | undefined {
  if (!item.sk.startsWith("EXEC#") || !("reportId" in item)) return undefined;
  if (record.eventName === "REMOVE") return undefined;
  return {
    type: "EXECUTION_REPORT",
    eventId: `exec:${item.accountId}:${item.reportId}:${item.seq}`,
    requestId: item.requestId,
    final: item.final,
  };
}

async function handleRecord(rt: Runtime, record: DynamoDBRecord, revalued: Set<string>): Promise<void> {
  if (isTtlDeletion(record)) return;
  const item = await parseOrQuarantine(rt, ACCOUNTS_TABLE, record, parseAccountItem);
  if (!item) return;
  const execution = eventFor(item, record);
  if (!execution && revalued.has(item.accountId)) return;
  const event: EngineEvent = execution ?? {
    type: "REVALUE",
    cause: "ACCOUNT_CHANGE",
    eventId: record.eventID ?? `account:${item.accountId}:${item.sk}:${item.seq}`,
  };
  const outcome = await revalueAccount(rt, item.accountId, event, rt.now);
  revalued.add(item.accountId);
  logOutcome(rt, outcome);
}

export async function handler(event: DynamoDBStreamEvent, context?: Context) {
  const rt = runtime();
  const revalued = new Set<string>();
  return processPartialResponse(
    event,
    (record: DynamoDBRecord) => handleRecord(rt, record, revalued),
    new BatchProcessor(EventType.DynamoDBStreams),
    {
      ...(context ? { context } : {}),
      processInParallel: false,
    },
  );
}
