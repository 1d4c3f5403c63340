/**
 * Two (or more) writers revalue the same account at the same moment against DynamoDB Local: the version
 * condition lets exactly one transition commit; the others re-read and find nothing left to do.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revalueAccount } from "../../functions/adapters/engine.ts";
import { evaluateSnapshot, plain } from "../../functions/domain/snapshot.ts";
import { runtime } from "../../functions/handlers/runtime.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { holding, perpetual, price, profile } from "../support/upstream.ts";

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url);
});
afterAll(async () => {
  await p?.close();
});

describe("concurrent revaluations of one account", () => {
  it("commit exactly one transition; the others re-read, and the audit log has every transition once", async () => {
    const asOf = p.now();
    for (const source of ["a", "b", "c"])
      await p.put("Prices", price("BTC", source, "51800.00", asOf, "0.72"));
    for (const source of ["a", "b"]) await p.put("Prices", price("ETH", source, "2405.00", asOf));
    await p.put("Accounts", profile("ACC-RACE"));
    await p.put("Accounts", holding("ACC-RACE", "USD", "-58000.00"));
    await p.put("Accounts", holding("ACC-RACE", "BTC", "1.25000000"));
    await p.put("Accounts", holding("ACC-RACE", "ETH", "6.00000000"));
    await p.put("Accounts", perpetual("ACC-RACE", "BTC-PERP", "0.500", "64250.50"));

    const rt = runtime();
    const writers = 8;
    const outcomes = await Promise.all(
      Array.from({ length: writers }, (_, writer) =>
        revalueAccount(
          rt,
          "ACC-RACE",
          { type: "REVALUE", cause: "PRICE_TICK", eventId: `writer-${writer}` },
          p.now(),
        ),
      ),
    );
    const transitioned = outcomes.filter((outcome) => outcome.kind === "TRANSITIONED");
    expect(transitioned).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome.kind === "UNCHANGED")).toHaveLength(writers - 1);
    // Some of the losers really did race: they lost a commit and re-read.
    const conflicts = outcomes.reduce(
      (total, outcome) => total + ("conflicts" in outcome ? outcome.conflicts : 0),
      0,
    );
    expect(conflicts).toBeGreaterThan(0);

    const state = await p.callState("ACC-RACE");
    expect(state).toMatchObject({ status: "CALLED", version: 1, callsIssued: 1 });
    const audit = await p.query("AuditLog", "accountId", "ACC-RACE");
    expect(audit.map((entry) => `${entry.from}→${entry.to}`)).toEqual(["HEALTHY→CALLED"]);
    const outbox = (await p.scan("Outbox")).filter((item) => item.accountId === "ACC-RACE");
    expect(outbox.map((item) => item.kind)).toEqual(["NOTIFY"]);
    // The audit entry alone explains the decision: replayed through `margin-call evaluate`'s code, its
    // snapshot gives the same next state and the same effects, to the last digit.
    const replay = evaluateSnapshot(JSON.parse(String(audit[0]?.snapshot)));
    expect(replay.step.next).toEqual(state);
    expect(plain(replay.step.effects.filter((effect) => effect.kind !== "AUDIT"))).toEqual(
      JSON.parse(String(audit[0]?.effects)),
    );
  });
});
