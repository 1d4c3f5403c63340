/**
 * One sweep pass at a time, on AWS too. A pass is one parallel scan of the Accounts table, split into
 * segments that the fan-out worker pages through. Its record (one item in the TriggerIndex table, beside the
 * price-range cursors) says which pass is running, how many segments it has and how many have finished.
 * The sweep starts a pass only when the previous one finished, or has made no progress for longer than it
 * may (a segment lost to the dead-letter queue, say): then the new pass supersedes it, and the old pass's
 * pages stop at their next continuation. A long pass that keeps paging is never superseded. So segments never pile up, however long a pass takes against the schedule.
 * The number of segments follows the table's size (docs/pipeline.md, section 8).
 */
import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { fromImage, toItem } from "./codec.ts";
import type { EngineDeps } from "./engine.ts";

const PASS_KEY = { line: { S: "SWEEP#PASS" }, triggerKey: { S: "CURRENT" } };

/** Items one segment of a pass covers, about: a worker page is up to 1 MB, a few thousand items. */
export const ITEMS_PER_SEGMENT = 20_000;
/**
 * At most this many segments: the fan-out worker's maximum concurrency (lib/handler-table.ts). More would
 * not page faster, and would queue ahead of a tick's continuations on the shared fan-out queue.
 */
export const MAX_SEGMENTS = 10;

export interface SweepPass {
  readonly passId: string;
  readonly startedAt: string;
  /** When a page of the pass last ran: a pass is stale when it stops making progress, not when it is long. */
  readonly lastPageAt: string;
  readonly segments: number;
  /** Segments finished: a set of segment numbers, so a page delivered twice counts once. */
  readonly done: number;
}

/** Segments for a table of `itemCount` items (DynamoDB's estimate, refreshed about every six hours). */
export function segmentsFor(itemCount: number, minimum: number): number {
  return Math.min(MAX_SEGMENTS, Math.max(minimum, Math.ceil(itemCount / ITEMS_PER_SEGMENT)));
}

export async function accountItemCount(deps: Pick<EngineDeps, "dynamo" | "tables">): Promise<number> {
  const table = await deps.dynamo.send(new DescribeTableCommand({ TableName: deps.tables.accounts }));
  return table.Table?.ItemCount ?? 0;
}

const passOf = (item: Record<string, unknown>): SweepPass => ({
  passId: String(item.passId),
  startedAt: String(item.startedAt),
  lastPageAt: String(item.lastPageAt ?? item.startedAt),
  segments: Number(item.segmentCount),
  done: item.finished instanceof Set ? item.finished.size : 0,
});

/**
 * Starts pass `passId` unless another is running and made progress within `staleAfterSeconds`. Returns the
 * pass started, or the one still running. A retried sweep finds its own pass and queues it again (a
 * segment queued twice is harmless: the finished set counts it once, and pages are idempotent).
 */
export async function startPass(
  deps: Pick<EngineDeps, "dynamo" | "tables">,
  pass: { readonly passId: string; readonly segments: number; readonly now: string },
  staleAfterSeconds: number,
): Promise<{ readonly started: boolean; readonly pass: SweepPass }> {
  const staleBefore = new Date(Date.parse(pass.now) - staleAfterSeconds * 1000).toISOString();
  try {
    await deps.dynamo.send(
      new UpdateItemCommand({
        TableName: deps.tables.triggerIndex,
        Key: PASS_KEY,
        UpdateExpression:
          "SET passId = :id, startedAt = :now, lastPageAt = :now, segmentCount = :segments REMOVE finished",
        ConditionExpression:
          "attribute_not_exists(passId) OR size(finished) >= segmentCount OR lastPageAt < :staleBefore",
        ExpressionAttributeValues: toItem({
          ":id": pass.passId,
          ":now": pass.now,
          ":segments": pass.segments,
          ":staleBefore": staleBefore,
        }),
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { started: true, pass: { ...pass, startedAt: pass.now, lastPageAt: pass.now, done: 0 } };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException) || !error.Item) throw error;
    const running = passOf(fromImage(error.Item));
    return { started: running.passId === pass.passId, pass: running };
  }
}

/**
 * A page of `passId` is about to run: records the progress, or says the pass was superseded (false), in
 * one conditional write.
 */
export async function pageStarting(
  deps: Pick<EngineDeps, "dynamo" | "tables">,
  passId: string,
  now: string,
): Promise<boolean> {
  try {
    await deps.dynamo.send(
      new UpdateItemCommand({
        TableName: deps.tables.triggerIndex,
        Key: PASS_KEY,
        UpdateExpression: "SET lastPageAt = :now",
        ConditionExpression: "passId = :id",
        ExpressionAttributeValues: { ":now": { S: now }, ":id": { S: passId } },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Records segment `segment` of `passId` finished; false when a newer pass has superseded it. */
export async function segmentDone(
  deps: Pick<EngineDeps, "dynamo" | "tables">,
  passId: string,
  segment: number,
): Promise<boolean> {
  try {
    await deps.dynamo.send(
      new UpdateItemCommand({
        TableName: deps.tables.triggerIndex,
        Key: PASS_KEY,
        UpdateExpression: "ADD finished :segment",
        ConditionExpression: "passId = :id",
        ExpressionAttributeValues: { ":segment": { NS: [String(segment)] }, ":id": { S: passId } },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
