/**
 * `margin-call local ...`: write upstream records into the engine that `npm start -- --engine-only` (or
 * the demo) is running, from a second terminal, as the upstream systems would, and read an account's
 * call state back. The session (endpoint and database) is read from `.local/session.json`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ParseArgsConfig, parseArgs } from "node:util";
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { fromImage, toItem } from "../adapters/codec.ts";
import { formatIssues, parseAccountItem, parsePriceItem } from "../domain/contract.ts";
import { dec } from "../domain/money.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

// The CLI runs on the developer's Node (>= 20); the SDK's notice about Node 20 is not for its users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export const LOCAL_USAGE = `usage: margin-call local COMMAND ...   (talks to the engine \`npm start\` runs)

  profile ACCOUNT [--phone +E164] [--email ADDRESS] [--policy ID] [--time-zone ZONE]
  holding ACCOUNT ASSET QUANTITY [ASSET QUANTITY ...]
                                        e.g. holding ACC-1 USD -55600.00 BTC 1.25 (negative: borrowed);
                                        several holdings are written in one transaction
  price ASSET PRICE [--source NAME] [--volatility 0.72]
  deposit ACCOUNT AMOUNT [--settled | --failed] [--id DEPOSIT_ID]
                                        --settled also credits the cash holding, in the same transaction
  state ACCOUNT                         the account's margin-call state`;

function session(): { endpoint: string; accessKeyId: string } {
  const path = join(process.env.MARGIN_CALL_SESSION_DIR ?? join(ROOT, ".local"), "session.json");
  try {
    return JSON.parse(readFileSync(path, "utf8")) as { endpoint: string; accessKeyId: string };
  } catch {
    throw new LocalCommandError(
      `no running engine found (${path}); start one with: npm start -- --engine-only`,
    );
  }
}

export class LocalCommandError extends Error {}

let sequence = Date.now();

const OPTIONS = {
  phone: { type: "string" },
  email: { type: "string" },
  policy: { type: "string", default: "crypto-lending" },
  "time-zone": { type: "string", default: "America/New_York" },
  source: { type: "string", default: "manual" },
  volatility: { type: "string" },
  settled: { type: "boolean", default: false },
  failed: { type: "boolean", default: false },
  id: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

/** What a command works with: the engine's database, its arguments, and this write's time and sequence. */
interface LocalCommandContext {
  readonly dynamo: DynamoDBClient;
  /** The positional arguments after the command's name. */
  readonly rest: readonly string[];
  readonly values: ReturnType<typeof parseLocalArgs>["values"];
  readonly now: string;
  readonly sequence: number;
}

const COMMANDS: ReadonlyMap<string, (context: LocalCommandContext) => Promise<void>> = new Map([
  ["profile", writeProfile],
  ["holding", writeHoldings],
  ["price", writePrice],
  ["deposit", writeDeposit],
  ["state", showState],
]);

/** Runs one `margin-call local` command against the running engine; returns the exit code. */
export async function runLocal(rawArgs: string[]): Promise<number> {
  const { command, rest, values } = parseLocalArgs(rawArgs);
  const { endpoint, accessKeyId } = session();
  const dynamo = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId, secretAccessKey: "local" },
  });
  const now = new Date().toISOString();
  sequence += 1;
  try {
    const run = command === undefined ? undefined : COMMANDS.get(command);
    if (!run) {
      console.error(LOCAL_USAGE);
      return 2;
    }
    await run({ dynamo, rest, values, now, sequence });
    return 0;
  } finally {
    dynamo.destroy();
  }
}

/** The command's name, its positional arguments and its options. */
function parseLocalArgs(rawArgs: readonly string[]) {
  // A negative quantity ("-58000.00", a loan) is a value, not an option.
  const negatives = new Map<string, string>();
  const args = rawArgs.map((arg, index) => {
    if (!/^-\d/.test(arg)) return arg;
    const token = `__negative_${index}`;
    negatives.set(token, arg);
    return token;
  });
  const parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  const [command, ...rest] = parsed.positionals.map((value) => negatives.get(value) ?? value);
  return { command, rest, values: parsed.values };
}

/** Writes one item after checking it against the data contract. */
async function write(
  dynamo: DynamoDBClient,
  table: "Accounts" | "Prices",
  item: Record<string, unknown>,
): Promise<void> {
  const parsed = table === "Accounts" ? parseAccountItem(item) : parsePriceItem(item);
  if (!parsed.ok) throw new LocalCommandError(formatIssues(parsed.issues));
  await dynamo.send(new PutItemCommand({ TableName: table, Item: toItem(item) }));
  console.log(`wrote ${table} ${JSON.stringify(item)}`);
}

