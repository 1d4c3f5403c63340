/**
 * How the notices write figures: decimal strings grouped in thousands without losing a digit, money with
 * its currency, the margin ratio as a percentage (rounded down, so health is never overstated), masked
 * account references, and instants in the borrower's time zone. Pure: no clock, no I/O.
 */
import { Dec, Rounding } from "../domain/money.ts";

// ---------------------------------------------------------------------------------------------------------
// Decimal strings

const DECIMAL_STRING = /^([+-]?)(\d+)(?:\.(\d+))?$/;

export function parseDecimal(
  text: string,
  what: string,
): { negative: boolean; integer: string; fraction: string } {
  const match = typeof text === "string" ? DECIMAL_STRING.exec(text) : null;
  if (!match) throw new RangeError(`${what}: not a decimal string: ${JSON.stringify(text)}`);
  const integer = (match[2] ?? "0").replace(/^0+(?=\d)/, "");
  const fraction = match[3] ?? "";
  const zero = /^0*$/.test(integer + fraction);
  return { negative: match[1] === "-" && !zero, integer, fraction };
}

/**
 * Groups the integer part of a decimal string in thousands, on the string: every digit is kept, whatever
 * the size. "1234567.89" gives "1,234,567.89"; "-12345678901234567890.12" gives "-12,345,678,901,234,567,890.12".
 */
export function formatDecimal(text: string): string {
  const { negative, integer, fraction } = parseDecimal(text, "amount");
  const grouped = integer.replace(/\B(?=(\d{3})+$)/g, ",");
  return `${negative ? "-" : ""}${grouped}${fraction ? `.${fraction}` : ""}`;
}

export function formatMoney(text: string, currency: string): string {
  return `${formatDecimal(text)} ${currency}`;
}

export function isZero(text: string, what: string): boolean {
  const { integer, fraction } = parseDecimal(text, what);
  return /^0*$/.test(integer + fraction);
}

/** Minor units of an ISO 4217 currency (2 for USD, 0 for JPY); 2 for codes Intl does not know (USDT). */
export function minorUnits(currency: string): number {
  try {
    return (
      new Intl.NumberFormat("en-US", { style: "currency", currency }).resolvedOptions()
        .maximumFractionDigits ?? 2
    );
  } catch {
    return 2;
  }
}

/** An approximate value rounded to the currency's minor units (HALF_EVEN), grouped. */
export function formatApproximate(text: string, currency: string): string {
  parseDecimal(text, "notional");
  const rounded = new Dec(text).toFixed(minorUnits(currency), Rounding.HALF_EVEN);
  return formatMoney(rounded, currency);
}

/** The margin ratio as a percentage with 2 places, rounded towards -infinity: "0.964123" gives "96.41%". */
export function formatRatioPercent(ratio: string): string {
  parseDecimal(ratio, "margin ratio");
  return `${formatDecimal(new Dec(ratio).times(100).toFixed(2, Rounding.FLOOR))}%`;
}

// ---------------------------------------------------------------------------------------------------------
// Identifiers

/** The last 4 characters of the account id: "ACC-000234" gives "...0234". */
export function maskAccountId(accountId: string): string {
  return `...${accountId.slice(-4)}`;
}

/** An identifier with every occurrence of the full account id replaced by its masked form. */
export function maskReference(reference: string, accountId: string): string {
  return accountId === "" ? reference : reference.split(accountId).join(maskAccountId(accountId));
}

// ---------------------------------------------------------------------------------------------------------
// Instants

function instantOf(iso: string): Date {
  const millis = typeof iso === "string" ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(millis))
    throw new RangeError(`deadlineAt: not an ISO-8601 instant: ${JSON.stringify(iso)}`);
  return new Date(millis);
}

function dateTimeFormat(timeZone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat("en-US", {
    timeZone,
    timeZoneName: "short",
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
}

/** The zone actually used: the recipient's if Intl knows it, else UTC. */
export function effectiveTimeZone(timeZone: string): string {
  try {
    return dateTimeFormat(timeZone).resolvedOptions().timeZone;
  } catch {
    return "UTC";
  }
}

/**
 * An instant in a time zone, with the zone's abbreviation or offset so that it is unambiguous:
 * "Wed 25 Nov 2026, 07:00 EST" in America/New_York, "Wed 25 Nov 2026, 21:00 GMT+9" in Asia/Tokyo.
 */
export function formatInstant(iso: string, timeZone: string): string {
  const parts = dateTimeFormat(effectiveTimeZone(timeZone)).formatToParts(instantOf(iso));
  const part = (type: Intl.DateTimeFormatPartTypes): string =>
    parts.find((part) => part.type === type)?.value ?? "";
  return `${part("weekday")} ${part("day")} ${part("month")} ${part("year")}, ${part("hour")}:${part("minute")} ${part("timeZoneName")}`;
}
