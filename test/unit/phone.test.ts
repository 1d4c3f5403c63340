import { describe, expect, it } from "vitest";
import { ASSIGNED_COUNTRY_CODES, checkSmsDestination } from "../../functions/notify/phone.ts";

describe("checkSmsDestination", () => {
  it("finds the exact country code of valid NANP, UK, German and Singapore numbers", () => {
    expect(checkSmsDestination("+12125550142", null)).toEqual({ ok: true, countryCode: "1" });
    expect(checkSmsDestination("+442079460958", null)).toEqual({ ok: true, countryCode: "44" });
    expect(checkSmsDestination("+4930901820", null)).toEqual({ ok: true, countryCode: "49" });
    expect(checkSmsDestination("+6565551234", null)).toEqual({ ok: true, countryCode: "65" });
  });

  it("finds one-, two- and three-digit codes by the ITU list, not by a fixed length", () => {
    expect(checkSmsDestination("+79161234567", null)).toEqual({ ok: true, countryCode: "7" });
    expect(checkSmsDestination("+420212345678", null)).toEqual({ ok: true, countryCode: "420" });
    expect(checkSmsDestination("+35312345678", null)).toEqual({ ok: true, countryCode: "353" });
    expect(checkSmsDestination("+886212345678", null)).toEqual({ ok: true, countryCode: "886" });
  });

  it("sends to any country with the null list, and only to listed ones otherwise", () => {
    expect(checkSmsDestination("+4930901820", null)).toEqual({ ok: true, countryCode: "49" });
    expect(checkSmsDestination("+442079460958", ["1", "44"])).toEqual({ ok: true, countryCode: "44" });
    expect(checkSmsDestination("+4930901820", ["1", "44"])).toEqual({
      ok: false,
      reason: "country code +49 is not in notices.smsCountryCodes",
    });
    // A whole code, not a prefix of one: "42" does not allow the Czech Republic (+420).
    expect(checkSmsDestination("+420212345678", ["42"])).toMatchObject({ ok: false });
    expect(checkSmsDestination("+12125550142", [])).toMatchObject({ ok: false });
  });

  it("refuses malformed numbers, and never repeats the number in the reason", () => {
    const malformed = {
      ok: false,
      reason: 'not an E.164 number: "+", then 8 to 15 digits, the first 1-9',
    };
    for (const phone of [
      "",
      "12125550142",
      "+02125550142",
      "+1212555",
      "+1234567890123456",
      "+1 212 555 0142",
      "+1-212-555-0142",
      "++12125550142",
      "+1212555014２",
      "+12125550142\n",
    ]) {
      expect(checkSmsDestination(phone, null), JSON.stringify(phone)).toEqual(malformed);
    }
    expect(checkSmsDestination("+2801234567", null)).toEqual({
      ok: false,
      reason: "the number starts with no assigned E.164 country code",
    });
    expect(checkSmsDestination("+121255501", null)).toEqual({
      ok: false,
      reason: "a NANP (+1) number has exactly 10 digits after the country code",
    });
  });

  it("refuses +979 and the other premium-rate and SMS-pumping ranges whatever the list says", () => {
    expect(checkSmsDestination("+979123456789", null)).toEqual({
      ok: false,
      reason:
        "+979 is the ITU International Premium Rate Service: premium-rate and SMS-pumping ranges never get an SMS",
    });
    expect(checkSmsDestination("+979123456789", ["979"])).toMatchObject({ ok: false });
    for (const phone of ["+80812345678", "+881612345678", "+882161234567", "+883510012345", "+19005550142"]) {
      expect(checkSmsDestination(phone, null), phone).toMatchObject({
        ok: false,
        reason: expect.stringContaining("never get an SMS"),
      });
    }
  });

  it("keeps the country code list prefix-free, as E.164 assigns it", () => {
    const all = [...ASSIGNED_COUNTRY_CODES];
    expect(all.every((code) => /^[1-9][0-9]{0,2}$/.test(code))).toBe(true);
    const prefixed = all.filter((code) => all.some((other) => other !== code && other.startsWith(code)));
    expect(prefixed).toEqual([]);
    for (const code of "1 7 20 27 44 49 65 86 211 290 688 800 979 998".split(" ")) {
      expect(ASSIGNED_COUNTRY_CODES.has(code), code).toBe(true);
    }
    for (const code of "0 28 83 89 210 259 384 671 978 999".split(" ")) {
      expect(ASSIGNED_COUNTRY_CODES.has(code), code).toBe(false);
    }
  });
});
