/**
 * What a notice is made from: the NOTIFY payload the engine writes into its outbox (all money as decimal
 * strings), the recipient's settings, and the rendered SMS and email.
 */
import type { NoticeKind } from "../domain/machine.ts";

export type CureOptionPayload =
  | { kind: "DEPOSIT"; amount: string; currency: string }
  | {
      kind: "REDUCE";
      target: { kind: "HOLDING"; asset: string } | { kind: "POSITION"; instrument: string };
      side: "SELL" | "BUY";
      quantity: string;
      notional: string;
    };

/** The JSON payload the engine writes into its outbox for a NOTIFY effect. All money is decimal strings. */
export interface NoticePayload {
  /** Unique per notice, and the reference the borrower quotes. */
  notificationId: string;
  notice: NoticeKind;
  accountId: string;
  callId: string | null;
  /** Already at the currency scale, e.g. "1000.00". */
  amountDue: string | null;
  /** ISO-8601 UTC, e.g. "2026-11-25T12:00:00.000Z". */
  deadlineAt: string | null;
  /** Adjusted equity / maintenance requirement, e.g. "0.964123". */
  marginRatio: string | null;
  cureOptions: Array<CureOptionPayload>;
  /**
   * LIQUIDATION_COMPLETE ending in bad debt: the deficit left, at the currency scale, e.g. "2000.00". Null
   * otherwise; absent from payloads written before the field existed.
   */
  loss?: string | null;
  /** LIQUIDATION_NOTICE: why the account is being liquidated. Absent in older payloads: the deadline. */
  reason?: "DEADLINE" | "HARD_FLOOR";
  /** CURED: how the call was met. */
  met?: "DEPOSIT" | "MARKET" | "LIQUIDATION" | "WAIVED";
  /** CALL_INCREASED: what restores the account now (the deposit cure option), and what it took when last told. */
  restoreAmount?: string;
  previousAmountDue?: string;
  /** LIQUIDATION_COMPLETE: what was sold (or bought back), with the average price and fees. */
  sold?: ReadonlyArray<{
    target: { kind: "HOLDING"; asset: string } | { kind: "POSITION"; instrument: string };
    side: "SELL" | "BUY";
    quantity: string;
    averagePrice: string;
    fee: string;
  }>;
}

export interface Recipient {
  borrowerName?: string;
  /** IANA time zone, e.g. "America/New_York". */
  timeZone: string;
  /** Currency of the amount due and of notionals, e.g. "USD". */
  currency: string;
}

export interface RenderedNotice {
  sms: string;
  emailSubject: string;
  emailText: string;
}
