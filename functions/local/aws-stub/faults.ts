/**
 * The stub's test seam: fault injection. It exists for tests, to make the next requests, PutEvents entries
 * or SQS batch entries fail on purpose, so that the engine's retry and partial-failure paths can be driven
 * without AWS. Nothing here models how AWS behaves; the
 * services only ask it, before doing their real work, whether a failure is pending.
 */
import type { Json } from "./wire.ts";

/** The fault-injection methods of `AwsStub`: a test seam, not a model of AWS. */
export interface FaultInjection {
  /** The next `count` PutEvents entries fail inside a 200 reply, with this ErrorCode. */
  failNextPutEvents(count: number, errorCode?: string): void;
  /**
   * The next `count` SendMessageBatch or DeleteMessageBatch entries fail inside a 200 reply (listed under
   * Failed with this Code and SenderFault false); nothing is sent or deleted for them.
   */
  failNextSqsBatchEntries(count: number, errorCode?: string): void;
  /**
   * The next `count` HTTP requests, to any service, fail with a throttling error: SNS an awsQuery XML
   * error with Code `Throttling`, EventBridge a JSON error with __type `ThrottlingException`, SQS a JSON
   * error with __type `com.amazonaws.sqs#RequestThrottled` (and x-amzn-query-error `RequestThrottled`), all
   * with this HTTP status (400, 429 or 5xx are all retried by the SDK).
   */
  failNextRequests(count: number, status?: number): void;
}

interface Pending<T> {
  remaining: number;
  readonly detail: T;
}

function pending<T>(count: number, detail: T): Pending<T> {
  return { remaining: Math.max(0, Math.trunc(count)), detail };
}

/** Takes one failure if any is pending: its detail, or undefined. */
function take<T>(failures: Pending<T>): T | undefined {
  if (failures.remaining <= 0) return undefined;
  failures.remaining -= 1;
  return failures.detail;
}

/** The pending faults of one stub; the services take them one at a time. For tests only. */
export class Faults implements FaultInjection {
  private putEventsFailures = pending(0, "");
  private sqsBatchEntryFailures = pending(0, "");
  private requestFailures = pending(0, 500);

  failNextPutEvents(count: number, errorCode = "InternalFailure"): void {
    this.putEventsFailures = pending(count, errorCode);
  }

  failNextSqsBatchEntries(count: number, errorCode = "InternalError"): void {
    this.sqsBatchEntryFailures = pending(count, errorCode);
  }

  failNextRequests(count: number, status = 500): void {
    this.requestFailures = pending(count, status);
  }

  /** The HTTP status the next request must fail with, if a request failure is pending. */
  takeRequestFailure(): number | undefined {
    return take(this.requestFailures);
  }

  /** The ErrorCode the next PutEvents entry must fail with, if one is pending. */
  takePutEventsFailure(): string | undefined {
    return take(this.putEventsFailures);
  }

  /** The Failed entry to report for the SQS batch entry `id`, if a batch entry failure is pending. */
  takeSqsBatchEntryFailure(id: string): Json | undefined {
    const code = take(this.sqsBatchEntryFailures);
    if (code === undefined) return undefined;
    return { Id: id, SenderFault: false, Code: code, Message: `Injected failure (${code}) by aws-stub` };
  }

  /** Drops every pending fault. */
  reset(): void {
    this.putEventsFailures = pending(0, "");
    this.sqsBatchEntryFailures = pending(0, "");
    this.requestFailures = pending(0, 500);
  }
}
