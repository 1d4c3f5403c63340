/**
 * One DynamoDB stream event source mapping, run locally with Lambda's semantics as the template sets
 * them: batch size, filters, starting position, partial batch responses (ReportBatchItemFailures),
 * BisectBatchOnFunctionError, MaximumRetryAttempts, MaximumRecordAgeInSeconds and the on-failure
 * destination, which receives Lambda's own invocation record for every batch it gives up on.
 *
 * The checkpoint of a shard only moves past records that succeeded or were given up on, as in Lambda:
 * a failed record is retried (with the records after it) until it succeeds or runs out of retries.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
 */
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import type { LocalMapping } from "./deployment.ts";
import { compileFilters } from "./event-filter.ts";
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
}

interface ShardProgress {
  /** Failed attempts of the batch at the head of the shard. */
  attempts: number;
  /** The batch size to use next: halved by bisection after a function error. */
  nextBatchSize: number;
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
  };
  private readonly filter: (event: unknown) => boolean;
  private readonly progress = new Map<string, ShardProgress>();

  constructor(
    readonly mapping: LocalMapping,
    readonly reader: StreamReader,
    private readonly handler: StreamHandler,
    private readonly onFailure: (record: StreamFailureRecord) => Promise<void>,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.filter = compileFilters(mapping.filterPatterns);
  }

  private progressOf(shardId: string): ShardProgress {
    let progress = this.progress.get(shardId);
    if (!progress) {
      progress = { attempts: 0, nextBatchSize: this.mapping.batchSize };
      this.progress.set(shardId, progress);
    }
    return progress;
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

  /** Drops filtered-out and expired records at the head of a shard. Returns false if nothing is left. */
  private async skipHead(shardId: string): Promise<boolean> {
    for (;;) {
      const [head] = this.reader.peek(shardId, 1);
      if (!head) return false;
      if (!this.filter(head)) {
        this.reader.commit(shardId, 1);
        this.stats.recordsFiltered += 1;
        continue;
      }
      const maxAge = this.mapping.maximumRecordAgeSeconds;
      const created = (head.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000;
      if (maxAge >= 0 && this.nowMs() - created > maxAge * 1000) {
        this.reader.commit(shardId, 1);
        await this.discard(shardId, [head], "EventAgeExceeded", 0);
        continue;
      }
      return true;
    }
  }

  /** The next batch at the head of a shard: consecutive records that pass the filter. */
  private batchAt(shardId: string, size: number): { records: DynamoDBRecord[]; span: number } {
    const window = this.reader.peek(shardId, Number.MAX_SAFE_INTEGER);
    const records: DynamoDBRecord[] = [];
    let span = 0;
    for (const record of window) {
      if (records.length >= size) break;
      span += 1;
      if (this.filter(record)) records.push(record);
    }
    return { records, span };
  }

  /**
   * Delivers one batch per shard that has records, as Lambda would on one poll.
   * @returns the number of invocations made
   */
  async pollOnce(): Promise<number> {
    await this.reader.fetch();
    let invocations = 0;
    for (const shardId of this.reader.pendingShards()) {
      if (!(await this.skipHead(shardId))) continue;
      const progress = this.progressOf(shardId);
      const { records, span } = this.batchAt(shardId, progress.nextBatchSize);
      if (records.length === 0) continue;
      invocations += 1;
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
      if (failedFrom === undefined) {
        this.reader.commit(shardId, span);
        progress.attempts = 0;
        progress.nextBatchSize = this.mapping.batchSize;
        continue;
      }
      // Records before the first failure succeeded: the checkpoint moves past them.
      const succeeded = records.slice(0, failedFrom);
      if (succeeded.length > 0) {
        const lastOk = succeeded[succeeded.length - 1];
        const window = this.reader.peek(shardId, span);
        this.reader.commit(shardId, window.indexOf(lastOk as DynamoDBRecord) + 1);
        progress.attempts = 0;
      }
      const remaining = records.slice(failedFrom);
      if (functionError && this.mapping.bisectBatchOnFunctionError && remaining.length > 1) {
        // Bisection does not count as a retry.
        progress.nextBatchSize = Math.ceil(remaining.length / 2);
        continue;
      }
      progress.attempts += 1;
      const retries = this.mapping.maximumRetryAttempts;
      if (retries >= 0 && progress.attempts > retries) {
        const window = this.reader.peek(shardId, Number.MAX_SAFE_INTEGER);
        const lastIndex = window.indexOf(remaining[remaining.length - 1] as DynamoDBRecord);
        this.reader.commit(shardId, lastIndex + 1);
        await this.discard(shardId, remaining, "RetryAttemptsExhausted", progress.attempts);
        progress.attempts = 0;
        progress.nextBatchSize = this.mapping.batchSize;
      }
    }
    return invocations;
  }

  /** Records fetched but not yet delivered or given up on. */
  backlog(): number {
    return this.reader.buffered();
  }
}
