/**
 * One DynamoDB stream event source mapping, run locally with Lambda's semantics as the template sets
 * them: batch size, filters, starting position, partial batch responses (ReportBatchItemFailures),
 * BisectBatchOnFunctionError, MaximumRetryAttempts, MaximumRecordAgeInSeconds and the on-failure
 * destination, which receives Lambda's own invocation record for every batch it gives up on.
 *
 * The checkpoint of a shard only moves past records that succeeded or were given up on, as in Lambda:
 * a failed record is retried (with the records after it) until it succeeds or runs out of retries.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
 *
 * Every shard with records gets its batches at each poll, and its ParallelizationFactor is emulated: up to
 * that many batches of a shard run at once, never two with records of the same item (stream-lanes.ts).
 */
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import type { LocalMapping } from "./deployment.ts";
import { compileFilters } from "./event-filter.ts";
import { type Lane, ShardLanes } from "./stream-lanes.ts";
import type { StreamReader } from "./streams.ts";

export type StreamHandler = (
  event: DynamoDBStreamEvent,
) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] } | undefined | undefined>;

/** What Lambda sends to an on-failure destination for a stream batch it discards. */
export interface StreamFailureRecord {
  readonly requestContext: {
    readonly requestId: string;
    readonly functionArn: string;
    readonly condition: "RetryAttemptsExhausted" | "EventAgeExceeded";
    readonly approximateInvokeCount: number;
  };
  readonly responseContext: { readonly statusCode: number; readonly functionError?: string };
  readonly version: "1.0";
  readonly timestamp: string;
  readonly DDBStreamBatchInfo: {
    readonly shardId: string;
    readonly startSequenceNumber: string;
    readonly endSequenceNumber: string;
    readonly approximateArrivalOfFirstRecord: string;
    readonly approximateArrivalOfLastRecord: string;
    readonly batchSize: number;
    readonly streamArn: string;
  };
}

export interface MappingStats {
  invocations: number;
  functionErrors: number;
  partialFailures: number;
  recordsDelivered: number;
  recordsFiltered: number;
  recordsDiscarded: number;
  /** Seconds between a record's creation and its first delivery, for the lag display. */
  lastLagSeconds: number;
  /** The most batches this mapping has had in flight at once, over all shards. */
  peakConcurrency: number;
}

export class StreamMapping {
  readonly stats: MappingStats = {
    invocations: 0,
    functionErrors: 0,
    partialFailures: 0,
    recordsDelivered: 0,
    recordsFiltered: 0,
    recordsDiscarded: 0,
    lastLagSeconds: 0,
    peakConcurrency: 0,
  };
  private readonly filter: (event: unknown) => boolean;
  private shards = new Map<string, ShardLanes>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Called when a batch ends: a poll loop waiting for a lane to free up. */
  private readonly waiters = new Set<() => void>();
  /** A failure of the mapping itself (not of the function) in a batch that ran on its own: the next poll throws it. */
  private failure: { error: unknown } | undefined;

  constructor(
    readonly mapping: LocalMapping,
    readonly reader: StreamReader,
    private readonly handler: StreamHandler,
    private readonly onFailure: (record: StreamFailureRecord) => Promise<void>,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.filter = compileFilters(mapping.filterPatterns);
  }

  private lanesOf(shardId: string): ShardLanes {
    let lanes = this.shards.get(shardId);
    if (!lanes?.current) {
      lanes = new ShardLanes(
        shardId,
        this.reader,
        this.mapping.parallelizationFactor,
        this.mapping.batchSize,
      );
      this.shards.set(shardId, lanes);
    }
    return lanes;
  }

  private async discard(
    shardId: string,
    records: DynamoDBRecord[],
    condition: StreamFailureRecord["requestContext"]["condition"],
    invokeCount: number,
  ): Promise<void> {
    const first = records[0];
    const last = records[records.length - 1];
    if (!first || !last) return;
    const arrival = (record: DynamoDBRecord) =>
      new Date((record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000).toISOString();
    await this.onFailure({
      requestContext: {
        requestId: `${this.mapping.logicalId}:${first.dynamodb?.SequenceNumber}`,
        functionArn: this.mapping.functionLogicalId,
        condition,
        approximateInvokeCount: invokeCount,
      },
      responseContext: {
        statusCode: 200,
        ...(condition === "RetryAttemptsExhausted" ? { functionError: "Unhandled" } : {}),
      },
      version: "1.0",
      timestamp: new Date(this.nowMs()).toISOString(),
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: first.dynamodb?.SequenceNumber ?? "",
        endSequenceNumber: last.dynamodb?.SequenceNumber ?? "",
        approximateArrivalOfFirstRecord: arrival(first),
        approximateArrivalOfLastRecord: arrival(last),
        batchSize: records.length,
        streamArn: this.reader.streamArn,
      },
    });
    this.stats.recordsDiscarded += records.length;
  }

