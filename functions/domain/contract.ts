/**
 * The upstream data contract: what the position keeper, the cash ledger, the price feed and the execution
 * systems write into the Accounts and Prices tables. docs/data-contract.md is the version for their
 * engineers; the examples in docs/examples/ are parsed by the tests.
 *
 * Money, quantities and prices stay decimal strings here: nothing in this module turns them into numbers.
 */
import { z } from "zod";

// ---------------------------------------------------------------------------------------------------------
// Primitives

const CANONICAL_DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;
const NEGATIVE_ZERO = /^-0(\.0+)?$/;
const ZERO = /^0(\.0+)?$/;
const MAX_DECIMAL_LENGTH = 40;
const DECIMAL_EXPECTED = 'must be a decimal string, e.g. "1234.50"';
const DECIMAL_WITHOUT = "must be a decimal string without";

function isZeroDecimal(text: string): boolean {
  return ZERO.test(text);
}

function decimalFormatProblem(text: string): string | undefined {
  if (text.length > MAX_DECIMAL_LENGTH) return `must be at most ${MAX_DECIMAL_LENGTH} characters`;
  if (CANONICAL_DECIMAL.test(text)) {
    return NEGATIVE_ZERO.test(text) ? 'must not be negative zero; write "0"' : undefined;
  }
  if (/[eE]/.test(text)) return `${DECIMAL_WITHOUT} an exponent: "1000", not "1e3"`;
  if (text.startsWith("+")) return `${DECIMAL_WITHOUT} a plus sign: "1", not "+1"`;
  if (/^-?0\d/.test(text)) return `${DECIMAL_WITHOUT} leading zeros: "1.5", not "01.5"`;
  return DECIMAL_EXPECTED;
}

type Sign = "signed" | "positive" | "nonNegative";

function decimalSignProblem(text: string, sign: Sign): string | undefined {
  if (sign === "positive" && (text.startsWith("-") || isZeroDecimal(text))) return "must be greater than 0";
  if (sign === "nonNegative" && text.startsWith("-")) return "must not be negative";
  return undefined;
}

function decimalString(sign: Sign) {
  return z
    .string({
      error: (issue) => {
        if (issue.input === undefined) return undefined;
        // DynamoDB numbers come out of the SDK as JS numbers, which keep only about 15 significant digits.
        const isNumeric = typeof issue.input === "number" || typeof issue.input === "bigint";
        return isNumeric ? `${DECIMAL_EXPECTED}; numbers lose digits` : DECIMAL_EXPECTED;
      },
    })
    .superRefine((text, context) => {
      const problem = decimalFormatProblem(text) ?? decimalSignProblem(text, sign);
      if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
    });
}

/** A canonical decimal string: "-12.50", "0", "3". No exponent, plus sign, leading zeros or "-0". */
export const DecimalString = decimalString("signed");
export const PositiveDecimalString = decimalString("positive");
export const NonNegativeDecimalString = decimalString("nonNegative");

/** Returns the message for any input but a missing one, which the contract's error map calls "required". */
function unlessMissing(message: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? undefined : message);
}

export const Timestamp = z.iso.datetime({
  error: unlessMissing('must be an ISO-8601 UTC timestamp ending in Z, e.g. "2025-03-14T09:30:00Z"'),
});

export const AssetCode = z.string().regex(/^[A-Z0-9][A-Z0-9._-]{0,31}$/, {
  error: unlessMissing(
    'must be an asset code: 1 to 32 of A-Z 0-9 . _ -, starting with A-Z or 0-9, e.g. "BTC"',
  ),
});

export const InstrumentCode = z.string().regex(/^[A-Z0-9][A-Z0-9._-]{0,63}$/, {
  error: unlessMissing(
    'must be an instrument code: 1 to 64 of A-Z 0-9 . _ -, starting with A-Z or 0-9, e.g. "BTC-PERP"',
  ),
});

const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const IDENTIFIER_RULE = "1 to 64 of A-Z a-z 0-9 . _ : -, starting with a letter or digit";

export const AccountId = z.string().regex(IDENTIFIER_PATTERN, {
  error: unlessMissing(`must be an account id: ${IDENTIFIER_RULE}`),
});

/** Deposit ids, execution report ids and price sources: the same characters as an account id. */
export const Identifier = z.string().regex(IDENTIFIER_PATTERN, {
  error: unlessMissing(`must be an identifier: ${IDENTIFIER_RULE}`),
});

