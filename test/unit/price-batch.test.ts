/**
 * A PriceTicks batch moves each asset's range once: with its last valid tick (adapters/price-range.ts
 * `lastTickPerAsset`). Earlier ticks of the asset in the batch would read the same sources and cover the
 * same range again; a malformed last record leaves the move to the valid one before it.
 */
import { readFileSync } from "node:fs";
import type { DynamoDBRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { toItem } from "../../functions/adapters/codec.ts";
import { lastTickPerAsset } from "../../functions/adapters/price-range.ts";
import { parsePolicies } from "../../functions/adapters/settings.ts";
import { price } from "../support/upstream.ts";

const NOW = "2026-11-24T12:00:00.000Z";
const engine = {
  policies: parsePolicies(readFileSync(new URL("../../lib/config/policies.json", import.meta.url), "utf8")),
  now: () => NOW,
};

const record = (name: string, item: Record<string, unknown>, eventName: "INSERT" | "MODIFY" = "MODIFY") =>
  ({ eventID: name, eventName, dynamodb: { NewImage: toItem(item) as never } }) as DynamoDBRecord;

describe("a batch of ticks", () => {
  it("moves each asset's range with its last valid tick only", () => {
    const records = [
      record("btc-1", price("BTC", "a", "50000.00", NOW)),
      record("eth-1", price("ETH", "a", "3000.00", NOW)),
      record("btc-2", price("BTC", "b", "49000.00", NOW)),
      record("btc-3", price("BTC", "a", "48000.00", NOW)),
      // Malformed: a number where the contract wants a decimal string. It is quarantined, and moves nothing.
      record("eth-2", { ...price("ETH", "b", "2900.00", NOW), price: 2900 }),
    ];
    const moves = [...lastTickPerAsset(engine, records)].map((moved) => moved.eventID).sort();
    expect(moves).toEqual(["btc-3", "eth-1"]);
  });

  it("ignores deletions and ticks from the future", () => {
    const future = new Date(Date.parse(NOW) + 3_600_000).toISOString();
    const records = [
      record("sol-1", price("SOL", "a", "100.00", NOW)),
      record("sol-2", price("SOL", "b", "101.00", future)),
      { eventID: "sol-3", eventName: "REMOVE", dynamodb: {} } as DynamoDBRecord,
    ];
    expect([...lastTickPerAsset(engine, records)].map((moved) => moved.eventID)).toEqual(["sol-1"]);
  });
});
