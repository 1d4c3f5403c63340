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
