/**
 * Where an SMS may go: an E.164 number is checked, its country calling code found, premium-rate and
 * international-network ranges refused, and the policy's `notices.smsCountryCodes` applied. Pure.
 * See docs/notifications.md, "Which numbers get an SMS".
 */

export type SmsDestination = { ok: true; countryCode: string } | { ok: false; reason: string };

/** Expands a prefix and its assigned last digits: `codes("21", "12368")` is 211, 212, 213, 216, 218. */
function codes(prefix: string, lastDigits: string): string[] {
  return [...lastDigits].map((digit) => `${prefix}${digit}`);
}

/**
 * Every assigned E.164 country calling code, from the ITU-T list of assigned country codes (the annex to
 * the ITU Operational Bulletin, https://www.itu.int/pub/T-SP-E.164D). The codes are prefix-free: no code
 * starts another, so at most one of a number's first 1, 2 or 3 digits is a code, and the one found is exact.
 * Spare and reserved codes are left out. A shared code counts as one: "1" is the whole North American
 * Numbering Plan (the US and its territories, Canada, Bermuda and many Caribbean countries), "7" Russia
 * and Kazakhstan, "262" Réunion and Mayotte, "599" Curaçao and the Caribbean Netherlands.
 */
export const ASSIGNED_COUNTRY_CODES: ReadonlySet<string> = new Set([
  ...["1", "7"],
  // Zone 2: Africa and some Atlantic islands.
  ...["20", "27"],
  ...codes("21", "12368"),
  ...codes("22", "0123456789"),
  ...codes("23", "0123456789"),
  ...codes("24", "0123456789"),
  ...codes("25", "012345678"),
  ...codes("26", "0123456789"),
  ...codes("29", "01789"),
  // Zones 3 and 4: Europe.
  ...["30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49"],
  ...codes("35", "0123456789"),
  ...codes("37", "0123456789"),
  ...codes("38", "01235679"),
  ...codes("42", "013"),
  // Zone 5: the Americas outside the NANP.
  ...["51", "52", "53", "54", "55", "56", "57", "58"],
  ...codes("50", "0123456789"),
  ...codes("59", "0123456789"),
  // Zone 6: South-East Asia and Oceania.
  ...["60", "61", "62", "63", "64", "65", "66"],
  ...codes("67", "02345679"),
  ...codes("68", "012356789"),
  ...codes("69", "012"),
  // Zone 8: East Asia and global services.
  ...["81", "82", "84", "86"],
  ...codes("80", "08"),
  ...codes("85", "02356"),
  ...codes("87", "08"),
  ...codes("88", "012368"),
  // Zone 9: West, Central and South Asia, and the Middle East.
  ...["90", "91", "92", "93", "94", "95", "98"],
  ...codes("96", "012345678"),
  ...codes("97", "012345679"),
  ...codes("99", "1234568"),
]);

/**
 * Refused whatever `smsCountryCodes` says. None is a borrower's mobile, and each is where SMS pumping (toll
 * fraud: traffic sent to numbers whose operator shares the termination fee) sends a bill:
 * - 979: ITU International Premium Rate Service. The sender pays a premium by design.
 * - 808: ITU International Shared Cost Service. A service number, part of its cost passed to the caller.
 * - 881: Global Mobile Satellite System; 882 and 883: International Networks. Numbers of no country,
 *   among the most expensive to reach, and the ranges most often named in SMS pumping and IRSF reports.
 * The same holds for NANP area code 900 (+1 900), the plan's premium-rate service code.
 */
const REFUSED_RANGES: ReadonlyMap<string, string> = new Map([
  ["979", "+979 is the ITU International Premium Rate Service"],
  ["808", "+808 is the ITU International Shared Cost Service"],
  ["881", "+881 is the Global Mobile Satellite System, a network of no country"],
  ["882", "+882 is an ITU International Network, of no country"],
  ["883", "+883 is an ITU International Network, of no country"],
  ["1900", "+1 900 is the NANP premium-rate service code"],
]);

/** The country calling code that starts these digits (no "+"), or null when none is assigned. */
function countryCodeOf(digits: string): string | null {
  for (const length of [1, 2, 3]) {
    const prefix = digits.slice(0, length);
    if (ASSIGNED_COUNTRY_CODES.has(prefix)) return prefix;
  }
  return null;
}

/**
 * Whether an SMS may go to `phone`, and its country code. Refuses, with a reason that does not repeat the
 * number (the reason is recorded, the number is personal data): a number that is not E.164 ("+", then 8
 * to 15 digits, the first 1-9), one with no assigned country code, a NANP number without its 10 digits, a
 * premium-rate or international-network range, and a country not in `allowedCountryCodes`. A null list
 * allows every country; an empty one allows none.
 */
export function checkSmsDestination(
  phone: string,
  allowedCountryCodes: readonly string[] | null,
): SmsDestination {
  if (!/^\+[1-9][0-9]{7,14}$/.test(phone)) {
    return { ok: false, reason: 'not an E.164 number: "+", then 8 to 15 digits, the first 1-9' };
  }
  const digits = phone.slice(1);
  const countryCode = countryCodeOf(digits);
  if (countryCode === null) {
    return { ok: false, reason: "the number starts with no assigned E.164 country code" };
  }
  if (countryCode === "1" && digits.length !== 11) {
    return { ok: false, reason: "a NANP (+1) number has exactly 10 digits after the country code" };
  }
  const refused = REFUSED_RANGES.get(digits.slice(0, 3)) ?? REFUSED_RANGES.get(digits.slice(0, 4));
  if (refused !== undefined) {
    return { ok: false, reason: `${refused}: premium-rate and SMS-pumping ranges never get an SMS` };
  }
  if (allowedCountryCodes !== null && !allowedCountryCodes.includes(countryCode)) {
    return { ok: false, reason: `country code +${countryCode} is not in notices.smsCountryCodes` };
  }
  return { ok: true, countryCode };
}
