/**
 * A local invocation ends as a Lambda invocation does (functions/local/invocation.ts): at its function's
 * timeout, or when killed, it fails with Lambda's message, and nothing it still tries reaches AWS.
 */
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import type { LocalFunction } from "../../functions/local/deployment.ts";
import {
  currentInvocation,
  guardStoppedInvocations,
  InvocationStopped,
  invoke,
} from "../../functions/local/invocation.ts";

const fn: LocalFunction = { logicalId: "SweepFunction", entry: "x.ts", environment: {}, timeoutSeconds: 120 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client whose every call would fail on the network (port 9, discard): only the guard answers first. */
function guardedClient(): DynamoDBClient {
  const dynamo = new DynamoDBClient({
    endpoint: "http://127.0.0.1:9",
    region: "us-east-1",
    credentials: { accessKeyId: "x", secretAccessKey: "x" },
    maxAttempts: 1,
  });
  guardStoppedInvocations({ dynamo });
  return dynamo;
}

describe("a local invocation", () => {
  it("returns the handler's result, with the template's timeout in its context", async () => {
    const result = await invoke(fn, "Sweep-1", async (context) => {
      expect(currentInvocation()?.requestId).toBe("Sweep-1");
      return context.getRemainingTimeInMillis();
    });
    expect(result).toBeGreaterThan(119_000);
    expect(result).toBeLessThanOrEqual(120_000);
  });

  it("fails at its timeout with Lambda's message, and its late result is dropped", async () => {
    let finished = false;
    const run = invoke(
      fn,
      "Sweep-2",
      async () => {
        await sleep(200);
        finished = true;
        return "late";
      },
      50,
    );
    await expect(run).rejects.toThrow("Sweep-2: Task timed out after 0.05 seconds");
    await sleep(250);
    expect(finished).toBe(true); // the promise ran on, as a process cannot be stopped in Node
  });

  it("refuses every AWS call the handler makes once it was killed, and none before", async () => {
    const dynamo = guardedClient();
    const get = () => dynamo.send(new GetItemCommand({ TableName: "T", Key: { k: { S: "1" } } }));
    let afterKill: unknown;
    const run = invoke(fn, "Sweep-3", async () => {
      const before = await get().catch((error: Error) => error);
      expect(before).not.toBeInstanceOf(InvocationStopped); // it went to the network (and failed there)
      currentInvocation()?.kill("injected: killed");
      afterKill = await get().catch((error: Error) => error);
    });
    await expect(run).rejects.toThrow("Sweep-3: injected: killed");
    await sleep(50);
    expect(afterKill).toBeInstanceOf(InvocationStopped);
    // Outside any invocation the guard lets calls through.
    expect(await get().catch((error: Error) => error)).not.toBeInstanceOf(InvocationStopped);
  });
});
