/**
 * Reads a table's stream through the real DynamoDB Streams API (of DynamoDB Local) and turns each record
 * into the exact shape Lambda gives a handler (`DynamoDBRecord` of aws-lambda): `eventSourceARN` added,
 * `userIdentity` in Lambda's lower-case spelling, `ApproximateCreationDateTime` in epoch seconds.
 *
 * Records are buffered per shard and only dropped when the caller commits them, so a caller can retry a
 * batch from any record, as Lambda's event source mapping does with its checkpoint.
 *
 * The shards are described once and then followed with their iterators: DescribeStream runs again only
 * when a shard closes (to find its children) or on a slow timer (new shards of a rolled-over stream).
 */
import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamApiRecord,
  TrimmedDataAccessException,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBRecord } from "aws-lambda";

export type StartingPosition = "TRIM_HORIZON" | "LATEST";

/** How often to look for new shards while one is open (a shard closes before it has children). */
const RESCAN_OPEN_MS = 10_000;
/** ...and while none is open, or a closed one has no child listed yet. */
const RESCAN_CLOSED_MS = 200;

interface ShardState {
  readonly shardId: string;
  readonly parentShardId: string | undefined;
  iterator: string | undefined;
  /** The shard is closed and everything in it has been fetched. */
  exhausted: boolean;
  started: boolean;
  lastSequenceNumber: string | undefined;
  readonly buffer: DynamoDBRecord[];
}

export async function streamArnOf(dynamodb: DynamoDBClient, tableName: string): Promise<string> {
  const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
  const arn = Table?.LatestStreamArn;
  if (!arn) throw new Error(`table ${tableName} has no stream`);
  return arn;
}

