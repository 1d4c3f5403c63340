/**
 * The stub's test seam: fault injection. It exists for tests and crash-scenario harnesses, to make requests,
 * PutEvents entries or SQS batch entries fail on purpose, to fail a reply after its request was accepted, to
 * throttle, to drop SMS silently past a spend limit, and to delay requests, so that the engine's retry,
 * partial-failure and at-least-once paths can be driven without AWS. Nothing here models how AWS behaves
 * beyond the shape of each failure; the router and the services only ask it, before or while doing their
 * real work, whether a fault applies, and it counts what it injected (`summary`).
 */
import {
  type AcceptingService,
  type AcceptThenFailFault,
  checkCount,
  checkLimit,
  checkMs,
  copyCounts,
  emptyCounts,
  type FaultCounts,
  type FaultSummary,
  type LatencyFault,
  RateWindow,
  type SmsSpendLimitFault,
  type StubService,
  type ThrottleFault,
} from "./fault-modes.ts";
import type { Json } from "./wire.ts";

export type * from "./fault-modes.ts";

/** The fault-injection methods of `AwsStub` itself: a test seam, not a model of AWS. */
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

/** `AwsStub.faults`: every fault mode, what was injected, and a reset. Calling a mode again replaces it. */
export interface FaultControl extends FaultInjection {
  /**
   * The next `count` SNS Publish requests (or PutEvents requests) are handled exactly as a success
   * (recorded, with `replyFailed: true`, and handed to the callbacks), and then answered with HTTP 500: SNS
   * an awsQuery XML error with Code `InternalError`, EventBridge a JSON error with __type
   * `InternalException`. A request refused before it is accepted (invalid, throttled) does not use one up.
   */
  acceptThenFail(fault: AcceptThenFailFault): void;
  /**
   * At most `perSecond` HTTP requests of the service (with `smsOnly`, SNS Publish to a PhoneNumber) are
   * accepted in any rolling one-second window; the rest fail with HTTP 400 and the service's throttling error
   * (as `failNextRequests`) and are not recorded.
   */
  throttle(fault: ThrottleFault): void;
  /**
   * After `maxMessages` SMS have been accepted, further SMS are answered as a success with a MessageId and
   * recorded with `dropped: true`, but `onSms` is not called: how SNS silently stops SMS past the spend limit.
   */
  smsSpendLimit(fault: SmsSpendLimitFault): void;
  /** Every HTTP request (or every one of the service) waits `ms` before it is handled. */
  latency(fault: LatencyFault): void;
  /** What was injected so far (a copy). */
  summary(): FaultSummary;
  /** Drops every fault, pending or standing, and zeroes the summary. */
  reset(): void;
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

/** The faults of one stub; the router and the services consult them request by request. For tests only. */
export class Faults implements FaultControl {
  private putEventsFailures = pending(0, "");
  private sqsBatchEntryFailures = pending(0, "");
  private requestFailures = pending(0, 500);
  private acceptThenFails: Record<AcceptingService, number> = { sns: 0, eventbridge: 0 };
  private windows = new Map<StubService, RateWindow>();
  private smsLimit = Number.POSITIVE_INFINITY;
  private smsAccepted = 0;
  private delays = new Map<StubService | "all", number>();
  private counts: FaultCounts = emptyCounts();

  /** `clock`: monotonic milliseconds, for the throttling windows. */
  constructor(private readonly clock: () => number = () => performance.now()) {}

  failNextPutEvents(count: number, errorCode = "InternalFailure"): void {
    this.putEventsFailures = pending(count, errorCode);
  }

  failNextSqsBatchEntries(count: number, errorCode = "InternalError"): void {
    this.sqsBatchEntryFailures = pending(count, errorCode);
  }

  failNextRequests(count: number, status = 500): void {
    this.requestFailures = pending(count, status);
  }

  acceptThenFail({ service, count }: AcceptThenFailFault): void {
    this.acceptThenFails[service] = checkCount("acceptThenFail count", count);
  }

