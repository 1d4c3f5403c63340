/**
 * Keeps docs/events.md and functions/domain/liquidation-events.ts from drifting apart. Each liquidation
 * event (the request, cascade damping, the loss waterfall) has a section with a field table and JSON
 * examples. Every example must satisfy the event's schema, every mutated copy of the first must fail, and
 * the table must list exactly the detail's fields. The builders' details, made from real domain decisions,
 * must satisfy the same schemas, and the request's auction example is the plan the engine makes.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { auctionPrice } from "../../functions/domain/auction.ts";
import { planLiquidation } from "../../functions/domain/calls.ts";
import { breakerActive, circuitBreakerSchema, evaluateBreaker } from "../../functions/domain/cascade.ts";
import { applyFlow, emptyFund } from "../../functions/domain/insurance-fund.ts";
import {
  breakerEvent,
  eventSchema,
  fundFlowEvent,
  LIQUIDATION_EVENT_DETAILS,
  LIQUIDATION_EVENT_TYPES,
  type LiquidationEventType,
  liquidationRequestedSchema,
  scheduleOfStep,
  waterfallEvents,
} from "../../functions/domain/liquidation-events.ts";
import {
  lossWaterfallSchema,
  runWaterfall,
  type WaterfallInput,
} from "../../functions/domain/loss-waterfall.ts";
import { dec } from "../../functions/domain/money.ts";
import { parsePolicy } from "../../functions/domain/policy.ts";
import { plain } from "../../functions/domain/snapshot.ts";
import { valueAccount } from "../../functions/domain/valuation.ts";
import { account, marks } from "../support/domain-builders.ts";

const EVENTS_DOC = readFileSync(new URL("../../docs/events.md", import.meta.url), "utf8");

type Json = Record<string, unknown>;

/** The text of the `### \`<name>\`` section, up to the next heading of level 2 or 3. */
function section(name: string): string {
  const start = EVENTS_DOC.indexOf(`### \`${name}\``);
  if (start < 0) throw new Error(`docs/events.md has no section for ${name}`);
  const rest = EVENTS_DOC.slice(start + 4);
  const end = rest.search(/\n#{2,3} /);
  return end < 0 ? rest : rest.slice(0, end);
}

function examples(name: string): Json[] {
  const found = [...section(name).matchAll(/```json\n([\s\S]*?)```/g)].map(
    (match) => JSON.parse(match[1] ?? "") as Json,
  );
  if (found.length === 0) throw new Error(`the ${name} section has no JSON example`);
  return found;
}

const example = (name: string): Json => examples(name)[0] as Json;

/** The top-level fields the section's table lists (`field`, or `field[]` for an array). */
function tableFields(name: string): string[] {
  return [...section(name).matchAll(/^\| `([A-Za-z-]+)(?:\[\])?` *\|/gm)].map((m) => m[1] ?? "");
}

function detailOf(event: Json): Json {
  return event.detail as Json;
}

function withDetail(event: Json, detail: Json): Json {
  return { ...event, detail };
}

const valid = (name: LiquidationEventType, event: unknown) => eventSchema(name).safeParse(event).success;

describe.each(LIQUIDATION_EVENT_TYPES)("docs/events.md: %s", (name) => {
  it("has examples that satisfy the schema", () => {
    for (const event of examples(name)) {
      const parsed = eventSchema(name).safeParse(event);
      expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    }
  });

  it("lists exactly the detail's fields in its table", () => {
    expect(tableFields(name).sort()).toEqual(Object.keys(LIQUIDATION_EVENT_DETAILS[name].shape).sort());
  });

  it("fails the schema without any one of its fields", () => {
    const event = example(name);
    for (const field of Object.keys(detailOf(event))) {
      const { [field]: _dropped, ...rest } = detailOf(event);
      expect(valid(name, withDetail(event, rest)), `without ${field}`).toBe(false);
    }
  });

  it("fails the schema with an unknown field, a decimal as a JSON number, or another detail-type", () => {
    const event = example(name);
    const detail = detailOf(event);
    const decimalField = Object.keys(detail).find(
      (key) => typeof detail[key] === "string" && /^-?\d/.test(String(detail[key])) && !key.endsWith("At"),
    );
    expect(valid(name, withDetail(event, { ...detail, surprise: true }))).toBe(false);
    if (decimalField)
      expect(
        valid(name, withDetail(event, { ...detail, [decimalField]: Number(detail[decimalField]) })),
      ).toBe(false);
    const other = LIQUIDATION_EVENT_TYPES.find((type) => type !== name) as LiquidationEventType;
    expect(valid(name, { ...event, "detail-type": other })).toBe(false);
  });
});

describe("docs/events.md: the sections", () => {
  it("has one section per event type of the schemas, and the envelope of every other event", () => {
    for (const name of LIQUIDATION_EVENT_TYPES) expect(EVENTS_DOC).toContain(`### \`${name}\``);
    expect(EVENTS_DOC).toContain("### `LossRecorded`");
  });
});

describe("docs/events.md: LiquidationRequested with a Dutch auction", () => {
  const [, auctioned] = examples("LiquidationRequested");
  const detail = liquidationRequestedSchema.parse(auctioned?.detail);

  it("is the plan the engine makes for ACC-DEFAULTS under the demo policy at SOL 112.586", () => {
    const [document] = JSON.parse(
      readFileSync(new URL("../../lib/config/demo-policies.json", import.meta.url), "utf8"),
    ) as unknown[];
    const demo = parsePolicy(document);
    const borrower = account({ cash: "-9262.50", holdings: { SOL: "100" } }, "ACC-DEFAULTS");
    const at = marks({ SOL: "112.586" });
    const plan = planLiquidation(borrower, valueAccount(borrower, at, demo), at, demo);
    expect(detail.plan).toEqual(plain(plan));
  });

  it("falls to 93.821 at 100 s and 67.739 at 239 s, and starts again from the top at 240 s, as the text says", () => {
    const auction = detail.plan.steps[0]?.auction;
    if (!auction) throw new Error("the example's step has no auction");
    const schedule = scheduleOfStep(auction);
    expect(auctionPrice(schedule, 100).limitPrice.toFixed()).toBe("93.821");
    expect(auctionPrice(schedule, 239).limitPrice.toFixed()).toBe("67.739");
    expect(auctionPrice(schedule, 240)).toEqual({
      limitPrice: dec("112.586"),
      cycle: 1,
      cycleElapsedSeconds: 0,
    });
    expect(auctionPrice(schedule, 480).cycle).toBe(2);
  });
});

const ENVELOPE = {
  version: "0",
  id: "00000000-0000-4000-8000-000000000000",
  source: "margin-call-engine",
  account: "111122223333",
  time: "2026-11-25T12:41:10Z",
  region: "eu-west-1",
  resources: [],
};

function asEvent(detailType: LiquidationEventType, detail: Json): Json {
  return { ...ENVELOPE, "detail-type": detailType, detail };
}

describe("the builders' details satisfy the schemas", () => {
  const AT = "2026-11-25T12:41:09.000Z";
  const base: WaterfallInput = {
    bankruptcy: {
      accountId: "ACC-100234",
      shortfall: dec("2500.00"),
      position: {
        instrument: "BTC-PERP",
        side: "LONG",
        quantity: dec("10"),
        quantityScale: 3,
        markPrice: dec("40000"),
        bankruptcyPrice: dec("40250"),
      },
    },
    fund: { currency: "USD", scale: 2, balance: dec("1000.00"), seq: 7 },
    policy: lossWaterfallSchema.parse({ afterFund: "ADL" }),
    counterparties: [
      {
        accountId: "ACC-200001",
        equity: dec("20000"),
        position: { instrument: "BTC-PERP", size: dec("-4"), entryPrice: dec("42000") },
      },
      {
        accountId: "ACC-200002",
        equity: dec("50000"),
        position: { instrument: "BTC-PERP", size: dec("-5"), entryPrice: dec("41000") },
      },
    ],
    flowId: "ACC-100234:v4:loss:fund",
    sourceReference: "ACC-100234:v4:loss",
    recordedAt: AT,
  };

  it("makes the documented ADL example's fund flow and deleveraging from the worked waterfall", () => {
    const events = waterfallEvents(runWaterfall(base), "ACC-100234:v4:loss", 2, AT);
    expect(events.map((e) => e.detailType)).toEqual(["InsuranceFundFlow", "DeleveragingRequested"]);
    for (const event of events)
      expect(valid(event.detailType, asEvent(event.detailType, event.detail))).toBe(true);
    expect(events[0]?.detail).toEqual(detailOf(example("InsuranceFundFlow")));
    expect(events[1]?.detail).toEqual(detailOf(example("DeleveragingRequested")));
  });

  it("makes the documented socialised and bad-debt examples", () => {
    const socialised = waterfallEvents(
      runWaterfall({
        ...base,
        policy: lossWaterfallSchema.parse({ afterFund: "SOCIALISED", socialisedBase: "OPPOSITE_NOTIONAL" }),
      }),
      "ACC-100234:v4:loss",
      2,
      AT,
    );
    expect(socialised[1]?.detail).toEqual(detailOf(example("LossSocialised")));
    const short = waterfallEvents(
      runWaterfall({
        ...base,
        counterparties: [
          {
            accountId: "ACC-200003",
            equity: dec("60000"),
            position: { instrument: "BTC-PERP", size: dec("-3"), entryPrice: dec("39000") },
          },
        ],
      }),
      "ACC-100234:v4:loss",
      2,
      AT,
    );
    expect(short.map((e) => e.detailType)).toEqual([
      "InsuranceFundFlow",
      "DeleveragingRequested",
      "BadDebtRecorded",
    ]);
    expect(short[2]?.detail).toEqual(detailOf(example("BadDebtRecorded")));
    for (const event of [...socialised, ...short])
      expect(valid(event.detailType, asEvent(event.detailType, event.detail))).toBe(true);
  });

  it("makes the documented pause and release from the worked breaker", () => {
    const policy = circuitBreakerSchema.parse({});
    const t = (iso: string, price: string) => ({ at: iso, price: dec(price) });
    const samples = [
      t("2026-11-25T12:00:00.000Z", "100000"),
      t("2026-11-25T12:10:00.000Z", "70000"),
      t("2026-11-25T12:20:00.000Z", "59000"),
      t("2026-11-25T12:30:00.000Z", "62000"),
      t("2026-11-25T12:50:00.000Z", "65000"),
    ];
    const pause = evaluateBreaker(
      breakerActive("BTC"),
      samples.slice(0, 3),
      "2026-11-25T12:20:00.000Z",
      policy,
    );
    const calm = evaluateBreaker(pause.state, samples, "2026-11-25T13:01:40.000Z", policy);
    const resume = evaluateBreaker(calm.state, samples, "2026-11-25T13:16:40.000Z", policy);
    if (!pause.decision || !resume.decision) throw new Error("a pause and a release expected");
    expect(breakerEvent(pause.decision, "crypto-lending").detail).toEqual(
      detailOf(example("LiquidationPaused")),
    );
    expect(breakerEvent(resume.decision, "crypto-lending").detail).toEqual(
      detailOf(example("LiquidationResumed")),
    );
  });

  it("makes a fee credit that satisfies the schema", () => {
    const { flow } = applyFlow(emptyFund("USD", 2), {
      flowId: "ACC-1:call:1:liquidation:1:fee",
      currency: "USD",
      cause: "LIQUIDATION_FEE",
      amount: dec("12.50"),
      accountId: "ACC-1",
      sourceReference: "ACC-1:call:1:liquidation:1",
      recordedAt: "2026-11-25T12:00:06.000Z",
    });
    const event = fundFlowEvent(flow, 2);
    expect(valid("InsuranceFundFlow", asEvent("InsuranceFundFlow", event.detail))).toBe(true);
  });
});
