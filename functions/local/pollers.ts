/**
 * The local runtime's poll loops, one per event source mapping. A poll that delivers is followed by
 * another at once (a queue) or after 2 ms (a stream, whose batches run in the background), and a stream
 * is polled again as soon as one of its batches ends. A poll that delivers nothing waits twice as long as
 * the last, up to the longest wait. So a record is picked up within milliseconds while the pipeline is
 * busy, and an idle source costs a poll every 100 ms (GetRecords on each open shard, no DescribeStream).
 */
import type { QueueMapping } from "./queue-mapping.ts";
import type { StreamMapping } from "./stream-mapping.ts";

/** The wait before polling again after work, doubled on each empty poll up to the longest. */
export const IDLE_POLL_MIN_MS = 2;
export const IDLE_POLL_MAX_MS = 100;
/** The pause after a failure of the mapping itself. */
const FAILURE_PAUSE_MS = 500;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Poller {
  running(): boolean;
  readonly longestWaitMs: number;
  /** The mapping itself failed (DynamoDB Local went away, say): it is reported and polling goes on. */
  failed(name: string, error: unknown): void;
}

/** A stream mapping's loop: polls when a batch ends or after the wait, whichever is first. */
export async function pollStream(mapping: StreamMapping, name: string, poller: Poller): Promise<void> {
  let wait = IDLE_POLL_MIN_MS;
  while (poller.running()) {
    try {
      // Only a poll that started a batch counts as work: records that found every lane busy wait for a
      // batch to end, which wakes this loop, and polling faster meanwhile would only load DynamoDB Local.
      const started = await mapping.poll();
      wait = started > 0 ? IDLE_POLL_MIN_MS : Math.min(wait * 2, poller.longestWaitMs);
      await mapping.batchEnded(wait);
    } catch (error) {
      if (!poller.running()) break;
      poller.failed(name, error);
      await sleep(FAILURE_PAUSE_MS);
    }
  }
  // Batches still running end before the services go away.
  while (mapping.inFlightBatches() > 0) await mapping.batchEnded(IDLE_POLL_MAX_MS);
}

/** A queue mapping's loop: at once after a delivery, with the growing wait while the queue is empty. */
export async function pollQueue(mapping: QueueMapping, name: string, poller: Poller): Promise<void> {
  let wait = IDLE_POLL_MIN_MS;
  while (poller.running()) {
    try {
      if ((await mapping.pollOnce()) > 0) {
        wait = IDLE_POLL_MIN_MS;
        continue;
      }
      await sleep(wait);
      wait = Math.min(wait * 2, poller.longestWaitMs);
    } catch (error) {
      if (!poller.running()) break;
      poller.failed(name, error);
      await sleep(FAILURE_PAUSE_MS);
    }
  }
}
