import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "bin", "margin-call.mjs");
const EXAMPLE = join(ROOT, "docs", "snapshots", "crypto-called.json");

function cli(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    input,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// biome-ignore lint/suspicious/noExplicitAny: the tests break parsed JSON on purpose, field by field.
type Snapshot = any;

const example = (): Snapshot => JSON.parse(readFileSync(EXAMPLE, "utf8"));

describe("margin-call evaluate", () => {
  it("prints the valuation, triggers, call, cure options and transition as JSON", () => {
    const { status, stdout } = cli(["evaluate", EXAMPLE]);
    expect(status).toBe(0);
    const report = JSON.parse(stdout);
    // BTC marks 52010 / 51990 / 52005.50 → median 52005.50; ETH 2405.10 / 2404.90 → 2405.00.
    expect(report.prices.BTC.price).toBe("52005.5");
    expect(report.prices.ETH.price).toBe("2405");
    // Equity = −58,000 + 1.25 × 52,005.50 + 6 × 2,405 + 0.5 × (52,005.50 − 64,250.50) = 15,314.375 → 15,314.38.
    expect(report.valuation.equity).toBe("15314.38");
    expect(report.valuation.marginRatio).toBe("1.036874");
    expect(report.transition).toMatchObject({ from: "HEALTHY", to: "WARNING", version: 1 });
    expect(report.transition.effects.map((effect: { kind: string }) => effect.kind)).toEqual([
      "AUDIT",
      "NOTIFY",
    ]);
    expect(report.triggers.map((trigger: { asset: string }) => trigger.asset)).toEqual(["BTC", "ETH"]);
    expect(report.call).toMatchObject({ inBreach: false, amount: "0.00" });
    expect(report.cureOptions[0]).toEqual({ kind: "DEPOSIT", amount: "67.72", currency: "USD" });
  });

  it("reads standard input and calls the account once BTC falls", () => {
    const snapshot = example();
    for (const price of snapshot.prices) if (price.asset === "BTC") price.price = "51800.00";
    const { status, stdout } = cli(["evaluate", "-"], JSON.stringify(snapshot));
    expect(status).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.call.inBreach).toBe(true);
    expect(report.transition.to).toBe("CALLED");
    const notice = report.transition.effects.find((effect: { kind: string }) => effect.kind === "NOTIFY");
    expect(notice).toMatchObject({
      notice: "CALL",
      amountDue: report.call.amount,
      deadlineAt: "2026-11-25T12:00:00.000Z",
    });
    expect(Number.isNaN(Number(report.call.amount))).toBe(false);
    expect(report.liquidationPlan.steps.length).toBeGreaterThan(0);
  });

  it("explains the valuation line by line", () => {
    const { status, stdout } = cli(["evaluate", EXAMPLE, "--explain"]);
    expect(status).toBe(0);
    expect(stdout).toMatch(/holding BTC\s+1\.25\s+52005\.5\s+65006\.88/);
    expect(stdout).toContain("margin ratio                     1.036874");
    expect(stdout).toContain("Transition: HEALTHY → WARNING");
  });

  it.each([
    [
      "a number for money",
      (s: Snapshot) => {
        s.account.cash = -58000;
      },
      "$.account.cash: must be a decimal string",
    ],
    [
      "an exponent",
      (s: Snapshot) => {
        s.account.holdings[0].quantity = "1e2";
      },
      "$.account.holdings[0].quantity: must be a canonical decimal string",
    ],
    [
      "a bad policy field",
      (s: Snapshot) => {
        s.policy.call.exitBuffer = "0.5";
      },
      "$.policy.call.exitBuffer: must not exceed call.restoreBuffer",
    ],
    [
      "a tier rule break",
      (s: Snapshot) => {
        s.policy.assets.BTC.longTiers[1].maintenanceAmount = "7000";
      },
      "$.policy.assets.BTC.longTiers[1].maintenanceAmount: must be 7500",
    ],
    [
      "a missing timestamp",
      (s: Snapshot) => {
        delete s.now;
      },
      "$.now:",
    ],
    [
      "an unpriced asset",
      (s: Snapshot) => {
        s.account.holdings.push({ asset: "SOL", quantity: "3" });
      },
      "asset SOL is not in policy",
    ],
  ])("rejects %s with its JSON path and reason, exit 2", (_name, mutate, expected) => {
    const snapshot = example();
    mutate(snapshot);
    const { status, stdout, stderr } = cli(["evaluate"], JSON.stringify(snapshot));
    expect(status).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain(expected);
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  it("rejects input that is not JSON", () => {
    const { status, stderr } = cli(["evaluate"], "{ not json");
    expect(status).toBe(2);
    expect(stderr).toMatch(/^\$: not valid JSON/);
  });
});

describe("margin-call local", () => {
  it("takes a negative quantity (a loan) as a value, and says how to start the engine when none runs", () => {
    const { status, stdout, stderr } = spawnSync(
      process.execPath,
      [CLI, "local", "holding", "ACC-1", "USD", "-58000.00"],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
        env: { ...process.env, MARGIN_CALL_SESSION_DIR: "/nonexistent" },
      },
    );
    // No session here: the arguments parse, and the error is the missing engine, not "-58000.00".
    expect(stderr).not.toMatch(/Unknown option/);
    expect(stdout).toBe("");
    expect(status).toBe(2);
    expect(stderr).toContain("start one with: npm start -- --engine-only");
  });
});

describe("margin-call evaluate on an open call", () => {
  // The stock on margin of test/unit/fair-calls.test.ts: called for 167.65 at $66.66, 1,000 paid, $60.40 at
  // the deadline (out of breach, below the cure line): the call is met by the deposit.
  const policyDocument = {
    policyId: "reg-t",
    version: 1,
    currency: "USD",
    currencyScale: 2,
    assets: {
      XYZ: {
        quantityScale: 0,
        priceScale: 2,
        haircut: "0",
        longTiers: [{ notionalFloor: "0", maintenanceRate: "0.25", initialRate: "0.5" }],
      },
    },
    warning: { cushion: "0.10" },
    call: {
      restoreBuffer: "0.05",
      exitBuffer: "0.05",
      minimumTransferAmount: "0",
      threshold: "0",
      curePeriodSeconds: 3600,
      hardFloorRatio: "0.5",
      metBy: "EQUITY",
    },
    deposits: { minimumCureAmount: "0", maxPauseSeconds: 1800 },
    liquidation: { limitPriceSlippage: "0.02", dustNotional: "0", retrySeconds: 300, maxAttempts: 3 },
    prices: { maxAgeSeconds: 60, maxDivergence: "0.05", minimumSources: 1, haltGraceSeconds: 0 },
  };
  const state = {
    accountId: "acct-1",
    status: "CALLED",
    version: 1,
    since: "2026-11-24T12:00:00.000Z",
    call: {
      callId: "acct-1:call:1",
      callNotificationId: "acct-1:v1:1:call",
      issuedAt: "2026-11-24T12:00:00.000Z",
      deadlineAt: "2026-11-24T13:00:00.000Z",
      amountDue: "167.65",
      amountCalled: "167.65",
      remindersSent: 0,
      liquidationAttempts: 0,
      liquidationRequestId: null,
      liquidationRequestedAt: null,
      liquidationExhaustedAt: null,
      hardFloorSince: null,
      closure: null,
    },
    callsIssued: 1,
    halt: null,
    resumedAt: null,
    loss: null,
  };
  const snapshot = (now: string, paid: boolean) => ({
    now,
    policy: policyDocument,
    account: {
      accountId: "acct-1",
      cash: paid ? "-9000" : "-10000",
      holdings: [{ asset: "XYZ", quantity: "200" }],
      settledDeposits: paid
        ? [{ depositId: "wire-1", amount: "1000.00", settledAt: "2026-11-24T12:10:00.000Z" }]
        : [],
    },
    prices: [{ asset: "XYZ", price: paid ? "60.40" : "66", asOf: now }],
    state,
  });

  it("shows how calls are met and how the closed call was met, in the JSON", () => {
    const { status, stdout } = cli(
      ["evaluate", "-"],
      JSON.stringify(snapshot("2026-11-24T13:00:00.000Z", true)),
    );
    expect(status).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.call.metBy).toBe("EQUITY");
    expect(report.openCall).toMatchObject({
      callId: "acct-1:call:1",
      amountCalled: "167.65",
      paid: "1000.00",
    });
    expect(report.closedCall).toMatchObject({ callId: "acct-1:call:1", how: "DEPOSIT", paid: "1000.00" });
    expect(report.transition).toMatchObject({ from: "CALLED", to: "CURED" });
  });

  it("says in --explain what is still due now", () => {
    // At $66 before the deadline, nothing paid: A = 3,200, target 3,465: 265.00 restores it, but paying the
    // 167.65 the call asked meets it.
    const { status, stdout } = cli(
      ["evaluate", "-", "--explain"],
      JSON.stringify(snapshot("2026-11-24T12:30:00.000Z", false)),
    );
    expect(status).toBe(0);
    expect(stdout).toContain("Open call acct-1:call:1: 167.65 USD called");
    expect(stdout).toContain("still due now 167.65 USD (met by EQUITY");
    expect(stdout).toContain("the deposit that restores the target is 265.00 USD");
    const closed = cli(
      ["evaluate", "-", "--explain"],
      JSON.stringify(snapshot("2026-11-24T13:00:00.000Z", true)),
    );
    expect(closed.stdout).toContain("call met by DEPOSIT: called 167.65, due 167.65, paid 1000.00 USD");
  });
});