  throttle({ service, perSecond, smsOnly = false }: ThrottleFault): void {
    checkLimit("throttle perSecond", perSecond);
    if (smsOnly && service !== "sns")
      throw new RangeError("throttle smsOnly applies to the sns service only");
    if (perSecond === Number.POSITIVE_INFINITY) this.windows.delete(service);
    else this.windows.set(service, new RateWindow(perSecond, smsOnly));
  }

  smsSpendLimit({ maxMessages }: SmsSpendLimitFault): void {
    this.smsLimit = checkLimit("smsSpendLimit maxMessages", maxMessages);
    this.smsAccepted = 0;
  }

  latency({ service, ms }: LatencyFault): void {
    const key = service ?? "all";
    if (checkMs("latency ms", ms) === 0) this.delays.delete(key);
    else this.delays.set(key, ms);
  }

  summary(): FaultSummary {
    return copyCounts(this.counts);
  }

  /** The HTTP status the next request must fail with, if a request failure is pending. */
  takeRequestFailure(): number | undefined {
    const status = take(this.requestFailures);
    if (status !== undefined) this.counts.requestsFailed += 1;
    return status;
  }

  /** The ErrorCode the next PutEvents entry must fail with, if one is pending. */
  takePutEventsFailure(): string | undefined {
    const code = take(this.putEventsFailures);
    if (code !== undefined) this.counts.putEventsEntriesFailed += 1;
    return code;
  }

  /** The Failed entry to report for the SQS batch entry `id`, if a batch entry failure is pending. */
  takeSqsBatchEntryFailure(id: string): Json | undefined {
    const code = take(this.sqsBatchEntryFailures);
    if (code === undefined) return undefined;
    this.counts.sqsBatchEntriesFailed += 1;
    return { Id: id, SenderFault: false, Code: code, Message: `Injected failure (${code}) by aws-stub` };
  }

  /** Whether the accepted request must get a failed reply; counted as injected when it must. */
  takeAcceptThenFail(service: AcceptingService): boolean {
    if (this.acceptThenFails[service] <= 0) return false;
    this.acceptThenFails[service] -= 1;
    this.counts.acceptedThenFailed[service] += 1;
    return true;
  }

  /** Whether a request of the service may pass the throttle now; a refusal is counted. */
  admit(service: StubService, isSms: boolean): boolean {
    const window = this.windows.get(service);
    if (window === undefined || (window.smsOnly && !isSms)) return true;
    if (window.admit(this.clock())) return true;
    this.counts.throttled[service] += 1;
    return false;
  }

  /** Whether an accepted SMS is delivered (false past the spend limit: dropped, and counted). */
  deliverSms(): boolean {
    if (this.smsAccepted < this.smsLimit) {
      this.smsAccepted += 1;
      return true;
    }
    this.counts.smsDropped += 1;
    return false;
  }

  /** How long a request of the service must wait before it is handled; a delay is counted. */
  takeLatency(service: StubService): number {
    const ms = this.delays.get(service) ?? this.delays.get("all") ?? 0;
    if (ms > 0) this.counts.delayed += 1;
    return ms;
  }

  reset(): void {
    this.putEventsFailures = pending(0, "");
    this.sqsBatchEntryFailures = pending(0, "");
    this.requestFailures = pending(0, 500);
    this.acceptThenFails = { sns: 0, eventbridge: 0 };
    this.windows = new Map();
    this.smsLimit = Number.POSITIVE_INFINITY;
    this.smsAccepted = 0;
    this.delays = new Map();
    this.counts = emptyCounts();
  }
}

/** The public face of `faults`: its FaultControl methods, bound, so that they survive destructuring. */
export function faultControl(faults: Faults): FaultControl {
  return {
    failNextPutEvents: (count, errorCode) => faults.failNextPutEvents(count, errorCode),
    failNextSqsBatchEntries: (count, errorCode) => faults.failNextSqsBatchEntries(count, errorCode),
    failNextRequests: (count, status) => faults.failNextRequests(count, status),
    acceptThenFail: (fault) => faults.acceptThenFail(fault),
    throttle: (fault) => faults.throttle(fault),
    smsSpendLimit: (fault) => faults.smsSpendLimit(fault),
    latency: (fault) => faults.latency(fault),
    summary: () => faults.summary(),
    reset: () => faults.reset(),
  };
}