/** Zones already checked: building an Intl.DateTimeFormat is costly, and every PROFILE read checks one. */
const knownTimeZones = new Map<string, boolean>();
/** More distinct names than there are IANA zones can only be junk: they are checked, not remembered. */
const KNOWN_TIME_ZONES_MAX = 1_000;

function isIanaTimeZone(name: string): boolean {
  const known = knownTimeZones.get(name);
  if (known !== undefined) return known;
  // Intl also accepts UTC offsets such as "+01:00" on newer runtimes; a policy needs a named zone.
  let valid = /^[A-Za-z]/.test(name);
  if (valid) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: name });
    } catch {
      valid = false;
    }
  }
  if (knownTimeZones.size < KNOWN_TIME_ZONES_MAX) knownTimeZones.set(name, valid);
  return valid;
}

export const TimeZone = z.string().refine(isIanaTimeZone, {
  error: unlessMissing('must be an IANA time zone, e.g. "America/New_York"'),
});

export const PhoneE164 = z.string().regex(/^\+[1-9]\d{6,14}$/, {
  error: unlessMissing('must be a phone number in E.164 form, e.g. "+12125550142"'),
});

export const Email = z
  .email({ error: unlessMissing('must be an email address, e.g. "ops@example.com"') })
  .max(254);

const Seq = z.int({ error: unlessMissing("must be a non-negative integer") }).nonnegative();

/** DynamoDB's time-to-live attribute: epoch seconds, a DynamoDB number. */
const ExpiresAtEpochSeconds = z
  .int({ error: unlessMissing("must be a positive integer (epoch seconds)") })
  .positive();

// ---------------------------------------------------------------------------------------------------------
// Items

/** Top-level attributes whose name starts with this prefix are upstream's own: allowed, and dropped on parse. */
export const EXTENSION_PREFIX = "x_";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function withoutExtensions(input: unknown): unknown {
  if (!isRecord(input)) return input;
  return Object.fromEntries(Object.entries(input).filter(([name]) => !name.startsWith(EXTENSION_PREFIX)));
}

/** An item: strict about its attributes, except for `x_` extensions. */
function item<Schema extends z.ZodType>(schema: Schema) {
  return z.preprocess(withoutExtensions, schema);
}

const accountItemBase = {
  accountId: AccountId,
  updatedAt: Timestamp,
  seq: Seq,
};

const Contact = z
  .strictObject({ phoneE164: PhoneE164.optional(), email: Email.optional() })
  .refine((contact) => contact.phoneE164 !== undefined || contact.email !== undefined, {
    error: "must have at least one of phoneE164, email",
  });

export const ProfileItem = item(
  z.strictObject({
    ...accountItemBase,
    sk: z.literal("PROFILE"),
    currency: AssetCode,
    policyId: z.string().min(1).max(128),
    timeZone: TimeZone,
    contact: Contact,
    borrowerName: z.string().min(1).max(200).optional(),
  }),
);
export type ProfileItem = z.infer<typeof ProfileItem>;

export const HoldingItem = item(
  z
    .strictObject({
      ...accountItemBase,
      sk: z.templateLiteral(["HOLDING#", z.string()]),
      asset: AssetCode,
      quantity: DecimalString,
    })
    .superRefine((holding, context) => {
      const expected = `HOLDING#${holding.asset}`;
      if (holding.sk !== expected) {
        context.addIssue({
          code: "custom",
          path: ["sk"],
          message: `must equal "${expected}" (the item's asset)`,
        });
      }
    }),
);
export type HoldingItem = z.infer<typeof HoldingItem>;

export const PositionItem = item(
  z
    .strictObject({
      ...accountItemBase,
      sk: z.templateLiteral(["POSITION#", z.string()]),
      instrument: InstrumentCode,
      underlying: AssetCode,
      instrumentType: z.enum(["PERPETUAL", "FUTURE"]),
      size: DecimalString,
      entryPrice: PositiveDecimalString,
      expiresAt: Timestamp.optional(),
    })
    .superRefine((position, context) => {
      const expected = `POSITION#${position.instrument}`;
      if (position.sk !== expected) {
        context.addIssue({
          code: "custom",
          path: ["sk"],
          message: `must equal "${expected}" (the item's instrument)`,
        });
      }
      if (position.instrumentType === "FUTURE" && position.expiresAt === undefined) {
        context.addIssue({
          code: "custom",
          path: ["expiresAt"],
          message: "required when instrumentType is FUTURE",
        });
      }
      if (position.instrumentType === "PERPETUAL" && position.expiresAt !== undefined) {
        context.addIssue({
          code: "custom",
          path: ["expiresAt"],
          message: "must be absent when instrumentType is PERPETUAL: a perpetual does not expire",
        });
      }
    }),
);
export type PositionItem = z.infer<typeof PositionItem>;