  /**
   * The next batch of a lane: records are handed to it from the shard, filtered-out ones dropped, and
   * records at its head older than the maximum record age go to the on-failure destination uninvoked.
   */
  private async nextBatch(shard: ShardLanes, lane: Lane): Promise<DynamoDBRecord[]> {
    for (;;) {
      this.stats.recordsFiltered += shard.fill(lane, this.filter);
      const [head] = lane.queue;
      if (!head) return [];
      const maxAge = this.mapping.maximumRecordAgeSeconds;
      const created = (head.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000;
      if (maxAge >= 0 && this.nowMs() - created > maxAge * 1000) {
        shard.complete(lane, 1);
        await this.discard(shard.shardId, [head], "EventAgeExceeded", 0);
        continue;
      }
      return lane.queue.slice(0, lane.nextBatchSize);
    }
  }

  /** Invokes the function with one batch of a lane and moves the lane on by what came back. */
  private async deliver(shard: ShardLanes, lane: Lane, records: DynamoDBRecord[]): Promise<void> {
    this.stats.invocations += 1;
    this.stats.recordsDelivered += records.length;
    const firstCreated = records[0]?.dynamodb?.ApproximateCreationDateTime ?? 0;
    this.stats.lastLagSeconds = Math.max(0, this.nowMs() / 1000 - firstCreated);
    let failedFrom: number | undefined;
    let functionError = false;
    try {
      const response = await this.handler({ Records: records });
      const failures = this.mapping.reportBatchItemFailures ? (response?.batchItemFailures ?? []) : [];
      if (failures.length > 0) {
        this.stats.partialFailures += 1;
        const failedSequences = new Set(failures.map((failure) => failure.itemIdentifier));
        const index = records.findIndex((record) =>
          failedSequences.has(record.dynamodb?.SequenceNumber ?? ""),
        );
        // An identifier that names no record of the batch fails the whole batch, as in Lambda.
        failedFrom = Math.max(index, 0);
      }
    } catch {
      functionError = true;
      this.stats.functionErrors += 1;
      failedFrom = 0;
    }
    // A rewind while the batch ran (a replaced function): the new mapping starts over, this one is gone.
    if (!shard.current) return;
    await this.settle(shard, lane, records, failedFrom, functionError);
  }

  /** After a batch: the checkpoint passes what succeeded; the rest is bisected, retried or given up on. */
  private async settle(
    shard: ShardLanes,
    lane: Lane,
    records: DynamoDBRecord[],
    failedFrom: number | undefined,
    functionError: boolean,
  ): Promise<void> {
    if (failedFrom === undefined) {
      shard.complete(lane, records.length);
      lane.attempts = 0;
      lane.nextBatchSize = this.mapping.batchSize;
      return;
    }
    // Records before the first failure succeeded: the checkpoint moves past them.
    if (failedFrom > 0) {
      shard.complete(lane, failedFrom);
      lane.attempts = 0;
    }
    const remaining = records.slice(failedFrom);
    if (functionError && this.mapping.bisectBatchOnFunctionError && remaining.length > 1) {
      // Bisection does not count as a retry.
      lane.nextBatchSize = Math.ceil(remaining.length / 2);
      return;
    }
    lane.attempts += 1;
    const retries = this.mapping.maximumRetryAttempts;
    if (retries >= 0 && lane.attempts > retries) {
      shard.complete(lane, remaining.length);
      await this.discard(shard.shardId, remaining, "RetryAttemptsExhausted", lane.attempts);
      lane.attempts = 0;
      lane.nextBatchSize = this.mapping.batchSize;
    }
  }

  /** Starts a batch on a lane, in the background; it frees the lane and wakes the poll loop when it ends. */
  private launch(shard: ShardLanes, lane: Lane, records: DynamoDBRecord[]): void {
    const run: Promise<void> = this.deliver(shard, lane, records)
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        lane.busy = false;
        this.inFlight.delete(run);
        for (const wake of this.waiters) wake();
      });
    this.inFlight.add(run);
    this.stats.peakConcurrency = Math.max(this.stats.peakConcurrency, this.inFlight.size);
  }

  /**
   * Fetches what is new and starts a batch on every free lane of every shard that has records for it:
   * each shard in order, up to the parallelization factor at once. Batches run in the background.
   * @returns the number of batches started
   */
  async poll(): Promise<number> {
    if (this.failure) {
      const { error } = this.failure;
      this.failure = undefined;
      throw error;
    }
    await this.reader.fetch();
    let started = 0;
    for (const shardId of this.reader.pendingShards()) {
      const shard = this.lanesOf(shardId);
      for (const lane of shard.lanes) {
        if (lane.busy) continue;
        lane.busy = true;
        const records = await this.nextBatch(shard, lane).catch((error: unknown) => {
          lane.busy = false;
          throw error;
        });
        if (records.length === 0) {
          lane.busy = false;
          continue;
        }
        this.launch(shard, lane, records);
        started += 1;
      }
    }
    return started;
  }

  /** Resolves when a batch in flight ends, or after `ms`, whichever is first. */
  async batchEnded(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waiters.add(wake);
    });
  }

  /**
   * One round, for tests that drive the mapping themselves: a poll, then every batch it started (and any
   * still in flight) ends before this returns.
   * @returns the number of batches delivered in the round: zero when there was nothing to deliver
   */
  async pollOnce(): Promise<number> {
    const started = await this.poll();
    const running = this.inFlight.size;
    await Promise.all(this.inFlight);
    if (this.failure) {
      const { error } = this.failure;
      this.failure = undefined;
      throw error;
    }
    return Math.max(started, running);
  }

  /** Batches being delivered now. */
  inFlightBatches(): number {
    return this.inFlight.size;
  }

  /** Records fetched but not yet delivered or given up on. */
  backlog(): number {
    let ahead = 0;
    for (const shard of this.shards.values()) ahead += shard.doneAhead();
    return this.reader.buffered() - ahead;
  }
}
