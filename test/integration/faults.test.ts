/**
 * The crash scenario under the faults a crash brings, through the local runtime (the deployed handlers,
 * the template's settings) and the local AWS endpoint's fault modes. After each run the delivery invariants
 * are checked from the endpoint's own logs (test/support/delivery-invariants.ts), and the test prints what
 * the endpoint injected, so a run that injected nothing cannot pass as proof.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type DemoOptions, type DemoResult, runDemo } from "../../functions/local/demo/run.ts";
import { deliveryViolations } from "../support/delivery-invariants.ts";

const dirs: string[] = [];

async function crash(faults: NonNullable<DemoOptions["faults"]>): Promise<DemoResult> {
  const outputDir = mkdtempSync(join(tmpdir(), "margin-call-faults-"));
  dirs.push(outputDir);
  return runDemo({
    accounts: 100,
    speed: 60,
    minutes: 45,
    seed: 5,
    outputDir,
    log: () => {},
    faults,
    drainMs: 90_000,
  });
}

/** How the notices' channels ended: "sms SENT" → count, and so on. */
function channelCounts(outbox: readonly Record<string, unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of outbox.filter((entry) => entry.kind === "NOTIFY")) {
    for (const key of [`sms ${String(item.smsState)}`, `email ${String(item.emailState)}`]) {
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}

function report(name: string, result: DemoResult, violations: readonly string[]): void {
  const requests = result.endpoint.puts.filter((put) => put.detailType === "LiquidationRequested");
  console.log(
    `${name}: injected ${JSON.stringify(result.injected)}; ` +
      `${result.endpoint.published.length} publishes, ${requests.length} liquidation requests, ` +
      `${result.outbox.filter((item) => item.outcome === "UNDELIVERABLE").length} notices undeliverable ` +
      `(channels ${JSON.stringify(channelCounts(result.outbox))}); ` +
      `${violations.length} violations${violations.length ? `: ${violations.slice(0, 5).join("; ")}` : ""}`,
  );
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("the crash under faults", () => {
  it("keeps every notice before its liquidation when SNS and EventBridge accept and then fail, throttle and lag, and the relay is replaced mid-run", async () => {
    const result = await crash({
      start: (runtime) => {
        runtime.stub.faults.acceptThenFail({ service: "sns", count: 3 });
        runtime.stub.faults.acceptThenFail({ service: "eventbridge", count: 2 });
        runtime.stub.faults.throttle({ service: "sns", perSecond: 3, smsOnly: true });
        runtime.stub.faults.latency({ service: "eventbridge", ms: 50 });
      },
      midway: (runtime) => {
        // A redeploy under new names: the relay's new mapping starts at the oldest record of the stream.
        expect(runtime.replaceFunction("OutboxRelay", "margin-call-local-v2")).toHaveLength(1);
        runtime.stub.faults.acceptThenFail({ service: "sns", count: 2 });
      },
    });
    const violations = deliveryViolations(result.outbox, result.endpoint);
    report("accept-then-fail, throttling, latency, rename", result, violations);
    expect(result.injected.acceptedThenFailed).toEqual({ sns: 5, eventbridge: 2 });
    expect(result.injected.throttled.sns).toBeGreaterThan(0);
    expect(result.endpoint.puts.some((put) => put.detailType === "LiquidationRequested")).toBe(true);
    expect(violations).toEqual([]);
  }, 300_000);

  it("records notices undeliverable and says so on the liquidation when SMS is silently exhausted and SNS is down longer than the delivery deadline", async () => {
    let restore: ReturnType<typeof setInterval> | undefined;
    const result = await crash({
      start: (runtime) => runtime.stub.faults.smsSpendLimit({ maxMessages: 15 }),
      midway: (runtime) => {
        // SNS refuses everything for 20 simulated minutes (measured on the engine's clock, not the wall's):
        // past the 10 minutes a notice has plus the notifier's longest backoff, so the notices of the
        // outage's start pass their deadline while it lasts.
        runtime.stub.faults.throttle({ service: "sns", perSecond: 0 });
        const until = runtime.nowMs() + 20 * 60_000;
        restore = setInterval(() => {
          if (runtime.nowMs() < until) return;
          runtime.stub.faults.throttle({ service: "sns", perSecond: Number.POSITIVE_INFINITY });
          clearInterval(restore);
        }, 100);
      },
    });
    clearInterval(restore);
    const violations = deliveryViolations(result.outbox, result.endpoint);
    report("silent SMS spend limit, SNS outage", result, violations);
    expect(result.injected.smsDropped).toBeGreaterThan(0);
    expect(result.injected.throttled.sns).toBeGreaterThan(0);
    const undeliverable = result.outbox.filter((item) => item.outcome === "UNDELIVERABLE");
    expect(undeliverable.length).toBeGreaterThan(0);
    expect(undeliverable.every((item) => item.whenUndelivered === "LIQUIDATE")).toBe(true);
    expect(violations).toEqual([]);
  }, 300_000);
});
