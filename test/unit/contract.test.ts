import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type AccountItemType,
  accountItemType,
  type ContractIssue,
  formatIssues,
  type ParseResult,
  parseAccountItem,
  parsePriceItem,
} from "../../functions/domain/contract.ts";

const EXAMPLES_DIRECTORY = new URL("../../docs/examples/", import.meta.url);
const CONTRACT_DOCUMENT = new URL("../../docs/data-contract.md", import.meta.url);

type Item = Record<string, unknown>;

function example(fileName: string): Item {
  return JSON.parse(readFileSync(new URL(fileName, EXAMPLES_DIRECTORY), "utf8")) as Item;
}

function parseExample(fileName: string, item: unknown): ParseResult<unknown> {
  return fileName.startsWith("price") ? parsePriceItem(item) : parseAccountItem(item);
}

function issuesOf(result: ParseResult<unknown>): ContractIssue[] {
  return result.ok ? [] : result.issues;
}

function without(item: Item, attribute: string): Item {
  const { [attribute]: _removed, ...rest } = item;
  return rest;
}

describe("docs/examples", () => {
  const fileNames = readdirSync(EXAMPLES_DIRECTORY).filter((name) => name.endsWith(".json"));

  it("holds one example per item type", () => {
    // Assess
    expect(fileNames.sort()).toEqual([
      "deposit-pending.json",
      "deposit-settled.json",
      "execution-report.json",
      "holding.json",
      "position-future.json",
      "position-perpetual.json",
      "price.json",
      "profile.json",
    ]);
  });

  it.each(fileNames)("%s satisfies the contract", (fileName) => {
    // Prepare
    const item = example(fileName);

    // Act
    const result = parseExample(fileName, item);

    // Assess
    expect(issuesOf(result)).toEqual([]);
  });

  it.each(fileNames)("%s is referenced from docs/data-contract.md", (fileName) => {
    // Prepare
    const document = readFileSync(CONTRACT_DOCUMENT, "utf8");

    // Assess
    expect(document).toContain(`examples/${fileName}`);
  });
});

type BadInput = [description: string, fileName: string, item: Item, path: string, messageFragment: string];

const profile = example("profile.json");
const holding = example("holding.json");
const perpetual = example("position-perpetual.json");
const future = example("position-future.json");
const pendingDeposit = example("deposit-pending.json");
const settledDeposit = example("deposit-settled.json");
const executionReport = example("execution-report.json");
const price = example("price.json");

