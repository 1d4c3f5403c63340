/**
 * The shapes of the stub's fault modes beyond "fail the next N" (accept then fail, throttling, a silent SMS
 * spend limit, latency), their summary, and the small pieces the fault seam builds them from: argument
 * checks and the one-second rate window. Kept apart from `faults.ts` so that a reader of the seam's API
 * finds every shape in one place.
 */

/** The services the stub answers over HTTP. */
export type StubService = "sns" | "eventbridge" | "sqs";

/** The services whose replies `acceptThenFail` can fail after the request was accepted. */
export type AcceptingService = "sns" | "eventbridge";

export interface AcceptThenFailFault {
  readonly service: AcceptingService;
  /** How many requests (SNS Publish, or PutEvents) to accept and then fail; a non-negative integer. */
  readonly count: number;
}

export interface ThrottleFault {
  readonly service: StubService;
  /** Requests accepted in any one-second window; a non-negative integer, or Infinity to lift the limit. */
  readonly perSecond: number;
  /** SNS only: limit only Publish to a PhoneNumber; other SNS requests pass without counting. */
  readonly smsOnly?: boolean;
}

export interface SmsSpendLimitFault {
  /**
   * SMS accepted (from this call on) before the rest are silently dropped; a non-negative integer, or
   * Infinity to lift the limit.
   */
  readonly maxMessages: number;
}

export interface LatencyFault {
  /** The service to delay; every service when absent. A service's own setting wins over the global one. */
  readonly service?: StubService;
  /** Milliseconds each request waits before it is handled; 0 removes the delay. */
  readonly ms: number;
}

/** What the fault seam has injected since the stub started or was last reset. */
export interface FaultSummary {
  /** Requests accepted and recorded whose HTTP reply was then failed (acceptThenFail). */
  readonly acceptedThenFailed: Readonly<Record<AcceptingService, number>>;
  /** Requests refused by `throttle`. */
  readonly throttled: Readonly<Record<StubService, number>>;
  /** SMS answered as a success but not delivered, past `smsSpendLimit`. */
  readonly smsDropped: number;
  /** Requests held back by `latency`. */
  readonly delayed: number;
  /** Requests failed by `failNextRequests`. */
  readonly requestsFailed: number;
  /** PutEvents entries failed by `failNextPutEvents`. */
  readonly putEventsEntriesFailed: number;
  /** SQS batch entries failed by `failNextSqsBatchEntries`. */
  readonly sqsBatchEntriesFailed: number;
}

/** A mutable FaultSummary, as the seam counts. */
export interface FaultCounts {
  acceptedThenFailed: Record<AcceptingService, number>;
  throttled: Record<StubService, number>;
  smsDropped: number;
  delayed: number;
  requestsFailed: number;
  putEventsEntriesFailed: number;
  sqsBatchEntriesFailed: number;
}

export function emptyCounts(): FaultCounts {
  return {
    acceptedThenFailed: { sns: 0, eventbridge: 0 },
    throttled: { sns: 0, eventbridge: 0, sqs: 0 },
    smsDropped: 0,
    delayed: 0,
    requestsFailed: 0,
    putEventsEntriesFailed: 0,
    sqsBatchEntriesFailed: 0,
  };
}

export function copyCounts(counts: FaultCounts): FaultSummary {
  return {
    ...counts,
    acceptedThenFailed: { ...counts.acceptedThenFailed },
    throttled: { ...counts.throttled },
  };
}

/** `value` if it is a non-negative integer; otherwise a RangeError naming `name`. */
export function checkCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/** `value` if it is a non-negative integer or Infinity; otherwise a RangeError naming `name`. */
export function checkLimit(name: string, value: number): number {
  return value === Number.POSITIVE_INFINITY ? value : checkCount(name, value);
}

/** `value` if it is a finite, non-negative number; otherwise a RangeError naming `name`. */
export function checkMs(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite, non-negative number of milliseconds, got ${value}`);
  }
  return value;
}

const WINDOW_MS = 1000;

/**
 * A rolling one-second window: it admits a request if fewer than `perSecond` were admitted in the last
 * second (by the clock given to `admit`), and remembers it.
 */
export class RateWindow {
  private readonly admitted: number[] = [];

  constructor(
    readonly perSecond: number,
    readonly smsOnly: boolean,
  ) {}

  admit(now: number): boolean {
    while (this.admitted.length > 0 && now - (this.admitted[0] ?? now) >= WINDOW_MS) {
      this.admitted.shift();
    }
    if (this.admitted.length >= this.perSecond) return false;
    this.admitted.push(now);
    return true;
  }
}
