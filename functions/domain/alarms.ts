/**
 * The log messages that raise an alarm, defined once: the handlers log them and the stack's metric filters
 * (lib/) match them, so the two cannot drift apart. The module imports nothing, so both sides may use it.
 */

/** A log message an alarm watches: the metric its filter counts and what the alarm tells the operator. */
export interface LogSignal {
  /** The message, or the start of it: the metric filter matches every message that begins with it. */
  readonly message: string;
  /** The CloudWatch metric (namespace MarginCallEngine) the filter counts. */
  readonly metric: string;
  /** The alarm's description: what happened, for the operator who reads it. */
  readonly description: string;
}

/**
 * The conditions that need an operator, and the log message each raises. The handlers log the message when
 * a step carries the alarm (an exact field of its AUDIT effect, never its prose).
 */
export const OPERATOR_ALARMS = {
  LIQUIDATION_EXHAUSTED: {
    message: "liquidation exhausted: operator action needed",
    metric: "LiquidationExhausted",
    description: "a liquidation ran out of attempts: operator action needed",
  },
  PRICE_HALT_TOO_LONG: {
    message: "price halt too long: operator action needed",
    metric: "PriceHaltTooLong",
    description: "escalation has been halted on stale or diverging prices for longer than the policy allows",
  },
  LIQUIDATION_WAITS_ON_CAP: {
    message: "liquidation waits on a cascade cap it cannot fit: operator action needed",
    metric: "LiquidationWaitsOnCap",
    description:
      "a liquidation due now is larger than a cascade cap, or the cap ledger is full: it waits until an operator raises the cap or acts",
  },
  NOTHING_TO_SELL: {
    message: "nothing to sell: bad debt for the operator",
    metric: "NothingToSell",
    description: "a call had to be liquidated but the account holds nothing to sell: a bad-debt case",
  },
} as const satisfies Record<string, LogSignal>;

export type OperatorAlarm = keyof typeof OPERATOR_ALARMS;

/**
 * The other log messages an operator must see: an upstream record set aside, and an account that could
 * not be valued (a quarantined item or a policy gap keeps it from being valued at all). Each `message` is
 * the start of what the handler logs; the handler may add detail after it.
 */
export const LOG_SIGNALS = {
  RECORD_QUARANTINED: {
    message: "record quarantined",
    metric: "Quarantined",
    description: "an upstream record broke the data contract and was quarantined",
  },
  RECORD_FAILED: {
    message: "record failed",
    metric: "RecordsFailed",
    description:
      "a stream record or queue message failed inside its batch: it is delivered again, and given up on after its retries",
  },
  ACCOUNT_NOT_REVALUED: {
    message: "account not revalued",
    metric: "NotRevalued",
    description:
      "an account could not be valued: it is parked (margin-call quarantine list --status PARKED) and retried by the sweep",
  },
  NOTICE_UNDELIVERED: {
    message: "notice undelivered",
    metric: "NoticeUndelivered",
    description:
      "a notice (or one of its channels) could not be sent within notices.deliverWithinSeconds; the borrower may not know",
  },
  NOTICE_UNCERTAIN: {
    message: "notice delivery uncertain",
    metric: "NoticeUncertain",
    description: "SNS may or may not have accepted a notice (a 5xx or a lost reply); it is not sent again",
  },
  EVENT_UNCERTAIN: {
    message: "event put uncertain",
    metric: "EventUncertain",
    description:
      "EventBridge may or may not have accepted an engine event (a 5xx or a lost reply); it is not put again",
  },
  LIQUIDATION_WITHOUT_NOTICE: {
    message: "liquidation requested without a delivered notice",
    metric: "LiquidationWithoutNotice",
    description:
      "a call notice was undeliverable and the policy (notices.whenUndelivered LIQUIDATE) sent the liquidation anyway",
  },
  POLICY_UNREADABLE: {
    message: "policy unreadable",
    metric: "PolicyUnreadable",
    description:
      "an active policy version cannot be read by this code (a newer schema, or a document that does not match its hash): the function keeps the version it held, or parks that policy's accounts; deploy the code that reads it, or activate a readable version",
  },
  LIQUIDATIONS_PAUSED: {
    message: "liquidations paused",
    metric: "LiquidationsPaused",
    description:
      "an asset's circuit breaker tripped (circuitBreaker.maxMove within its window): new liquidation requests on it wait; calls and notices go on",
  },
  LIQUIDATIONS_RESUMED: {
    message: "liquidations resumed",
    metric: "LiquidationsResumed",
    description:
      "an asset's circuit breaker released after its cool-down: the liquidations that waited are requested at the next revaluation",
  },
  BAD_DEBT_RECORDED: {
    message: "bad debt recorded",
    metric: "BadDebtRecorded",
    description:
      "a bankrupt account's shortfall exceeded what the insurance fund held: the rest is bad debt for the lender (BadDebtRecorded); top the fund up with margin-call fund topup",
  },
  LIQUIDATION_HELD: {
    message: "liquidation held: notice undeliverable",
    metric: "LiquidationHeld",
    description:
      "a call notice was undeliverable and the policy (notices.whenUndelivered HOLD) holds the liquidation for an operator",
  },
} as const satisfies Record<string, LogSignal>;