const badInputs: BadInput[] = [
  // Decimal strings
  ["a number for money", "holding", { ...holding, quantity: 1.25 }, "$.quantity", "numbers lose digits"],
  ["an exponent", "deposit", { ...pendingDeposit, amount: "1e3" }, "$.amount", "without an exponent"],
  ["negative zero", "holding", { ...holding, quantity: "-0" }, "$.quantity", "negative zero"],
  [
    "negative zero with a fraction",
    "holding",
    { ...holding, quantity: "-0.00" },
    "$.quantity",
    "negative zero",
  ],
  ["a leading zero", "holding", { ...holding, quantity: "01.5" }, "$.quantity", "without leading zeros"],
  ["a leading plus", "holding", { ...holding, quantity: "+1.5" }, "$.quantity", "without a plus sign"],
  ["a bare fraction", "holding", { ...holding, quantity: ".5" }, "$.quantity", 'e.g. "1234.50"'],
  ["41 characters", "holding", { ...holding, quantity: `1.${"0".repeat(39)}` }, "$.quantity", "at most 40"],
  ["a zero price", "position", { ...perpetual, entryPrice: "0.00" }, "$.entryPrice", "greater than 0"],
  ["a negative deposit", "deposit", { ...pendingDeposit, amount: "-5" }, "$.amount", "greater than 0"],
  ["a negative fee", "execution", { ...executionReport, fee: "-0.01" }, "$.fee", "must not be negative"],
  ["a number for a price", "price", { ...price, price: 64012.35 }, "$.price", "numbers lose digits"],
  ["a zero price tick", "price", { ...price, price: "0" }, "$.price", "greater than 0"],
  [
    "negative volatility",
    "price",
    { ...price, realizedVolatility: "-0.1" },
    "$.realizedVolatility",
    "negative",
  ],
  // Keys and sort-key suffixes
  [
    "an unknown sk prefix",
    "holding",
    { ...holding, sk: "BALANCE#BTC" },
    "$.sk",
    'must be "PROFILE" or start',
  ],
  ["no sk", "holding", without(holding, "sk"), "$.sk", "required"],
  ["a holding sk for another asset", "holding", { ...holding, sk: "HOLDING#ETH" }, "$.sk", '"HOLDING#BTC"'],
  [
    "a position sk for another instrument",
    "position",
    { ...perpetual, sk: "POSITION#X" },
    "$.sk",
    "instrument",
  ],
  [
    "a deposit sk for another deposit",
    "deposit",
    { ...pendingDeposit, sk: "DEPOSIT#D2" },
    "$.sk",
    "depositId",
  ],
  ["a report sk for another report", "execution", { ...executionReport, sk: "EXEC#R2" }, "$.sk", "reportId"],
  ["a space in the account id", "profile", { ...profile, accountId: "ACC 1" }, "$.accountId", "account id"],
  ["a lower-case asset", "price", { ...price, asset: "btc" }, "$.asset", "asset code"],
  // Profile
  [
    "no contact channel",
    "profile",
    { ...profile, contact: {} },
    "$.contact",
    "at least one of phoneE164, email",
  ],
  ["an unknown time zone", "profile", { ...profile, timeZone: "America/Gotham" }, "$.timeZone", "IANA"],
  ["a UTC offset as time zone", "profile", { ...profile, timeZone: "+01:00" }, "$.timeZone", "IANA"],
  [
    "a phone number without country code",
    "profile",
    { ...profile, contact: { phoneE164: "2125550142" } },
    "$.contact.phoneE164",
    "E.164",
  ],
  [
    "a bad email",
    "profile",
    { ...profile, contact: { email: "rivera@" } },
    "$.contact.email",
    "email address",
  ],
  ["no currency", "profile", without(profile, "currency"), "$.currency", "required"],
  ["an empty policy id", "profile", { ...profile, policyId: "" }, "$.policyId", "must not be empty"],
  ["a long name", "profile", { ...profile, borrowerName: "x".repeat(201) }, "$.borrowerName", "at most 200"],
  // Timestamps and sequence numbers
  [
    "a local offset",
    "profile",
    { ...profile, updatedAt: "2025-03-14T09:30:00+01:00" },
    "$.updatedAt",
    "in Z",
  ],
  ["a date only", "deposit", { ...pendingDeposit, initiatedAt: "2025-03-14" }, "$.initiatedAt", "ISO-8601"],
  ["a negative seq", "holding", { ...holding, seq: -1 }, "$.seq", "non-negative integer"],
  ["a fractional seq", "price", { ...price, seq: 1.5 }, "$.seq", "non-negative integer"],
  ["a string seq", "holding", { ...holding, seq: "41" }, "$.seq", "non-negative integer"],
  // Attributes the contract does not know
  ["an unknown attribute", "profile", { ...profile, riskScore: "7" }, "$.riskScore", 'must start with "x_"'],
  ["an unknown price attribute", "price", { ...price, bid: "64000" }, "$.bid", "unknown attribute"],
  [
    "an unknown contact field",
    "profile",
    { ...profile, contact: { phoneE164: "+12125550142", fax: "+1" } },
    "$.contact.fax",
    "unknown field",
  ],
  // Rules across attributes
  ["a FUTURE without expiresAt", "position", without(future, "expiresAt"), "$.expiresAt", "required when"],
  [
    "a PERPETUAL with expiresAt",
    "position",
    { ...perpetual, expiresAt: "2025-06-27T08:00:00Z" },
    "$.expiresAt",
    "does not expire",
  ],
  [
    "an OPTION",
    "position",
    { ...perpetual, instrumentType: "OPTION" },
    "$.instrumentType",
    '"PERPETUAL", "FUTURE"',
  ],
  ["SETTLED without settledAt", "deposit", without(settledDeposit, "settledAt"), "$.settledAt", "SETTLED"],
  [
    "PENDING with settledAt",
    "deposit",
    { ...pendingDeposit, settledAt: "2025-03-14T16:02:11Z" },
    "$.settledAt",
    "must be absent",
  ],
  [
    "PENDING with a time to live",
    "deposit",
    { ...pendingDeposit, expiresAtEpochSeconds: 1749744131 },
    "$.expiresAtEpochSeconds",
    "must not expire",
  ],
  [
    "a fill without averagePrice",
    "execution",
    without(executionReport, "averagePrice"),
    "$.averagePrice",
    "required when filledQuantity is greater than 0",
  ],
  [
    "an unknown target kind",
    "execution",
    { ...executionReport, target: { kind: "ACCOUNT" } },
    "$.target.kind",
    '"HOLDING" or "POSITION"',
  ],
  [
    "a holding target without asset",
    "execution",
    { ...executionReport, target: { kind: "HOLDING" } },
    "$.target.asset",
    "required",
  ],
  ["final as a string", "execution", { ...executionReport, final: "true" }, "$.final", "true or false"],
];

