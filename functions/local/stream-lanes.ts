/**
 * A mapping's ParallelizationFactor on one shard: up to that many lanes, each delivering one batch at a
 * time, with Lambda's guarantee for DynamoDB streams: "When you increase the number of concurrent batches
 * per shard, Lambda still ensures in-order processing at the item (partition and sort key) level"
 * (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html). Records of one item are never in two
 * lanes at once, so never processed concurrently or out of order; records of different items may be.
 *
 * Records are handed out from the front of the shard, in stream order. A record whose item has records
 * still pending in a lane joins that lane. Any other record goes to the lane asking for work, until that
 * lane holds a full batch; then handing out stops at it, so what is handed out is always a prefix of the
 * shard and the next record of an item can only ever follow the ones handed out before it. Batches are
 * thus filled before a second lane gets work: a backlog smaller than one batch is one batch, as at factor 1.
 *
 * With one lane this is exactly the sequential mapping: the lane's queue is the shard's buffer.
 *
 * A lane retries its own head batch (partial batch responses, bisection, retries) while the other lanes go
 * on, and the shard's checkpoint only moves past records that are done, whichever lane had them.
 */
import type { DynamoDBRecord } from "aws-lambda";
import type { StreamReader } from "./streams.ts";

/** The item a stream record is about: its key attributes (partition and sort key), in a stable form. */
export function itemKeyOf(record: DynamoDBRecord): string {
  const keys = (record.dynamodb?.Keys ?? {}) as Record<string, unknown>;
  return JSON.stringify(
    Object.keys(keys)
      .sort()
      .map((name) => [name, keys[name]]),
  );
}

/** One of a shard's concurrent batch slots. */
export interface Lane {
  /** Records handed to this lane and not done yet, in stream order; its batches are taken from the front. */
  readonly queue: DynamoDBRecord[];
  /** A batch of this lane is being delivered (or being formed). */
  busy: boolean;
  /** Failed attempts of the batch at the head of the lane. */
  attempts: number;
  /** The batch size to use next: halved by bisection after a function error. */
  nextBatchSize: number;
}

export class ShardLanes {
  readonly lanes: readonly Lane[];
  /** The lane that has records of an item pending, and how many. */
  private readonly owners = new Map<string, { readonly lane: Lane; pending: number }>();
  /** Records at the front of the shard's buffer already handed to a lane or done. */
  private handedOut = 0;
  /** Records done (delivered, filtered out or given up on) that the checkpoint has not passed yet. */
  private readonly done = new Set<DynamoDBRecord>();
  /** The reader's generation these lanes belong to: after a rewind they commit nothing. */
  private readonly generation: number;

  constructor(
    readonly shardId: string,
    private readonly reader: StreamReader,
    parallelizationFactor: number,
    private readonly batchSize: number,
  ) {
    this.generation = reader.generation;
    this.lanes = Array.from({ length: Math.max(1, parallelizationFactor) }, () => ({
      queue: [],
      busy: false,
      attempts: 0,
      nextBatchSize: batchSize,
    }));
  }

  /** Whether these lanes still read the reader's current buffers (no rewind since they were made). */
  get current(): boolean {
    return this.reader.generation === this.generation;
  }

  /**
   * Hands out records from the front of the shard: each to the lane that has its item pending, or to
   * `lane` while it holds less than a batch. Records the filter drops are done at once.
   * @returns the number of records filtered out
   */
  fill(lane: Lane, passes: (record: DynamoDBRecord) => boolean): number {
    if (!this.current) return 0;
    const buffer = this.reader.records(this.shardId);
    let filtered = 0;
    while (this.handedOut < buffer.length) {
      const record = buffer[this.handedOut] as DynamoDBRecord;
      if (!passes(record)) {
        this.done.add(record);
        filtered += 1;
      } else {
        const key = itemKeyOf(record);
        const owner = this.owners.get(key);
        if (owner) {
          owner.lane.queue.push(record);
          owner.pending += 1;
        } else if (lane.queue.length < this.batchSize) {
          lane.queue.push(record);
          this.owners.set(key, { lane, pending: 1 });
        } else {
          break;
        }
      }
      this.handedOut += 1;
    }
    if (filtered > 0) this.checkpoint();
    return filtered;
  }

  /** The first `count` records of a lane are done: they leave it, and the checkpoint moves as far as it can. */
  complete(lane: Lane, count: number): void {
    if (!this.current) return;
    for (const record of lane.queue.splice(0, count)) {
      this.done.add(record);
      const key = itemKeyOf(record);
      const owner = this.owners.get(key);
      if (owner) {
        owner.pending -= 1;
        if (owner.pending === 0) this.owners.delete(key);
      }
    }
    this.checkpoint();
  }

  /** Commits the records at the front of the shard that are done. */
  private checkpoint(): void {
    const buffer = this.reader.records(this.shardId);
    let count = 0;
    while (count < buffer.length && this.done.has(buffer[count] as DynamoDBRecord)) {
      this.done.delete(buffer[count] as DynamoDBRecord);
      count += 1;
    }
    if (count === 0) return;
    this.reader.commit(this.shardId, count);
    this.handedOut -= count;
  }

  /** Records done but still buffered behind one that is not: the shard's backlog does not count them. */
  doneAhead(): number {
    return this.current ? this.done.size : 0;
  }
}
