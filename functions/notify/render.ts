/**
 * Borrower-facing text of each margin-call notice, for SMS and for email.
 *
 * Pure and deterministic: no clock, no randomness, no I/O. The same payload and recipient always give the
 * same text, so a notice re-sent after a retry reads exactly as the first one.
 *
 * Choices, stated once:
 * - Money is never a JS number. Amounts are grouped with thousands separators on the decimal string itself;
 *   the approximate notional of a reduce option and the margin ratio percentage are rounded with decimal.js
 *   from the string (HALF_EVEN for the neutral notional, FLOOR for the ratio so health is never overstated).
 * - The reference the borrower quotes is the `notificationId` (it exists for every kind, WARNING included,
 *   and names this very notice). The engine builds ids from the account id, so wherever the full account id
 *   appears in a reference it is replaced by the masked form ("...0234"): support recovers the full id from
 *   the borrower's account and the rest of the reference. CURED, LIQUIDATION_NOTICE and LIQUIDATION_COMPLETE
 *   also name the call (`callId`, masked the same way).
 * - LIQUIDATION_NOTICE states the amount that was due when the payload has it. LIQUIDATION_COMPLETE states
 *   the deficit left when the liquidation ended in bad debt (`loss`).
 * - The deadline is shown in the borrower's time zone with its zone abbreviation or offset ("EST", "GMT+9"),
 *   and in UTC in the email. An unknown IANA zone falls back to UTC rather than failing the notice.
 * - SMS text is GSM-7 only and at most 3 concatenated segments (459 septets; extension characters such as
 *   "[" or "€" count 2). If every cure option does not fit, the first is kept with "More options by email.";
 *   if even that does not fit (pathological names), the options move to the email, and as a last resort the
 *   text is clipped. Any character outside GSM-7 coming from the data is transliterated or replaced by "?".
 * - A CALL or REMINDER without an amount or a deadline, a malformed decimal string or an unparseable instant
 *   is refused with an error: a margin call must never be sent with a wrong or missing figure.
 */
import type { NoticeKind } from "../domain/machine.ts";
import {
  effectiveTimeZone,
  formatApproximate,
  formatDecimal,
  formatInstant,
  formatMoney,
  formatRatioPercent,
  isZero,
  maskAccountId,
  maskReference,
} from "./format.ts";
import { clipSeptets, gsm7Septets, toGsm7 } from "./gsm7.ts";
import type { CureOptionPayload, NoticePayload, Recipient, RenderedNotice } from "./types.ts";

/** The engine's notice kinds: the state machine's, so a new kind cannot go out without its text. */
export type { NoticeKind } from "../domain/machine.ts";

export type { CureOptionPayload, NoticePayload, Recipient, RenderedNotice } from "./types.ts";

/** Three concatenated GSM-7 segments of 153 septets each. */
export const SMS_MAX_SEPTETS = 459;

export const MORE_OPTIONS_BY_EMAIL = "More options by email.";

export {
  effectiveTimeZone,
  formatDecimal,
  formatInstant,
  formatMoney,
  formatRatioPercent,
  maskAccountId,
  maskReference,
} from "./format.ts";
export { clipSeptets, gsm7Septets, isGsm7, toGsm7 } from "./gsm7.ts";

// ---------------------------------------------------------------------------------------------------------
// Cure options

function cureOptionText(option: CureOptionPayload, currency: string): string {
  switch (option.kind) {
    case "DEPOSIT":
      return `deposit ${formatMoney(option.amount, option.currency)}`;
    case "REDUCE": {
      const quantity = formatDecimal(option.quantity);
      const approx = `(approx. ${formatApproximate(option.notional, currency)})`;
      if (option.target.kind === "POSITION")
        return `close ${quantity} of ${option.target.instrument} ${approx}`;
      const verb = option.side === "SELL" ? "sell" : "buy back";
      return `${verb} ${quantity} of ${option.target.asset} ${approx}`;
    }
    default: {
      const unknown: never = option;
      throw new TypeError(`unknown cure option: ${JSON.stringify(unknown)}`);
    }
  }
}

