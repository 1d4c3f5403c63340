/**
 * P4: a burst of N calls through the handler path, against the same N TransactWriteItems sent raw.
 *
 * N accounts on the asset BURST (policy.ts), breach lines spread over 1,001 … 1,040, are written and
 * indexed (AccountChanges) at 1,100. Timed: one price write of 1,000, then the PriceTicks stream mapping
 * and the FanOutWorker queue mapping (which takes the continuations of the tick's range) polled in turn
 * until neither has anything to deliver; every account must have become CALLED. The reference: the N
 * TransactWriteItems the handlers committed (captured at the proxy) sent one after another to a database
 * of their own, as the handlers send them: one account at a time.
 */
import { TransactWriteItemsCommand } from "@aws-sdk/client-dynamodb";
import { writeAccounts } from "../../functions/local/demo/book.ts";
import { type Figure, ratioGoal } from "../figures.ts";
import { asFirstStep } from "./first-step.ts";
import { type Pipeline, putPrice } from "./harness.ts";
import { BURST_ASSET, loanAccount } from "./policy.ts";
import type { Captured } from "./proxy.ts";
import { elapsedMs, HeapTracker } from "./stats.ts";

export interface BurstResult {
  readonly figures: Figure[];
  /** Peak heap per handler, for the memory figures. */
  readonly heap: Record<string, HeapTracker>;
}

const accountOf = (index: number) => `BST-${String(index).padStart(6, "0")}`;

async function drain(mapping: { pollOnce(): Promise<number> }, tracker: HeapTracker): Promise<number> {
  let total = 0;
  for (
    let invocations = await tracker.poll(mapping);
    invocations > 0;
    invocations = await tracker.poll(mapping)
  )
    total += invocations;
  return total;
}

/** Writes and indexes the burst's accounts: AccountChanges under the heap tracker. */
export async function seedBurst(pipeline: Pipeline, size: number): Promise<HeapTracker> {
  await putPrice(pipeline.bench, BURST_ASSET, "1100.00");
  const accounts = Array.from({ length: size }, (_, index) =>
    loanAccount(accountOf(index), BURST_ASSET, 1001 + (39 * index) / size),
  );
  await writeAccounts(pipeline.bench, "Accounts", accounts);
  const tracker = new HeapTracker(() => pipeline.proxy.accountReads);
  await drain(pipeline.stream("PriceTicks"), new HeapTracker());
  await drain(pipeline.stream("AccountChanges"), tracker);
  return tracker;
}

async function handlerPath(pipeline: Pipeline, ticks: HeapTracker, fanOut: HeapTracker, captured: string[]) {
  const capture = (request: Captured) => {
    if (request.source === "engine" && request.operation === "TransactWriteItems")
      captured.push(request.body);
  };
  pipeline.proxy.capture = capture;
  try {
    const start = process.hrtime.bigint();
    await putPrice(pipeline.bench, BURST_ASSET, "1000.00");
    for (;;) {
      const delivered =
        (await drain(pipeline.stream("PriceTicks"), ticks)) +
        (await drain(pipeline.queue("FanOutWorker"), fanOut));
      if (delivered === 0) break;
    }
    return elapsedMs(start);
  } finally {
    pipeline.proxy.capture = undefined;
  }
}

export async function burst(pipeline: Pipeline, size: number): Promise<BurstResult> {
  const seeding = await seedBurst(pipeline, size);
  const ticks = new HeapTracker(() => pipeline.proxy.accountReads);
  const fanOut = new HeapTracker(() => pipeline.proxy.accountReads);
  const captured: string[] = [];
  const handlerMs = await handlerPath(pipeline, ticks, fanOut, captured);
  const called = new Set(captured.flatMap((body) => body.match(/BST-\d{6}/g) ?? []));
  if (captured.length !== size || called.size !== size) {
    throw new Error(`the burst made ${captured.length} transactions for ${called.size} of ${size} accounts`);
  }
  const raw = await pipeline.scratch("raw");
  const start = process.hrtime.bigint();
  for (const body of captured) await raw.dynamodb.send(new TransactWriteItemsCommand(asFirstStep(body)));
  const rawMs = elapsedMs(start);
  return {
    figures: [
      ratioGoal(
        {
          id: "P4 burst",
          benchmark: `a burst of ${size.toLocaleString("en-US")} calls (one tick)`,
          unit: "ms",
          measured: handlerMs,
          reference: rawMs,
          referenceLabel: `${size.toLocaleString("en-US")} raw TransactWriteItems of the same items, one at a time`,
          notes: `${Math.round((size / handlerMs) * 1000)} calls/s through the handlers`,
        },
        1.3,
      ),
    ],
    heap: { AccountChanges: seeding, PriceTicks: ticks, FanOutWorker: fanOut },
  };
}
