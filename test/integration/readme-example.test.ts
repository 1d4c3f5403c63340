/**
 * The README's engine-only example, run command by command in its own order through `margin-call local`
 * against the deployed handlers on DynamoDB Local: the account is called, the deposit meets the call, and
 * nothing is liquidated. The same account written item by item, the loan before the collateral, is
 * called but not liquidated either.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runLocal } from "../../functions/cli/local-commands.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";

const README = fileURLToPath(new URL("../../README.md", import.meta.url));

let p: Pipeline;
let sessionDir: string;

beforeAll(async () => {
  p = await startPipeline(import.meta.url, new Date().toISOString());
  sessionDir = mkdtempSync(join(tmpdir(), "margin-call-readme-"));
  writeFileSync(
    join(sessionDir, "session.json"),
    JSON.stringify({ endpoint: p.db.endpoint, accessKeyId: p.db.accessKeyId }),
  );
  vi.stubEnv("MARGIN_CALL_SESSION_DIR", sessionDir);
  vi.spyOn(console, "log").mockImplementation(() => {});
});
afterAll(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(sessionDir, { recursive: true, force: true });
  await p?.close();
});

/** The `npx margin-call local` lines of the README's first block that has them, as argument lists. */
function readmeExample(): string[][] {
  const block = [...readFileSync(README, "utf8").matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((match) => match[1] ?? "")
    .find((body) => body.includes("npx margin-call local"));
  if (!block) throw new Error("the README has no margin-call local example");
  return block
    .split("\n")
    .filter((line) => line.startsWith("npx margin-call local "))
    .map((line) => line.replace("npx margin-call local ", "").trim().split(/\s+/));
}

let sweeps = 0;

/**
 * Runs one command as a second terminal would, then lets the engine work at the wall clock: the streams,
 * and the scheduled sweep (every minute when deployed), which values an account its first write could not
 * (its collateral had no price yet).
 */
async function run(args: string[]): Promise<void> {
  expect(await runLocal(args), args.join(" ")).toBe(0);
  p.setNow(new Date().toISOString());
  await p.drain();
  const sweep = await p.handler<Record<string, unknown>>("Sweep");
  await sweep({ id: `sweep-${++sweeps}`, time: p.now() });
  await p.drain();
}

const liquidationRequests = (accountId: string) =>
  p.stub.events.filter(
    (event) =>
      event.detailType === "LiquidationRequested" && JSON.parse(event.detail).accountId === accountId,
  );

describe("the README's engine-only example", () => {
  it("calls the account, meets the call with the settled deposit, and liquidates nothing", async () => {
    const commands = readmeExample();
    expect(commands.map((args) => args[0])).toEqual([
      "profile",
      "holding",
      "price",
      "price",
      "deposit",
      "state",
    ]);
    const deposit = commands.findIndex((args) => args[0] === "deposit");
    for (const args of commands.slice(0, deposit)) await run(args);
    const called = await p.callState("ACC-1");
    expect(called?.status).toBe("CALLED");
    // 1.25 BTC at 52,005 is 65,006.25, 58,505.625 after the 10% haircut: A = 2,905.625 against
    // M = 5% = 3,250.3125, ratio 0.894; the target 3,412.828125 makes a call of 507.21.
    expect(called?.call?.amountDue).toBe("507.21");
    for (const args of commands.slice(deposit)) await run(args);
    const met = await p.callState("ACC-1");
    expect(met?.call?.closure).toMatchObject({ how: "DEPOSIT", amountCalled: "507.21", paid: "600.00" });
    expect(liquidationRequests("ACC-1")).toEqual([]);
    const losses = (await p.scan("Outbox")).filter((item) => item.kind === "RECORD_LOSS");
    expect(losses).toEqual([]);
  });

  it("liquidates nothing when the same account is written item by item, the loan first", async () => {
    await run(["profile", "ACC-2", "--phone", "+12125550143"]);
    await run(["holding", "ACC-2", "USD", "-55600.00"]);
    // For a moment the account is a loan with nothing against it: called at once, below the hard floor.
    const torn = await p.callState("ACC-2");
    expect(torn?.status).toBe("CALLED");
    expect(torn?.call?.hardFloorSince).not.toBeNull();
    await run(["holding", "ACC-2", "BTC", "1.25"]);
    await run(["price", "BTC", "52000.00", "--source", "a"]);
    await run(["price", "BTC", "52010.00", "--source", "b"]);
    const whole = await p.callState("ACC-2");
    expect(whole?.call?.hardFloorSince).toBeNull();
    expect(liquidationRequests("ACC-2")).toEqual([]);
    const notices = p.stub.published
      .filter((message) => message.messageAttributes.notificationId?.stringValue?.startsWith("ACC-2"))
      .map((message) => message.messageAttributes.notice?.stringValue);
    expect(notices).not.toContain("LIQUIDATION_NOTICE");
  });
});