/** Cure options worth showing: a zero deposit or a zero quantity cures nothing. */
function usefulOptions(options: readonly CureOptionPayload[], currency: string): string[] {
  return options
    .filter((option) =>
      option.kind === "DEPOSIT" ? !isZero(option.amount, "deposit") : !isZero(option.quantity, "quantity"),
    )
    .map((option) => cureOptionText(option, currency));
}

const capitalise = (text: string): string => text.charAt(0).toUpperCase() + text.slice(1);

// ---------------------------------------------------------------------------------------------------------
// Rendering

interface Texts {
  /** SMS text before the cure options. */
  smsHead: string;
  /** Lead-in to the cure options in the SMS, e.g. "To cure:"; null when the notice shows no options. */
  smsOptionsLead: string | null;
  subject: string;
  /** Email paragraphs between the greeting and the reference. */
  body: string[];
}

interface Context {
  readonly payload: NoticePayload;
  readonly recipient: Recipient;
  readonly account: string;
  readonly reference: string;
  readonly callReference: string | null;
  readonly options: readonly string[];
}

function required(value: string | null, field: string, notice: NoticeKind): string {
  if (value === null) throw new TypeError(`${notice} notice without ${field}`);
  return value;
}

function deadlineLines(deadlineAt: string, recipient: Recipient): string[] {
  const zone = effectiveTimeZone(recipient.timeZone);
  const local = `${formatInstant(deadlineAt, zone)}${zone === "UTC" ? "" : ` (${zone})`}`;
  const lines = [`Deadline: ${local}`];
  if (zone !== "UTC") lines.push(`          ${formatInstant(deadlineAt, "UTC")}`);
  return lines;
}

function optionLines(options: readonly string[], lead: string): string[] {
  return options.length === 0
    ? []
    : [[lead, ...options.map((option) => `  - ${capitalise(option)}`)].join("\n")];
}

function increasedTexts(ctx: Context): Texts {
  const { payload, recipient, account, options } = ctx;
  const amount = formatMoney(required(payload.amountDue, "amountDue", payload.notice), recipient.currency);
  const restore = formatMoney(
    required(payload.restoreAmount ?? null, "restoreAmount", payload.notice),
    recipient.currency,
  );
  const deadlineAt = required(payload.deadlineAt, "deadlineAt", payload.notice);
  const deadlineText = formatInstant(deadlineAt, recipient.timeZone);
  const before =
    payload.previousAmountDue === undefined
      ? ""
      : ` (was ${formatMoney(payload.previousAmountDue, recipient.currency)})`;
  return {
    smsHead: `MARGIN CALL UPDATE on acct ${account}: prices fell further; restoring the account now takes ${restore}${before}. ${amount} by ${deadlineText} still meets this call; a new call follows if still short.`,
    smsOptionsLead: "To restore it:",
    subject: `Margin call update on account ${account}: ${restore} now restores it, ${amount} due by ${deadlineText}`,
    body: [
      `Prices moved against your account ${account} after the margin call was issued. Bringing the account back to its requirement now takes ${restore}${before}.`,
      [`Amount due by the deadline: ${amount}`, ...deadlineLines(deadlineAt, recipient)].join("\n"),
      `Paying ${amount} by the deadline meets this margin call: your positions will not be liquidated for it. If the account is still below its requirement then, a new margin call for the rest follows, with a deadline of its own. Paying ${restore} now avoids that.`,
      ...optionLines(options, "Any one of the following restores the account:"),
      "If the amount due is not paid by the deadline, positions in the account may be liquidated.",
    ],
  };
}

function soldText(sold: NonNullable<NoticePayload["sold"]>[number], currency: string): string {
  const name = sold.target.kind === "HOLDING" ? sold.target.asset : sold.target.instrument;
  const verb = sold.side === "SELL" ? "Sold" : "Bought back";
  return `${verb} ${formatDecimal(sold.quantity)} ${name} at ${formatMoney(sold.averagePrice, currency)} on average (fees ${formatMoney(sold.fee, currency)})`;
}

