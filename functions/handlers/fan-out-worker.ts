/**
 * The fan-out worker: consumes the fan-out queue. Each message is one page of a tick's range or of a sweep
 * segment; a page that does not finish its range sends its continuation back to the queue.
 */
import { EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { processSweepPage } from "../adapters/bulk-revalue.ts";
import {
  enqueue,
  fanOutMessageSchema,
  type PageResult,
  processAccountsPage,
  processRangePage,
} from "../adapters/fan-out.ts";
import { pageStarting, segmentDone } from "../adapters/sweep-pass.ts";
import { ReportingBatchProcessor } from "./batch.ts";
import { logOutcomes } from "./outcomes.ts";
import { pageDeadline, type Runtime, runtimeWithPolicies } from "./runtime.ts";

async function handleRecord(engine: Runtime, record: SQSRecord, deadlineMs: number): Promise<void> {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    // The engine writes every message itself: a message it cannot read is a bug, kept for an operator.
    throw new Error(`fan-out message ${record.messageId} is not JSON`);
  }
  const message = fanOutMessageSchema.parse(body);
  if (message.type === "SWEEP_SEGMENT" && message.passId) {
    if (!(await pageStarting(engine, message.passId, engine.now()))) {
      engine.logger.info("sweep segment superseded by a newer pass", { passId: message.passId });
      return;
    }
  }
  // A sweep page screens in bulk: `cleared` counts the accounts it settled without an exact revaluation.
  const page: PageResult & { readonly cleared?: number } =
    message.type === "RANGE"
      ? await processRangePage(
          engine,
          message,
          engine.maxAccountsPerInvocation,
          engine.now,
          new Set(),
          deadlineMs,
        )
      : message.type === "ACCOUNTS"
        ? await processAccountsPage(engine, message, engine.now, deadlineMs)
        : await processSweepPage(
            engine,
            message,
            engine.maxAccountsPerInvocation,
            engine.now,
            new Map(),
            deadlineMs,
          );
  logOutcomes(engine, page.outcomes);
  await enqueue(engine, page.leftover ?? []);
  if (page.continuation) await enqueue(engine, [page.continuation]);
  else if (message.type === "SWEEP_SEGMENT" && message.passId) {
    await segmentDone(engine, message.passId, message.segment);
  }
  engine.logger.info("fan-out page", {
    type: message.type,
    revalued: page.outcomes.length,
    cleared: page.cleared ?? 0,
    read: page.read,
    continues: page.continuation !== undefined,
    leftover: (page.leftover ?? []).length,
  });
}

export async function handler(event: SQSEvent, context?: Context) {
  const engine = await runtimeWithPolicies();
  const deadlineMs = pageDeadline(engine, context);
  return processPartialResponse(
    event,
    (record: SQSRecord) => handleRecord(engine, record, deadlineMs),
    new ReportingBatchProcessor(EventType.SQS, engine.logger),
    {
      ...(context ? { context } : {}),
      processInParallel: false,
    },
  );
}
