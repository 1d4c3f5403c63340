/**
 * Handler 3: the scheduled sweep, the safety net. Every run (once a minute by default):
 *  1. starts, when the last pass finished, a parallel segmented scan of every account: one fan-out message
 *     per segment, each of which screens its accounts page by page in bulk and revalues (and re-indexes)
 *     every account the float screen cannot clear (adapters/bulk-revalue.ts). This catches what no tick
 *     announced: prices that went stale, a missed or crossed trigger entry, a policy change;
 *  2. revalues the calls whose reminder, deadline or liquidation retry is due, found in the sparse
 *     byDeadline index, so escalation never waits for a price tick; each on its own, after the pass is
 *     queued, so no account can stop the others or the pass.
 */
import type { Context, ScheduledEvent } from "aws-lambda";
import { revalueIsolated } from "../adapters/engine.ts";
import { dueCalls, enqueue, type FanOutMessage, revalueWithin } from "../adapters/fan-out.ts";
import { parkedAccounts, unpark } from "../adapters/parked.ts";
import { accountItemCount, segmentsFor, startPass } from "../adapters/sweep-pass.ts";
import { logOutcome, logOutcomes } from "./outcomes.ts";
import { pageDeadline, runtimeWithPolicies } from "./runtime.ts";

/** A pass with no page for this long is superseded by the next sweep: a lost segment cannot stop the net. */
export const SWEEP_PASS_STALE_SECONDS = 600;
/** Parked accounts retried per sweep run (a minute apart): each is retried within ceil(parked / this) runs. */
export const PARKED_RETRIES_PER_RUN = 50;

export interface SweepResult {
  readonly dueRevalued: number;
  /** Due calls not started within the invocation's time: queued to the fan-out worker. */
  readonly dueQueued: number;
  readonly dueComplete: boolean;
  readonly segmentsQueued: number;
  readonly transitions: number;
}

export async function handler(event: ScheduledEvent, context?: Context): Promise<SweepResult> {
  const engine = await runtimeWithPolicies();
  const now = engine.now();
  const eventId = `sweep:${event.time ?? now}:${event.id ?? ""}`;
  // The pass first: nothing the due calls do, for any account, can keep the whole-book pass from starting.
  // One pass at a time: a new one only when the last finished (or made no progress for SWEEP_PASS_STALE_SECONDS).
  const totalSegments = segmentsFor(await accountItemCount(engine), engine.sweepSegments);
  const { started, pass } = await startPass(
    engine,
    { passId: eventId, segments: totalSegments, now },
    SWEEP_PASS_STALE_SECONDS,
  );
  const segments: FanOutMessage[] = started
    ? Array.from({ length: totalSegments }, (_, segment) => ({
        type: "SWEEP_SEGMENT",
        segment,
        totalSegments,
        eventId,
        passId: pass.passId,
      }))
    : [];
  await enqueue(engine, segments);
  if (!started) engine.logger.info("sweep pass still running", { ...pass });
  // The due calls within the invocation's time, REVALUE_CONCURRENCY at once: those not started in time go
  // to the fan-out queue as ACCOUNTS pages (revalued there, as a tick's leftovers are), so a backlog of due
  // calls can never run the sweep into its timeout and lose the run.
  const deadlineMs = pageDeadline(engine, context);
  const due = await dueCalls(engine, engine.now, engine.maxAccountsPerInvocation);
  const sweepEvent = { type: "REVALUE", cause: "SWEEP", eventId } as const;
  const { outcomes, leftover } = await revalueWithin(
    engine,
    due.accountIds,
    sweepEvent,
    engine.now,
    deadlineMs,
  );
  await enqueue(engine, leftover);
  logOutcomes(engine, outcomes);
  let transitions = outcomes.filter((outcome) => outcome.kind === "TRANSITIONED").length;
  // The parked accounts, the longest waiting first, while time is left: one valued again leaves the list;
  // one still not is parked again, at the back.
  const parked =
    Date.now() < deadlineMs ? await parkedAccounts(engine, engine.now(), PARKED_RETRIES_PER_RUN) : [];
  let unparked = 0;
  for (const account of parked) {
    if (Date.now() >= deadlineMs) break;
    const outcome = await revalueIsolated(engine, account.accountId, sweepEvent, engine.now);
    logOutcome(engine, outcome);
    if (outcome.kind === "TRANSITIONED") transitions += 1;
    if (outcome.kind !== "SKIPPED" && (await unpark(engine, account))) unparked += 1;
  }
  const result = {
    parkedRetried: parked.length,
    unparked,
    dueRevalued: outcomes.length,
    dueQueued: due.accountIds.length - outcomes.length,
    dueComplete: due.complete,
    segmentsQueued: segments.length,
    transitions,
  };
  engine.logger.info("sweep", { ...result });
  return result;
}