function callTexts(ctx: Context, reminder: boolean): Texts {
  const { payload, recipient, account, options } = ctx;
  const amount = formatMoney(required(payload.amountDue, "amountDue", payload.notice), recipient.currency);
  const deadlineAt = required(payload.deadlineAt, "deadlineAt", payload.notice);
  const deadlineText = formatInstant(deadlineAt, recipient.timeZone);
  const consequence =
    "If it is not met by the deadline, positions in the account may be liquidated to meet it.";
  return {
    smsHead: reminder
      ? `Reminder: margin call on acct ${account}, ${amount} still due by ${deadlineText}. If not met, positions may be liquidated.`
      : `MARGIN CALL on acct ${account}: ${amount} due by ${deadlineText}. If not met, positions may be liquidated.`,
    smsOptionsLead: "To cure:",
    subject: reminder
      ? `Reminder: margin call on account ${account}, ${amount} due by ${deadlineText}`
      : `Margin call on account ${account}: ${amount} due by ${deadlineText}`,
    body: [
      reminder
        ? `This is a reminder that the margin call on your account ${account} is still open.`
        : `Your account ${account} is below its maintenance margin requirement, and we are issuing a margin call.`,
      [`Amount due: ${amount}`, ...deadlineLines(deadlineAt, recipient)].join("\n"),
      ...optionLines(options, "Any one of the following meets the call:"),
      consequence,
    ],
  };
}

function warningTexts(ctx: Context): Texts {
  const { payload, account, options } = ctx;
  const percent = payload.marginRatio === null ? null : formatRatioPercent(payload.marginRatio);
  const level =
    percent === null
      ? "is close to its maintenance margin requirement"
      : `is close to its maintenance margin requirement: its equity is ${percent} of the requirement`;
  return {
    smsHead: `Margin warning: acct ${account} ${level}. If it falls below 100%, a margin call may be issued.`,
    smsOptionsLead: "To reduce the risk:",
    subject: `Margin warning: account ${account} is near its maintenance requirement`,
    body: [
      `Your account ${account} ${level}. This is not a margin call, but if it falls below 100%, a margin call may be issued.`,
      ...optionLines(options, "To move away from the requirement, you can:"),
    ],
  };
}

function curedTexts(ctx: Context): Texts {
  const { payload, account, callReference } = ctx;
  const call = callReference === null ? "The margin call" : `Margin call ${callReference}`;
  const how =
    payload.met === "DEPOSIT"
      ? " by your deposit"
      : payload.met === "MARKET"
        ? ": the account is back above its requirement"
        : payload.met === "WAIVED"
          ? ": the small remainder is waived"
          : "";
  return {
    smsHead: `${call} on acct ${account} is met${how}. No further action is needed.`,
    smsOptionsLead: null,
    subject: `Margin call met on account ${account}`,
    body: [`${call} on your account ${account} is met${how}. No further action is needed.`],
  };
}

function liquidationNoticeTexts(ctx: Context): Texts {
  const { payload, recipient, account, callReference } = ctx;
  const call = callReference === null ? "the margin call" : `margin call ${callReference}`;
  const due =
    payload.amountDue === null ? "" : ` (${formatMoney(payload.amountDue, recipient.currency)} due)`;
  const amountLine =
    payload.amountDue === null
      ? []
      : [`The amount due was ${formatMoney(payload.amountDue, recipient.currency)}.`];
  if (payload.reason === "HARD_FLOOR") {
    return {
      smsHead: `LIQUIDATION on acct ${account}: its equity fell below the hard floor of its margin requirement, so positions are being liquidated now under ${call}${due}.`,
      smsOptionsLead: null,
      subject: `Positions are being liquidated on account ${account}: below the hard floor`,
      body: [
        `The equity of your account ${account} fell below the hard floor of its margin requirement. Below that level the account is liquidated at once, before the deadline of ${call}, and positions are being liquidated now.`,
        ...amountLine,
      ],
    };
  }
  return {
    smsHead: `LIQUIDATION on acct ${account}: ${call}${due} has not been met. Positions are being liquidated to meet it.`,
    smsOptionsLead: null,
    subject: `Positions are being liquidated on account ${account}`,
    body: [
      `${capitalise(call)} on your account ${account} has not been met, and positions in the account are being liquidated to meet it.`,
      ...amountLine,
    ],
  };
}