/** The Lambda event-record form of a Streams API record. */
export function toLambdaRecord(record: StreamApiRecord, streamArn: string): DynamoDBRecord {
  const data = record.dynamodb ?? {};
  const created = data.ApproximateCreationDateTime;
  const lambdaRecord: DynamoDBRecord = {
    eventID: record.eventID ?? "",
    eventName: record.eventName as DynamoDBRecord["eventName"],
    eventVersion: record.eventVersion ?? "1.1",
    eventSource: record.eventSource ?? "aws:dynamodb",
    awsRegion: record.awsRegion ?? "us-east-1",
    eventSourceARN: streamArn,
    dynamodb: {
      ...(created ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
      Keys: data.Keys as never,
      ...(data.NewImage ? { NewImage: data.NewImage as never } : {}),
      ...(data.OldImage ? { OldImage: data.OldImage as never } : {}),
      ...(data.SequenceNumber ? { SequenceNumber: data.SequenceNumber } : {}),
      ...(data.SizeBytes !== undefined ? { SizeBytes: data.SizeBytes } : {}),
      ...(data.StreamViewType ? { StreamViewType: data.StreamViewType } : {}),
    },
  };
  if (record.userIdentity) {
    lambdaRecord.userIdentity = {
      type: record.userIdentity.Type ?? "",
      principalId: record.userIdentity.PrincipalId ?? "",
    };
  }
  return lambdaRecord;
}

export class StreamReader {
  private readonly shards = new Map<string, ShardState>();
  /** When the shards were last described, and whether one has closed since. */
  private describedAtMs = Number.NEGATIVE_INFINITY;
  private shardClosed = false;

  constructor(
    private readonly streams: DynamoDBStreamsClient,
    readonly streamArn: string,
    private startingPosition: StartingPosition,
  ) {}

  private async describeShards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const { StreamDescription } = await this.streams.send(
        new DescribeStreamCommand({ StreamArn: this.streamArn, ExclusiveStartShardId: start }),
      );
      shards.push(...(StreamDescription?.Shards ?? []));
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  /**
   * Whether to describe the stream again: at the first fetch, once a shard has closed (its children are
   * new shards), and otherwise on a slow timer, or a quicker one while no shard is open or a closed one
   * has no child listed yet.
   */
  private dueForDescribe(): boolean {
    if (this.shardClosed) return true;
    const shards = [...this.shards.values()];
    const open = shards.some((shard) => !shard.exhausted);
    const childless = shards.some(
      (shard) => shard.exhausted && !shards.some((child) => child.parentShardId === shard.shardId),
    );
    const interval = open && !childless ? RESCAN_OPEN_MS : RESCAN_CLOSED_MS;
    return Date.now() - this.describedAtMs >= interval;
  }

  /** Adds the shards the stream has and this reader does not follow yet. */
  private async refreshShards(): Promise<void> {
    this.shardClosed = false;
    this.describedAtMs = Date.now();
    for (const shard of await this.describeShards()) {
      if (!shard.ShardId || this.shards.has(shard.ShardId)) continue;
      this.shards.set(shard.ShardId, {
        shardId: shard.ShardId,
        parentShardId: shard.ParentShardId,
        iterator: undefined,
        exhausted: false,
        started: false,
        lastSequenceNumber: undefined,
        buffer: [],
      });
    }
  }

  private async iteratorFor(shard: ShardState, initial: boolean): Promise<string | undefined> {
    const after = shard.lastSequenceNumber;
    const { ShardIterator } = await this.streams.send(
      new GetShardIteratorCommand({
        StreamArn: this.streamArn,
        ShardId: shard.shardId,
        ...(after
          ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: after }
          : { ShardIteratorType: initial ? this.startingPosition : "TRIM_HORIZON" }),
      }),
    );
    return ShardIterator;
  }

  /**
   * Fetches what is new in every shard into the buffers. A child shard is read only once its parent is
   * exhausted and drained, so records of one key stay in order across a shard split.
   * @returns the number of records fetched
   */
  async fetch(limitPerShard = 1000): Promise<number> {
    // One fetch at a time: two in flight on one iterator would read the same records twice.
    const run = this.fetching.then(() => this.fetchNow(limitPerShard));
    this.fetching = run.catch(() => undefined);
    return run;
  }

  private fetching: Promise<unknown> = Promise.resolve();
  /** Records fetched by the last fetch: zero means the stream was quiet. */
  lastFetched = 0;
  /** Counts the rewinds that took effect: buffers of an earlier generation are gone. */
  generation = 0;

  private rewindRequested = false;

  /**
   * Starts again from the starting position at the next fetch, as a new event source mapping would (a
   * replaced function's): whatever is buffered is dropped. It takes effect inside fetch and moves the
   * generation on, so a mapping commits nothing it was handling against the new buffers.
   */
  rewind(): void {
    this.rewindRequested = true;
  }

  /**
   * Starts again from the end of the stream at the next fetch: what is there now is never delivered. For a
   * soak that writes its book straight to the table and indexes it through the sweep, not this stream.
   */
  skipToLatest(): void {
    this.startingPosition = "LATEST";
    this.rewind();
  }

  private async fetchNow(limitPerShard: number): Promise<number> {
    if (this.rewindRequested) {
      this.rewindRequested = false;
      this.shards.clear();
      this.describedAtMs = Number.NEGATIVE_INFINITY;
      this.generation += 1;
    }
    const firstFetch = this.shards.size === 0;
    if (this.dueForDescribe()) await this.refreshShards();
    let fetched = 0;
    for (const state of this.shards.values()) {
      if (state.exhausted) continue;
      const parent = state.parentShardId ? this.shards.get(state.parentShardId) : undefined;
      if (parent && (!parent.exhausted || parent.buffer.length > 0)) continue;
      if (!state.started) {
        state.iterator = await this.iteratorFor(state, firstFetch && !parent);
        state.started = true;
      }
      fetched += await this.fetchShard(state, limitPerShard);
    }
    this.lastFetched = fetched;
    return fetched;
  }

  /** Reads one shard from its iterator, page by page, until it is quiet or its buffer holds the limit. */
  private async fetchShard(state: ShardState, limitPerShard: number): Promise<number> {
    let fetched = 0;
    for (let page = 0; page < 20 && state.iterator; page += 1) {
      let response: GetRecordsCommandOutput;
      try {
        response = await this.streams.send(
          new GetRecordsCommand({ ShardIterator: state.iterator, Limit: Math.min(1000, limitPerShard) }),
        );
      } catch (error) {
        // An iterator can expire, and DynamoDB Local refuses one taken on an empty shard once records
        // arrive: take a new one from where this reader stands.
        if (!(error instanceof ExpiredIteratorException || error instanceof TrimmedDataAccessException)) {
          throw error;
        }
        state.iterator = await this.iteratorFor(state, false);
        continue;
      }
      const records = response.Records ?? [];
      for (const record of records) {
        state.buffer.push(toLambdaRecord(record, this.streamArn));
        state.lastSequenceNumber = record.dynamodb?.SequenceNumber ?? state.lastSequenceNumber;
      }
      fetched += records.length;
      state.iterator = response.NextShardIterator;
      if (!state.iterator) {
        // The shard is closed: its children, if any, appear at the next describe.
        state.exhausted = true;
        this.shardClosed = true;
      }
      if (records.length === 0 || state.buffer.length >= limitPerShard) break;
    }
    return fetched;
  }

  /** Shards with buffered records, in the order they must be consumed. */
  pendingShards(): string[] {
    return [...this.shards.values()].filter((shard) => shard.buffer.length > 0).map((shard) => shard.shardId);
  }

  /** The buffered records of a shard, in order, without consuming them (the buffer itself: do not keep it). */
  records(shardId: string): readonly DynamoDBRecord[] {
    return this.shards.get(shardId)?.buffer ?? [];
  }

  /** The first `count` buffered records of a shard, without consuming them. */
  peek(shardId: string, count: number): DynamoDBRecord[] {
    return this.shards.get(shardId)?.buffer.slice(0, count) ?? [];
  }

  /** Drops the first `count` buffered records of a shard: the checkpoint moves past them. */
  commit(shardId: string, count: number): void {
    this.shards.get(shardId)?.buffer.splice(0, count);
  }

  /** Everything buffered, in order, consumed: for tests that only want the records. */
  take(): DynamoDBRecord[] {
    const all: DynamoDBRecord[] = [];
    for (const shard of this.shards.values()) all.push(...shard.buffer.splice(0));
    return all;
  }

  buffered(): number {
    let total = 0;
    for (const shard of this.shards.values()) total += shard.buffer.length;
    return total;
  }
}
