/**
 * The conditions that need an operator, and the log message each raises. The handlers log the message when
 * a step carries the alarm (an exact field of its AUDIT effect, never its prose); the stack's metric
 * filters match the same constants, so the two cannot drift apart.
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
  NOTHING_TO_SELL: {
    message: "nothing to sell: bad debt for the operator",
    metric: "NothingToSell",
    description: "a call had to be liquidated but the account holds nothing to sell: a bad-debt case",
  },
} as const;

export type OperatorAlarm = keyof typeof OPERATOR_ALARMS;