describe("a record that breaks the contract", () => {
  it.each(badInputs)("%s (%s) fails at %s", (_description, fileName, item, path, messageFragment) => {
    // Act
    const result = parseExample(fileName, item);

    // Assess
    expect(issuesOf(result)).toEqual([{ path, message: expect.stringContaining(messageFragment) }]);
  });

  it("is refused whole when it is not an object", () => {
    // Act
    const results = [parseAccountItem(null), parseAccountItem([holding]), parsePriceItem("BTC")];

    // Assess
    expect(results.map(issuesOf)).toEqual([
      [{ path: "$", message: expect.stringContaining("must be an object") }],
      [{ path: "$", message: expect.stringContaining("must be an object") }],
      [{ path: "$", message: expect.stringContaining("must be an object") }],
    ]);
  });

  it("reports every broken rule, one line each", () => {
    // Prepare
    const item = { ...holding, quantity: 5, seq: -1, colour: "red" };

    // Act
    const result = parseAccountItem(item);

    // Assess
    expect(formatIssues(issuesOf(result)).split("\n")).toEqual([
      "$.seq: must be a non-negative integer",
      '$.quantity: must be a decimal string, e.g. "1234.50"; numbers lose digits',
      '$.colour: unknown attribute; upstream\'s own attributes must start with "x_"',
    ]);
  });
});

describe("a record that keeps the contract", () => {
  it("keeps decimal strings exactly as written", () => {
    // Prepare
    const item = { ...holding, quantity: "123456789012345678901234567890.123456789" };

    // Act
    const result = parseAccountItem(item);

    // Assess
    expect(result).toMatchObject({
      ok: true,
      value: { quantity: "123456789012345678901234567890.123456789" },
    });
  });

  it("drops x_ extension attributes and keeps the rest", () => {
    // Prepare
    const item = { ...price, x_feedLatencyMs: 12, x_venue: { region: "us-east-1" } };

    // Act
    const result = parsePriceItem(item);

    // Assess
    expect(result).toEqual({ ok: true, value: price });
  });

  it("drops the x_ attribute of the holding example", () => {
    // Act
    const result = parseAccountItem(holding);

    // Assess
    expect(result.ok && Object.keys(result.value)).toEqual([
      "accountId",
      "updatedAt",
      "seq",
      "sk",
      "asset",
      "quantity",
    ]);
  });

  it.each([
    ["a borrowed asset", { ...holding, quantity: "-15000.00" }],
    ["a closed position", { ...perpetual, size: "0" }],
    [
      "a report of no fill, without averagePrice",
      { ...without(executionReport, "averagePrice"), filledQuantity: "0" },
    ],
    ["a profile with only an email", { ...profile, contact: { email: "ops@example.com" } }],
    ["a profile with only a phone", { ...profile, contact: { phoneE164: "+447700900123" } }],
    [
      "a failed deposit with a time to live",
      { ...pendingDeposit, status: "FAILED", expiresAtEpochSeconds: 1 },
    ],
    [
      "a position target",
      { ...executionReport, target: { kind: "POSITION", instrument: "BTC-PERP" }, side: "BUY" },
    ],
    ["a time zone alias", { ...profile, timeZone: "UTC" }],
  ])("accepts %s", (_description, item) => {
    // Act
    const result = parseAccountItem(item);

    // Assess
    expect(issuesOf(result)).toEqual([]);
  });
});

describe("accountItemType", () => {
  it.each<[string, AccountItemType | undefined]>([
    ["PROFILE", "PROFILE"],
    ["HOLDING#BTC", "HOLDING"],
    ["POSITION#BTC-PERP", "POSITION"],
    ["DEPOSIT#WIRE-1", "DEPOSIT"],
    ["EXEC#FILL-1", "EXECUTION_REPORT"],
    ["PROFILE#2", undefined],
    ["holding#BTC", undefined],
  ])("reads %s as %s", (sk, expected) => {
    // Act
    const type = accountItemType(sk);

    // Assess
    expect(type).toBe(expected);
  });
});