export const DepositItem = item(
  z
    .strictObject({
      ...accountItemBase,
      sk: z.templateLiteral(["DEPOSIT#", z.string()]),
      depositId: Identifier,
      amount: PositiveDecimalString,
      currency: AssetCode,
      status: z.enum(["PENDING", "SETTLED", "FAILED"]),
      initiatedAt: Timestamp,
      settledAt: Timestamp.optional(),
      expiresAtEpochSeconds: ExpiresAtEpochSeconds.optional(),
    })
    .superRefine((deposit, context) => {
      const expected = `DEPOSIT#${deposit.depositId}`;
      if (deposit.sk !== expected) {
        context.addIssue({
          code: "custom",
          path: ["sk"],
          message: `must equal "${expected}" (the item's depositId)`,
        });
      }
      if (deposit.status === "SETTLED" && deposit.settledAt === undefined) {
        context.addIssue({ code: "custom", path: ["settledAt"], message: "required when status is SETTLED" });
      }
      if (deposit.status !== "SETTLED" && deposit.settledAt !== undefined) {
        context.addIssue({
          code: "custom",
          path: ["settledAt"],
          message: "must be absent unless status is SETTLED",
        });
      }
      if (deposit.status === "PENDING" && deposit.expiresAtEpochSeconds !== undefined) {
        context.addIssue({
          code: "custom",
          path: ["expiresAtEpochSeconds"],
          message: "must be absent while status is PENDING: a pending deposit must not expire",
        });
      }
    }),
);
export type DepositItem = z.infer<typeof DepositItem>;

const ExecutionTarget = z.discriminatedUnion(
  "kind",
  [
    z.strictObject({ kind: z.literal("HOLDING"), asset: AssetCode }),
    z.strictObject({ kind: z.literal("POSITION"), instrument: InstrumentCode }),
  ],
  { error: (issue) => (issue.code === "invalid_union" ? 'must be "HOLDING" or "POSITION"' : undefined) },
);

export const ExecutionReportItem = item(
  z
    .strictObject({
      ...accountItemBase,
      sk: z.templateLiteral(["EXEC#", z.string()]),
      reportId: Identifier,
      requestId: z.string().min(1).max(256),
      target: ExecutionTarget,
      side: z.enum(["SELL", "BUY"]),
      filledQuantity: NonNegativeDecimalString,
      averagePrice: PositiveDecimalString.optional(),
      fee: NonNegativeDecimalString,
      final: z.boolean(),
      executedAt: Timestamp,
      expiresAtEpochSeconds: ExpiresAtEpochSeconds.optional(),
    })
    .superRefine((report, context) => {
      const expected = `EXEC#${report.reportId}`;
      if (report.sk !== expected) {
        context.addIssue({
          code: "custom",
          path: ["sk"],
          message: `must equal "${expected}" (the item's reportId)`,
        });
      }
      if (!isZeroDecimal(report.filledQuantity) && report.averagePrice === undefined) {
        context.addIssue({
          code: "custom",
          path: ["averagePrice"],
          message: "required when filledQuantity is greater than 0",
        });
      }
    }),
);
export type ExecutionReportItem = z.infer<typeof ExecutionReportItem>;

/** An item of the Accounts table. Which one it is follows from the prefix of `sk`: see `accountItemType`. */
export type AccountItem = ProfileItem | HoldingItem | PositionItem | DepositItem | ExecutionReportItem;
export type AccountItemType = "PROFILE" | "HOLDING" | "POSITION" | "DEPOSIT" | "EXECUTION_REPORT";

const SORT_KEY_PREFIXES: ReadonlyArray<readonly [string, AccountItemType]> = [
  ["HOLDING#", "HOLDING"],
  ["POSITION#", "POSITION"],
  ["DEPOSIT#", "DEPOSIT"],
  ["EXEC#", "EXECUTION_REPORT"],
];

