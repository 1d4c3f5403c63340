/**
 * AccountChanges runs the records of a batch at once across accounts, in the stream's order within one
 * account, at most REVALUE_CONCURRENCY accounts at a time (handlers/account-changes.ts `perAccountLanes`).
 */
import { describe, expect, it } from "vitest";
import { perAccountLanes } from "../../functions/handlers/account-changes.ts";

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe("perAccountLanes", () => {
  it("keeps each account's records in order and never runs more than the limit at once", async () => {
    const lane = perAccountLanes(3);
    const log: string[] = [];
    let running = 0;
    let most = 0;
    const records = Array.from({ length: 40 }, (_, index) => ({ account: `A${index % 7}`, index }));
    await Promise.all(
      records.map(({ account, index }) =>
        lane(account, async () => {
          running += 1;
          most = Math.max(most, running);
          // Later records of an account finish sooner if run alone: order must come from the lane.
          for (let wait = 0; wait < 40 - index; wait += 8) await tick();
          log.push(`${account}:${index}`);
          running -= 1;
        }),
      ),
    );
    expect(log).toHaveLength(40);
    expect(most).toBe(3);
    for (let account = 0; account < 7; account += 1) {
      const seen = log
        .filter((entry) => entry.startsWith(`A${account}:`))
        .map((e) => Number(e.split(":")[1]));
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
    }
  });

  it("goes on with an account's next record after one fails, and reports the failure to its caller", async () => {
    const lane = perAccountLanes(2);
    const first = lane("A", async () => {
      throw new Error("poison");
    });
    const second = lane("A", async () => "next");
    await expect(first).rejects.toThrow("poison");
    await expect(second).resolves.toBe("next");
  });
});
