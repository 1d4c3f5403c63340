/**
 * Bounded work per invocation. A price tick that crosses more accounts than one invocation should take,
 * and every sweep segment, is processed one page at a time: each page ends by sending its continuation to
 * the fan-out queue, which the fan-out worker consumes. The work is the same wherever it runs. A sweep
 * segment's page is revalued in bulk, through the float screen: bulk-revalue.ts `processSweepPage`.
 */
import { type AttributeValue, type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { z } from "zod";
import type { EngineEvent } from "../domain/machine.ts";
import { dec } from "../domain/money.ts";
import { fromImage } from "./codec.ts";
import { type EngineDeps, type RevalueOutcome, revalueIsolated } from "./engine.ts";
import { crossedAccounts } from "./trigger-index.ts";

const startKey = z.record(z.string(), z.unknown()).optional();
/** The most account ids one ACCOUNTS message carries (about 40 KB, well inside SQS's 256 KB). */
const MAX_LEFTOVER = 1_000;

export const fanOutMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("RANGE"),
    asset: z.string(),
    line: z.string(),
    low: z.string(),
    high: z.string(),
    eventId: z.string(),
    startKey,
  }),
  // The accounts a page did not start within its time: a page of their own.
  z.strictObject({
    type: z.literal("ACCOUNTS"),
    accountIds: z.array(z.string()).min(1).max(MAX_LEFTOVER),
    cause: z.enum(["PRICE_TICK", "SWEEP"]),
    eventId: z.string(),
  }),
  z.strictObject({
    type: z.literal("SWEEP_SEGMENT"),
    segment: z.int().min(0),
    totalSegments: z.int().min(1),
    eventId: z.string(),
    /** The sweep pass the segment belongs to (sweep-pass.ts); absent in messages of older versions. */
    passId: z.string().optional(),
    startKey,
  }),
]);
export type FanOutMessage = z.infer<typeof fanOutMessageSchema>;

export interface FanOutDeps extends EngineDeps {
  readonly sqs: SQSClient;
  readonly fanOutQueueUrl: string | undefined;
  readonly dynamo: DynamoDBClient;
}

export interface PageResult {
  readonly outcomes: RevalueOutcome[];
  /** Entries or items read from the index or the table, before de-duplication. */
  readonly read: number;
  readonly continuation: FanOutMessage | undefined;
  /** The accounts the page did not start within its time, for another page. */
  readonly leftover?: readonly FanOutMessage[];
}

export async function enqueue(deps: FanOutDeps, messages: readonly FanOutMessage[]): Promise<void> {
  if (messages.length === 0) return;
  if (!deps.fanOutQueueUrl) throw new Error("no fan-out queue configured: FAN_OUT_QUEUE_URL is not set");
  for (let start = 0; start < messages.length; start += 10) {
    const chunk = messages.slice(start, start + 10);
    let pending = chunk.map((message, index) => ({
      Id: String(index),
      MessageBody: JSON.stringify(message),
    }));
    for (let attempt = 0; pending.length > 0; attempt += 1) {
      if (attempt >= 5) throw new Error(`fan-out queue refused ${pending.length} messages`);
      const result = await deps.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: deps.fanOutQueueUrl, Entries: pending }),
      );
      const failed = new Set((result.Failed ?? []).map((failure) => failure.Id));
      pending = pending.filter((entry) => failed.has(entry.Id));
    }
  }
}

/**
 * Accounts revalued at once by one invocation. Each revaluation is a handful of round trips on its own
 * account, independent of the others (every commit is conditional on its own version), so a page waits
 * for the slowest few rather than the sum of all.
 */
export const REVALUE_CONCURRENCY = 8;

/** `run` on every item, at most `limit` at once; results in the items' order; the first error after all. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) {
      try {
        results[index] = await run(items[index] as T);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
  return results;
}

/**
 * Revalues the accounts, REVALUE_CONCURRENCY at once, starting none after `deadlineMs` (the first always
 * starts: every page makes progress). Each account on its own: one that cannot be revalued is reported,
 * and the others go on. Returns the outcomes and the accounts not started, as ACCOUNTS pages.
 */
export async function revalueWithin(
  deps: EngineDeps,
  accountIds: readonly string[],
  event: Extract<EngineEvent, { type: "REVALUE" }>,
  clock: () => string,
  deadlineMs: number,
): Promise<{ outcomes: RevalueOutcome[]; leftover: FanOutMessage[] }> {
  const ids = [...new Set(accountIds)];
  const outcomes: RevalueOutcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < ids.length && (next === 0 || Date.now() < deadlineMs)) {
      const accountId = ids[next++] as string;
      outcomes.push(await revalueIsolated(deps, accountId, event, clock));
    }
  };
  await Promise.all(Array.from({ length: Math.min(REVALUE_CONCURRENCY, ids.length) }, worker));
  const rest = ids.slice(next);
  const leftover: FanOutMessage[] = [];
  for (let start = 0; start < rest.length; start += MAX_LEFTOVER) {
    const cause = event.cause === "SWEEP" ? "SWEEP" : "PRICE_TICK";
    leftover.push({
      type: "ACCOUNTS",
      accountIds: rest.slice(start, start + MAX_LEFTOVER),
      cause,
      eventId: event.eventId,
    });
  }
  return { outcomes, leftover };
}

function unseen(accountIds: readonly string[], seen: Set<string>): string[] {
  const fresh = accountIds.filter((accountId) => !seen.has(accountId));
  for (const accountId of fresh) seen.add(accountId);
  return fresh;
}