function liquidationCompleteTexts(ctx: Context): Texts {
  const { payload, recipient, account, callReference } = ctx;
  const call = callReference === null ? "the margin call" : `margin call ${callReference}`;
  const loss =
    payload.loss === undefined || payload.loss === null
      ? null
      : formatMoney(payload.loss, recipient.currency);
  return {
    smsHead:
      `Liquidation complete on acct ${account}: positions were liquidated to meet ${call}.` +
      (loss === null ? "" : ` The account has a deficit of ${loss}.`),
    smsOptionsLead: null,
    subject: `Liquidation complete on account ${account}${loss === null ? "" : `: deficit of ${loss}`}`,
    body: [
      `The liquidation of positions in your account ${account} to meet ${call} is complete.`,
      ...(payload.sold?.length
        ? [`${payload.sold.map((line) => soldText(line, recipient.currency)).join(".\n")}.`]
        : []),
      ...(loss === null
        ? []
        : [
            `The proceeds did not cover the account's debt: a deficit of ${loss} remains. Please contact us to settle it.`,
          ]),
    ],
  };
}

function texts(ctx: Context): Texts {
  const notice = ctx.payload.notice;
  switch (notice) {
    case "WARNING":
      return warningTexts(ctx);
    case "CALL":
      return callTexts(ctx, false);
    case "REMINDER":
      return callTexts(ctx, true);
    case "CALL_INCREASED":
      return increasedTexts(ctx);
    case "CURED":
      return curedTexts(ctx);
    case "LIQUIDATION_NOTICE":
      return liquidationNoticeTexts(ctx);
    case "LIQUIDATION_COMPLETE":
      return liquidationCompleteTexts(ctx);
    default: {
      const unknown: never = notice;
      throw new TypeError(`unknown notice kind: ${JSON.stringify(unknown)}`);
    }
  }
}

/** The SMS: every option if it fits, else the first and a pointer to the email, always GSM-7 and ≤ 459. */
function fitSms(head: string, lead: string | null, options: readonly string[], tail: string): string {
  const candidates: string[] = [];
  const first = options[0];
  if (lead === null || first === undefined) {
    candidates.push(`${head} ${tail}`);
  } else {
    candidates.push(`${head} ${lead} ${options.join("; or ")}. ${tail}`);
    if (options.length > 1) candidates.push(`${head} ${lead} ${first}. ${MORE_OPTIONS_BY_EMAIL} ${tail}`);
    candidates.push(`${head} Cure options by email. ${tail}`);
  }
  for (const candidate of candidates) {
    const text = toGsm7(candidate);
    if (gsm7Septets(text) <= SMS_MAX_SEPTETS) return text;
  }
  return clipSeptets(toGsm7(candidates[candidates.length - 1] ?? ""), SMS_MAX_SEPTETS);
}

export function renderNotice(payload: NoticePayload, recipient: Recipient): RenderedNotice {
  const ctx: Context = {
    payload,
    recipient,
    account: maskAccountId(payload.accountId),
    reference: maskReference(payload.notificationId, payload.accountId),
    callReference: payload.callId === null ? null : maskReference(payload.callId, payload.accountId),
    options: usefulOptions(payload.cureOptions, recipient.currency),
  };
  const rendered = texts(ctx);
  const name = recipient.borrowerName?.replace(/\s+/g, " ").trim();
  const greeting = name ? `Dear ${name},` : "Dear client,";
  const emailText = [
    greeting,
    ...rendered.body,
    `Reference: ${ctx.reference}${ctx.callReference === null ? "" : `\nCall: ${ctx.callReference}`}\nPlease quote the reference if you contact us about this notice.`,
  ].join("\n\n");
  return {
    sms: fitSms(rendered.smsHead, rendered.smsOptionsLead, ctx.options, `Ref ${ctx.reference}`),
    emailSubject: rendered.subject.replace(/\s+/g, " ").trim(),
    emailText: `${emailText}\n`,
  };
}
