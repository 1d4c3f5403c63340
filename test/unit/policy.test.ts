import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { PolicyError, parsePolicy, parsePolicySet } from "../../functions/domain/policy.ts";
import { policyDocument } from "../support/domain-builders.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const readJson = (...path: string[]): unknown => JSON.parse(readFileSync(join(ROOT, ...path), "utf8"));

/** The issues parsePolicy reports for a document, as `path: message` lines. */
function issuesOf(document: unknown): string[] {
  try {
    parsePolicy(document);
  } catch (error) {
    if (error instanceof PolicyError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
}

describe("policy notices", () => {
  it("validates every shipped policy, none of which has notices, with the defaults", () => {
    const snapshot = readJson("docs", "snapshots", "crypto-called.json") as { policy: unknown };
    const sets = [
      parsePolicySet(readJson("lib", "config", "policies.json"), "policies.json"),
      parsePolicySet(readJson("lib", "config", "demo-policies.json"), "demo-policies.json"),
      parsePolicySet([snapshot.policy], "crypto-called.json"),
    ];
    for (const [policyId, { policy, document }] of sets.flatMap((set) => [...set])) {
      expect(document, policyId).not.toHaveProperty("notices");
      expect(policy.noticeDeliverWithinSeconds, policyId).toBe(600);
      expect(policy.whenNoticeUndelivered, policyId).toBe("LIQUIDATE");
      expect(policy.smsCountryCodes, policyId).toBeNull();
      expect(policy.document.notices, policyId).toEqual({
        deliverWithinSeconds: 600,
        whenUndelivered: "LIQUIDATE",
      });
    }
  });

  it("fills the defaults of an empty or partial notices section", () => {
    const empty = parsePolicy({ ...policyDocument(), notices: {} });
    expect([empty.noticeDeliverWithinSeconds, empty.whenNoticeUndelivered, empty.smsCountryCodes]).toEqual([
      600,
      "LIQUIDATE",
      null,
    ]);
    const partial = parsePolicy({ ...policyDocument(), notices: { whenUndelivered: "HOLD" } });
    expect([partial.noticeDeliverWithinSeconds, partial.whenNoticeUndelivered]).toEqual([600, "HOLD"]);
  });

  it("resolves a full notices section into the typed policy", () => {
    const policy = parsePolicy({
      ...policyDocument(),
      notices: { deliverWithinSeconds: 1, whenUndelivered: "HOLD", smsCountryCodes: ["1", "44", "420"] },
    });
    expect(policy.noticeDeliverWithinSeconds).toBe(1);
    expect(policy.whenNoticeUndelivered).toBe("HOLD");
    expect(policy.smsCountryCodes).toEqual(["1", "44", "420"]);
    expect(parsePolicy({ ...policyDocument(), notices: { smsCountryCodes: [] } }).smsCountryCodes).toEqual(
      [],
    );
  });

  it.each([
    [{ deliverWithinSeconds: 0 }, "$.notices.deliverWithinSeconds"],
    [{ deliverWithinSeconds: 3601 }, "$.notices.deliverWithinSeconds"],
    [{ deliverWithinSeconds: 1.5 }, "$.notices.deliverWithinSeconds"],
    [{ deliverWithinSeconds: "600" }, "$.notices.deliverWithinSeconds"],
    [{ whenUndelivered: "RETRY" }, "$.notices.whenUndelivered"],
    [{ whenUndelivered: "liquidate" }, "$.notices.whenUndelivered"],
    [{ smsCountryCodes: "44" }, "$.notices.smsCountryCodes"],
    [{ smsCountryCodes: ["1", "+44"] }, "$.notices.smsCountryCodes[1]"],
    [{ smsCountryCodes: ["044"] }, "$.notices.smsCountryCodes[0]"],
    [{ smsCountryCodes: ["1234"] }, "$.notices.smsCountryCodes[0]"],
    [{ smsCountryCodes: [44] }, "$.notices.smsCountryCodes[0]"],
    [{ smsCountryCodes: ["1", "44", "1"] }, "$.notices.smsCountryCodes[2]"],
    [
      { smsCountryCodes: Array.from({ length: 51 }, (_, index) => String(index + 1)) },
      "$.notices.smsCountryCodes",
    ],
    [{ deliverWithin: 600 }, "$.notices"],
  ])("refuses notices %j, naming %s", (notices, path) => {
    const issues = issuesOf({ ...policyDocument(), notices });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.startsWith(`${path}: `), issues[0]).toBe(true);
  });

  it("refuses a notices section that is not an object", () => {
    expect(issuesOf({ ...policyDocument(), notices: null })).toEqual([
      expect.stringMatching(/^\$\.notices: /),
    ]);
    expect(issuesOf({ ...policyDocument(), notices: ["HOLD"] })).toEqual([
      expect.stringMatching(/^\$\.notices: /),
    ]);
  });
});

describe("a malformed decimal anywhere in a policy", () => {
  it("is a PolicyError naming the field, never a crash in the checks that compare it", () => {
    const base = policyDocument();
    const tier = { notionalFloor: "0", maintenanceRate: "0.05", initialRate: "0.1" };
    const broken = {
      "$.liquidation.limitPriceSlippage": {
        ...base,
        liquidation: { ...base.liquidation, limitPriceSlippage: "abc" },
      },
      "$.call.hardFloorRatio": { ...base, call: { ...base.call, hardFloorRatio: "1e-1" } },
      "$.call.exitBuffer": { ...base, call: { ...base.call, exitBuffer: "x" } },
      "$.assets.BTC.longTiers[0].maintenanceRate": {
        ...base,
        assets: {
          BTC: {
            quantityScale: 8,
            priceScale: 2,
            haircut: "0.1",
            longTiers: [{ ...tier, maintenanceRate: "five" }],
          },
        },
      },
    };
    for (const [path, document] of Object.entries(broken)) {
      const issues = issuesOf(document);
      expect(
        issues.some((issue) => issue.startsWith(path)),
        `${path}: ${issues.join("; ")}`,
      ).toBe(true);
    }
  });
});

describe("policy cascade", () => {
  it("is optional, takes caps on the policy's assets and in total, and refuses a cap on an asset it does not list", () => {
    expect(parsePolicy(policyDocument()).cascade).toBeUndefined();
    const assets = {
      BTC: {
        quantityScale: 8,
        priceScale: 2,
        haircut: "0.1",
        longTiers: [{ notionalFloor: "0", maintenanceRate: "0.1", initialRate: "0.1" }],
      },
    };
    expect(
      parsePolicy({
        ...policyDocument(),
        assets,
        cascade: { totalNotionalCap: "1000000", assetNotionalCaps: { BTC: "250000" } },
      }).cascade,
    ).toEqual({ windowSeconds: 3600, totalNotionalCap: "1000000", assetNotionalCaps: { BTC: "250000" } });
    expect(issuesOf({ ...policyDocument(), assets, cascade: { assetNotionalCaps: { BTX: "1" } } })).toEqual([
      "$.cascade.assetNotionalCaps.BTX: must be an asset of the policy: a cap on an asset it does not list would cap nothing",
    ]);
  });
});

describe("policy lossWaterfall", () => {
  it("defaults to NONE past the fund when omitted, so every shipped policy behaves as before", () => {
    for (const [policyId, { policy }] of parsePolicySet(
      readJson("lib", "config", "policies.json"),
      "policies.json",
    )) {
      expect(policy.lossWaterfall, policyId).toEqual({
        afterFund: "NONE",
        socialisedBase: "POSITIVE_EQUITY",
      });
    }
    expect(parsePolicy({ ...policyDocument(), lossWaterfall: {} }).lossWaterfall.afterFund).toBe("NONE");
  });

  it("takes ADL and a socialised loss over the holders of the instrument, refuses one over every account, and an unknown field", () => {
    expect(
      parsePolicy({ ...policyDocument(), lossWaterfall: { afterFund: "ADL" } }).lossWaterfall.afterFund,
    ).toBe("ADL");
    expect(
      parsePolicy({
        ...policyDocument(),
        lossWaterfall: { afterFund: "SOCIALISED", socialisedBase: "OPPOSITE_NOTIONAL" },
      }).lossWaterfall,
    ).toEqual({ afterFund: "SOCIALISED", socialisedBase: "OPPOSITE_NOTIONAL" });
    const issue =
      '$.lossWaterfall.socialisedBase: must be "OPPOSITE_NOTIONAL" when afterFund is SOCIALISED: the engine does not value every account of the currency for one loss (docs/liquidation.md, section 9)';
    expect(issuesOf({ ...policyDocument(), lossWaterfall: { afterFund: "SOCIALISED" } })).toEqual([issue]);
    expect(issuesOf({ ...policyDocument(), lossWaterfall: { afterFund: "NONE", cap: "1" } })).toEqual([
      '$.lossWaterfall: Unrecognized key: "cap"',
    ]);
  });
});
