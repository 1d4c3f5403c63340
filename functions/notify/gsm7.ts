/**
 * The SMS alphabet: GSM-7 basic and extension characters, transliteration of look-alikes, septet counting
 * (extension characters count 2) and clipping to a number of septets. Pure.
 */

// ---------------------------------------------------------------------------------------------------------
// GSM-7

const GSM7_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
);
/** Characters of the GSM-7 extension table: each takes an escape plus itself, 2 septets. */
const GSM7_EXTENSION = new Set("^{}\\[]~|€");

const TRANSLITERATIONS: ReadonlyMap<string, string> = new Map([
  ...[..."\u2018\u2019\u201A\u201B\u2032\u00B4`"].map((c): [string, string] => [c, "'"]),
  ...[..."\u201C\u201D\u201E\u201F\u2033\u00AB\u00BB"].map((c): [string, string] => [c, '"']),
  ...[..."\u2010\u2011\u2012\u2013\u2014\u2015\u2212"].map((c): [string, string] => [c, "-"]),
  ...[..."\t\u00A0\u2002\u2003\u2007\u2008\u2009\u200A\u202F"].map((c): [string, string] => [c, " "]),
  ["\u2026", "..."],
  ["\u2192", "->"],
  ["\u2190", "<-"],
  ["\u2248", "~"],
]);

export function isGsm7(text: string): boolean {
  for (const char of text) if (!GSM7_BASIC.has(char) && !GSM7_EXTENSION.has(char)) return false;
  return true;
}

/** Length in septets of a GSM-7 text (extension characters count 2). */
export function gsm7Septets(text: string): number {
  let septets = 0;
  for (const char of text) septets += GSM7_EXTENSION.has(char) ? 2 : 1;
  return septets;
}

/** Makes any text GSM-7: known look-alikes are transliterated, accents dropped where needed, the rest "?". */
export function toGsm7(text: string): string {
  let out = "";
  for (const char of text) {
    if (GSM7_BASIC.has(char) || GSM7_EXTENSION.has(char)) {
      out += char;
      continue;
    }
    const known = TRANSLITERATIONS.get(char);
    if (known !== undefined) {
      out += known;
      continue;
    }
    const base = char.normalize("NFD")[0] ?? "";
    out += GSM7_BASIC.has(base) ? base : "?";
  }
  return out;
}

export function clipSeptets(text: string, max: number): string {
  if (gsm7Septets(text) <= max) return text;
  let out = "";
  let septets = 0;
  for (const char of text) {
    const cost = GSM7_EXTENSION.has(char) ? 2 : 1;
    if (septets + cost > max - 3) break;
    out += char;
    septets += cost;
  }
  return `${out}...`;
}
