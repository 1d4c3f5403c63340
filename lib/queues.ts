/**
 * The engine's queues all share one shape: SQS-managed encryption, TLS only, and a dead-letter queue whose
 * depth an alarm watches. The shape is defined once, here, so every construct that needs a queue gets it.
 */
import { Duration } from "aws-cdk-lib";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";

/** How long a dead-letter queue keeps a message for an operator: the most SQS allows. */
const DEAD_LETTER_RETENTION = Duration.days(14);

/** Receives after which a message moves to the dead-letter queue. */
const RECEIVES_BEFORE_DEAD_LETTER = 5;

/** A queue that holds messages set aside for an operator: encrypted, TLS only, kept 14 days. */
export function deadLetterQueue(scope: Construct, id: string): Queue {
  return new Queue(scope, id, {
    retentionPeriod: DEAD_LETTER_RETENTION,
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  });
}

export interface RedrivenQueueProps {
  /** How long the queue keeps a message nobody has taken. */
  readonly retentionPeriod: Duration;
  /**
   * How long a received message stays hidden from other consumers.
   * @default SQS's default, 30 seconds
   */
  readonly visibilityTimeout?: Duration;
  /**
   * Receives after which a message moves to the dead-letter queue.
   * @default 5
   */
  readonly maxReceiveCount?: number;
}

/** A queue and the dead-letter queue it redrives to after `maxReceiveCount` receives. */
export interface RedrivenQueue {
  readonly queue: Queue;
  readonly deadLetter: Queue;
}

/** Creates `${id}DeadLetter`, then the queue `id` that redrives to it, both in `scope`. */
export function redrivenQueue(scope: Construct, id: string, props: RedrivenQueueProps): RedrivenQueue {
  const deadLetter = deadLetterQueue(scope, `${id}DeadLetter`);
  const queue = new Queue(scope, id, {
    retentionPeriod: props.retentionPeriod,
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    ...(props.visibilityTimeout ? { visibilityTimeout: props.visibilityTimeout } : {}),
    deadLetterQueue: {
      queue: deadLetter,
      maxReceiveCount: props.maxReceiveCount ?? RECEIVES_BEFORE_DEAD_LETTER,
    },
  });
  return { queue, deadLetter };
}