const ACCOUNT_ITEM_SCHEMAS: Record<AccountItemType, z.ZodType<AccountItem>> = {
  PROFILE: ProfileItem,
  HOLDING: HoldingItem,
  POSITION: PositionItem,
  DEPOSIT: DepositItem,
  EXECUTION_REPORT: ExecutionReportItem,
};

/** The item type a sort key names, or undefined when it names none (a deleted item's old image included). */
export function accountItemType(sk: string): AccountItemType | undefined {
  if (sk === "PROFILE") return "PROFILE";
  return SORT_KEY_PREFIXES.find(([prefix]) => sk.startsWith(prefix))?.[1];
}

export const PriceItem = item(
  z.strictObject({
    asset: AssetCode,
    source: Identifier,
    price: PositiveDecimalString,
    asOf: Timestamp,
    seq: Seq,
    realizedVolatility: NonNegativeDecimalString.optional(),
  }),
);
export type PriceItem = z.infer<typeof PriceItem>;

// ---------------------------------------------------------------------------------------------------------
// Parsing

/** One broken rule: `path` is a JSON path into the item, such as `$.contact.phoneE164`. */
export type ContractIssue = { path: string; message: string };
export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: ContractIssue[] };

const EXPECTED_TYPES: Record<string, string> = {
  string: "a string",
  int: "an integer",
  number: "a number",
  boolean: "true or false",
  object: "an object",
};

/** Messages for the issues the schemas above leave to zod. */
const contractErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "required";
      return `must be ${EXPECTED_TYPES[issue.expected] ?? issue.expected}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(", ")}`;
    case "too_small":
      if (issue.origin === "string") {
        return issue.minimum === 1 ? "must not be empty" : `must be at least ${issue.minimum} characters`;
      }
      return `must be at least ${issue.minimum}`;
    case "too_big":
      return `must be at most ${issue.maximum}${issue.origin === "string" ? " characters" : ""}`;
    default:
      return undefined;
  }
};

function jsonPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((text, segment) => {
    if (typeof segment === "number") return `${text}[${segment}]`;
    const name = String(segment);
    return /^[A-Za-z_$][\w$]*$/.test(name) ? `${text}.${name}` : `${text}[${JSON.stringify(name)}]`;
  }, "$");
}

function toContractIssues(issues: ReadonlyArray<z.core.$ZodIssue>): ContractIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== "unrecognized_keys") return [{ path: jsonPath(issue.path), message: issue.message }];
    const message =
      issue.path.length === 0
        ? `unknown attribute; upstream's own attributes must start with "${EXTENSION_PREFIX}"`
        : "unknown field";
    return issue.keys.map((key) => ({ path: jsonPath([...issue.path, key]), message }));
  });
}

function parseWith<T>(schema: z.ZodType<T>, input: unknown): ParseResult<T> {
  const result = schema.safeParse(input, { error: contractErrorMap });
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, issues: toContractIssues(result.error.issues) };
}

function failure(path: string, message: string): { ok: false; issues: ContractIssue[] } {
  return { ok: false, issues: [{ path, message }] };
}

/** Validates an (unmarshalled) item of the Accounts table; `x_` extension attributes are dropped. */
export function parseAccountItem(item: unknown): ParseResult<AccountItem> {
  if (!isRecord(item)) return failure("$", "must be an object (an item of the Accounts table)");
  if (item.sk === undefined) return failure("$.sk", "required");
  if (typeof item.sk !== "string") return failure("$.sk", "must be a string");
  const type = accountItemType(item.sk);
  if (type === undefined) {
    return failure("$.sk", 'must be "PROFILE" or start with "HOLDING#", "POSITION#", "DEPOSIT#" or "EXEC#"');
  }
  return parseWith(ACCOUNT_ITEM_SCHEMAS[type], item);
}

/** Validates an (unmarshalled) item of the Prices table; `x_` extension attributes are dropped. */
export function parsePriceItem(item: unknown): ParseResult<PriceItem> {
  return parseWith(PriceItem, item);
}

/** One line per issue: `$.quantity: must be a decimal string ...`. */
export function formatIssues(issues: ReadonlyArray<ContractIssue>): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join("\n");
}