/** A page of accounts another page did not start in time. */
export async function processAccountsPage(
  deps: FanOutDeps,
  message: Extract<FanOutMessage, { type: "ACCOUNTS" }>,
  clock: () => string,
  deadlineMs: number,
): Promise<PageResult> {
  const event: EngineEvent = { type: "REVALUE", cause: message.cause, eventId: message.eventId };
  const { outcomes, leftover } = await revalueWithin(deps, message.accountIds, event, clock, deadlineMs);
  return { outcomes, read: 0, continuation: undefined, leftover };
}

/** One page of a trigger range: at most `limit` index entries. */
export async function processRangePage(
  deps: FanOutDeps,
  message: Extract<FanOutMessage, { type: "RANGE" }>,
  limit: number,
  clock: () => string,
  seen: Set<string> = new Set(),
  deadlineMs = Number.POSITIVE_INFINITY,
): Promise<PageResult> {
  const page = await crossedAccounts(
    deps,
    message.line,
    dec(message.low),
    dec(message.high),
    limit,
    message.startKey,
  );
  const event = { type: "REVALUE", cause: "PRICE_TICK", eventId: message.eventId } as const;
  const fresh = unseen(page.accountIds, seen);
  const { outcomes, leftover } = await revalueWithin(deps, fresh, event, clock, deadlineMs);
  return {
    outcomes,
    read: page.scanned,
    continuation: page.lastKey ? { ...message, startKey: page.lastKey } : undefined,
    leftover,
  };
}

/**
 * One page of each of a tick's lines (trigger-index.ts `linesOf`: every shard of both directions), read at
 * once, the budget shared between them; their accounts revalued together, each line's most distressed first
 * and the lines taken in turn. Returns each line that has more as its continuation.
 */
export async function processRangeRound(
  deps: FanOutDeps,
  messages: readonly Extract<FanOutMessage, { type: "RANGE" }>[],
  limit: number,
  clock: () => string,
  seen: Set<string>,
  deadlineMs: number,
): Promise<PageResult & { readonly continuations: Extract<FanOutMessage, { type: "RANGE" }>[] }> {
  const share = Math.max(1, Math.ceil(limit / Math.max(1, messages.length)));
  const pages = await Promise.all(
    messages.map((message) =>
      crossedAccounts(deps, message.line, dec(message.low), dec(message.high), share, message.startKey),
    ),
  );
  const longest = Math.max(0, ...pages.map((page) => page.accountIds.length));
  const inTurn: string[] = [];
  for (let index = 0; index < longest; index += 1) {
    for (const page of pages) {
      const accountId = page.accountIds[index];
      if (accountId !== undefined) inTurn.push(accountId);
    }
  }
  const eventId = messages[0]?.eventId ?? "";
  const event = { type: "REVALUE", cause: "PRICE_TICK", eventId } as const;
  const { outcomes, leftover } = await revalueWithin(deps, unseen(inTurn, seen), event, clock, deadlineMs);
  const continuations = messages.flatMap((message, index) => {
    const lastKey = pages[index]?.lastKey;
    return lastKey ? [{ ...message, startKey: lastKey }] : [];
  });
  return {
    outcomes,
    read: pages.reduce((total, page) => total + page.scanned, 0),
    continuation: undefined,
    leftover,
    continuations,
  };
}

/** The most due calls a sweep run reads: past this, the oldest are taken and the rest wait for later runs. */
export const MAX_DUE_READ = 50_000;

/**
 * Calls whose next reminder, deadline or liquidation retry is due, from the sparse byDeadline index, at
 * most `limit` of them, taken fairly. A call that cannot act now (a deposit in flight pauses its deadline,
 * its prices are halted) stays due, with an old `deadlineAt`: taking the oldest first would take the same
 * ones every run and starve the rest. So every due call is read (up to MAX_DUE_READ), ordered by
 * (`deadlineAt`, `accountId`), and each run takes the next `limit` of them, turning with the sweep's minute:
 * while the same D calls are due, each one is taken at least once every ceil(D / limit) runs.
 */
export async function dueCalls(
  deps: EngineDeps,
  clock: () => string,
  limit: number,
): Promise<{ accountIds: string[]; complete: boolean; due: number }> {
  const now = clock();
  const due: { accountId: string; deadlineAt: string }[] = [];
  for (let shard = 0; shard < deps.openCallShards && due.length < MAX_DUE_READ; shard += 1) {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await deps.dynamo.send(
        new QueryCommand({
          TableName: deps.tables.marginCalls,
          IndexName: "byDeadline",
          KeyConditionExpression: "openCallShard = :shard AND deadlineAt <= :now",
          ExpressionAttributeValues: { ":shard": { S: String(shard) }, ":now": { S: now } },
          ProjectionExpression: "accountId, deadlineAt",
          Limit: MAX_DUE_READ - due.length,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        const { accountId, deadlineAt } = fromImage(item);
        due.push({ accountId: String(accountId), deadlineAt: String(deadlineAt) });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey && due.length < MAX_DUE_READ);
  }
  due.sort((a, b) =>
    a.deadlineAt < b.deadlineAt ? -1 : a.deadlineAt > b.deadlineAt ? 1 : a.accountId < b.accountId ? -1 : 1,
  );
  if (due.length <= limit) {
    return {
      accountIds: due.map((call) => call.accountId),
      complete: due.length < MAX_DUE_READ,
      due: due.length,
    };
  }
  const turn = Math.floor(Date.parse(now) / 60_000);
  const start = (turn * limit) % due.length;
  const accountIds = Array.from(
    { length: limit },
    (_, index) => due[(start + index) % due.length]?.accountId ?? "",
  );
  return { accountIds, complete: false, due: due.length };
}