/** One change of an account as one transaction, as the data contract asks of upstream systems. */
async function writeAccountChange(
  dynamo: DynamoDBClient,
  items: readonly Record<string, unknown>[],
): Promise<void> {
  for (const item of items) {
    const parsed = parseAccountItem(item);
    if (!parsed.ok) throw new LocalCommandError(`${String(item.sk)}: ${formatIssues(parsed.issues)}`);
  }
  if (items.length === 1 && items[0]) return write(dynamo, "Accounts", items[0]);
  await dynamo.send(
    new TransactWriteItemsCommand({
      TransactItems: items.map((item) => ({ Put: { TableName: "Accounts", Item: toItem(item) } })),
    }),
  );
  for (const item of items) console.log(`wrote Accounts ${JSON.stringify(item)}`);
  console.log(`(${items.length} items in one transaction)`);
}

/** `profile ACCOUNT [--phone] [--email] [--policy] [--time-zone]` */
async function writeProfile({ dynamo, rest, values, now, sequence }: LocalCommandContext): Promise<void> {
  const [accountId = ""] = rest;
  await write(dynamo, "Accounts", {
    accountId,
    sk: "PROFILE",
    updatedAt: now,
    seq: sequence,
    currency: "USD",
    policyId: values.policy,
    timeZone: values["time-zone"],
    contact: {
      ...(values.phone ? { phoneE164: values.phone } : {}),
      ...(values.email ? { email: values.email } : {}),
    },
  });
}

/** `holding ACCOUNT ASSET QUANTITY [ASSET QUANTITY ...]`: several holdings in one transaction. */
async function writeHoldings({ dynamo, rest, now, sequence }: LocalCommandContext): Promise<void> {
  const [accountId = "", ...pairs] = rest;
  if (pairs.length === 0 || pairs.length % 2 !== 0) {
    throw new LocalCommandError("holding needs ACCOUNT and one or more ASSET QUANTITY pairs");
  }
  const items: Record<string, unknown>[] = [];
  for (let index = 0; index < pairs.length; index += 2) {
    const asset = pairs[index] ?? "";
    items.push({
      accountId,
      sk: `HOLDING#${asset}`,
      updatedAt: now,
      seq: sequence,
      asset,
      quantity: pairs[index + 1] ?? "",
    });
  }
  await writeAccountChange(dynamo, items);
}

/** `price ASSET PRICE [--source NAME] [--volatility 0.72]` */
async function writePrice({ dynamo, rest, values, now, sequence }: LocalCommandContext): Promise<void> {
  const [asset = "", price = ""] = rest;
  await write(dynamo, "Prices", {
    asset,
    source: values.source,
    price,
    asOf: now,
    seq: sequence,
    ...(values.volatility ? { realizedVolatility: values.volatility } : {}),
  });
}

/** `deposit ACCOUNT AMOUNT [--settled | --failed] [--id DEPOSIT_ID]` */
async function writeDeposit({ dynamo, rest, values, now, sequence }: LocalCommandContext): Promise<void> {
  const [accountId = "", amount = ""] = rest;
  const depositId = values.id ?? `MANUAL-${sequence}`;
  const status = values.settled ? "SETTLED" : values.failed ? "FAILED" : "PENDING";
  const deposit = {
    accountId,
    sk: `DEPOSIT#${depositId}`,
    updatedAt: now,
    seq: sequence,
    depositId,
    amount,
    currency: "USD",
    status,
    initiatedAt: now,
    ...(status === "SETTLED" ? { settledAt: now } : {}),
  };
  if (status !== "SETTLED") return write(dynamo, "Accounts", deposit);
  // Settling moves the money into the cash holding: the deposit and the new balance, one transaction.
  const cash = await cashHolding(dynamo, accountId);
  const parsedAmount = parseAccountItem(deposit);
  if (!parsedAmount.ok) throw new LocalCommandError(formatIssues(parsedAmount.issues));
  const balance = dec(String(cash?.quantity ?? "0")).plus(dec(amount));
  await writeAccountChange(dynamo, [
    deposit,
    {
      accountId,
      sk: "HOLDING#USD",
      updatedAt: now,
      seq: Math.max(sequence, Number(cash?.seq ?? 0) + 1),
      asset: "USD",
      quantity: balance.toFixed(),
    },
  ]);
}

/** The account's cash holding as stored, if it has one. */
async function cashHolding(dynamo: DynamoDBClient, accountId: string) {
  const result = await dynamo.send(
    new GetItemCommand({
      TableName: "Accounts",
      Key: { accountId: { S: accountId }, sk: { S: "HOLDING#USD" } },
      ConsistentRead: true,
    }),
  );
  return result.Item ? fromImage(result.Item) : undefined;
}

/** `state ACCOUNT`: the account's margin-call state, or HEALTHY when none is recorded. */
async function showState({ dynamo, rest }: LocalCommandContext): Promise<void> {
  const [accountId = ""] = rest;
  const result = await dynamo.send(
    new GetItemCommand({
      TableName: "MarginCalls",
      Key: { accountId: { S: accountId } },
      ConsistentRead: true,
    }),
  );
  console.log(
    result.Item
      ? JSON.stringify(JSON.parse(String(fromImage(result.Item).state)), null, 2)
      : "HEALTHY (no call state recorded)",
  );
}
