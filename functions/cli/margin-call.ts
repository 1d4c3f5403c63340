/**
 * The `margin-call` command line.
 *
 *   margin-call evaluate [FILE | -] [--explain]
 *
 * Reads one JSON snapshot (account, prices, policy, call state, now) from FILE or stdin and prints the
 * valuation, trigger prices, call, cure options and the state machine's step as JSON, or with --explain a
 * readable breakdown. Bad input exits with status 2 and one line per problem: its JSON path and reason.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Rounding, toExactString, toFixedString, toPlainString } from "../domain/money.ts";
import { type Evaluation, evaluateSnapshot, evaluationReport, SnapshotError } from "../domain/snapshot.ts";
import { marginRatio } from "../domain/valuation.ts";
import { ADL_USAGE, AdlCommandError, runAdl } from "./adl-commands.ts";
import { FUND_USAGE, FundCommandError, runFund } from "./fund-commands.ts";
import { LOCAL_USAGE, LocalCommandError, runLocal } from "./local-commands.ts";
import { POLICY_USAGE, PolicyCommandError, runPolicy } from "./policy-commands.ts";
import { QUARANTINE_USAGE, QuarantineCommandError, runQuarantine } from "./quarantine-commands.ts";

const USAGE = `usage: margin-call evaluate [FILE | -] [--explain]

Evaluates one snapshot (account, prices, policy, call state, now) and prints JSON:
the valuation, breach and warning prices, call amount, cure options and the transition.

  FILE        a JSON snapshot; - or nothing reads standard input
  --explain   a readable breakdown per holding instead of JSON
  -h, --help  this text

Exit status: 0 evaluated, 2 bad input (each problem as "JSON path: reason"), 1 anything else.

${LOCAL_USAGE}

${QUARANTINE_USAGE}

${POLICY_USAGE}

${FUND_USAGE}

${ADL_USAGE}`;

/** Formats an amount of the policy's currency at its scale, rounding half to even. */
type MoneyFormat = (value: Parameters<typeof toPlainString>[0]) => string;

function explainHoldings(evaluation: Evaluation, money: MoneyFormat): string[] {
  const { policy, valuation } = evaluation;
  const out: string[] = [];
  out.push(
    `Account ${valuation.accountId} at ${evaluation.now}, policy ${policy.policyId}@${policy.version}, in ${policy.currency}`,
  );
  out.push("");
  const header = [
    "line",
    "quantity",
    "price",
    "value",
    "haircut",
    "counts as",
    "tier",
    "rate",
    "maintenance",
  ];
  const rows = valuation.lines.map((line) => [
    `${line.kind === "HOLDING" ? "holding" : "position"} ${line.name}`,
    toPlainString(line.quantity),
    toPlainString(line.price),
    money(line.value),
    toPlainString(line.haircut),
    money(line.adjustedContribution),
    String(line.tierIndex + 1),
    toPlainString(line.maintenanceRate),
    money(line.maintenance),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const format = (row: string[]) => row.map((cell, column) => cell.padStart(widths[column] ?? 0)).join("  ");
  out.push(format(header));
  for (const row of rows) out.push(format(row));
  return out;
}

function explainTotals(evaluation: Evaluation, money: MoneyFormat): string[] {
  const { valuation } = evaluation;
  const out: string[] = [];
  const ratio = marginRatio(valuation);
  out.push(`equity (net liquidation value)   ${money(valuation.equity)}`);
  out.push(`adjusted equity (after haircuts) ${money(valuation.adjustedEquity)}`);
  out.push(`maintenance requirement          ${money(valuation.maintenance)}`);
  out.push(`initial requirement              ${money(valuation.initial)}`);
  out.push(
    `margin ratio                     ${ratio ? toPlainString(ratio) : "no requirement"}   (breach below 1)`,
  );
  out.push(`prices                           ${evaluation.priceStatus}`);
  for (const trigger of evaluation.triggers) {
    const show = (value: typeof trigger.breachDown) => (value ? toPlainString(value) : "none");
    out.push(
      `${trigger.asset} at ${toPlainString(trigger.markPrice)}: breach ↓ ${show(trigger.breachDown)} ↑ ${show(trigger.breachUp)}, warning ↓ ${show(trigger.warningDown)} ↑ ${show(trigger.warningUp)}`,
    );
  }
  return out;
}

function explainCall(evaluation: Evaluation, money: MoneyFormat): string[] {
  const { policy, sizing } = evaluation;
  const out: string[] = [];
  if (sizing.inBreach) {
    out.push(
      sizing.belowMinimumTransfer
        ? `In breach, but the shortfall is below the minimum transfer amount: no call.`
        : `Call: ${toFixedString(sizing.amount, policy.currencyScale, Rounding.UP)} ${policy.currency} restores ${money(sizing.target)}.`,
    );
  } else {
    out.push("Not in breach: no call.");
  }
  for (const option of evaluation.cureOptions) {
    out.push(
      option.kind === "DEPOSIT"
        ? `  cure: deposit ${toPlainString(option.amount)} ${option.currency}`
        : `  cure: ${option.side.toLowerCase()} ${toPlainString(option.quantity)} ${option.target.kind === "HOLDING" ? option.target.asset : option.target.instrument} (about ${money(option.notional)} ${policy.currency})`,
    );
  }
  return out;
}

function explainOpenCall(evaluation: Evaluation): string[] {
  const { policy } = evaluation;
  const out: string[] = [];
  const standing = evaluation.standing;
  const open = evaluation.state.call;
  if (standing && open) {
    const amount = (value: typeof standing.dueNow) =>
      `${toFixedString(value, policy.currencyScale, Rounding.UP)} ${policy.currency}`;
    out.push("");
    out.push(
      `Open call ${open.callId}: ${amount(standing.amountCalled)} called at ${open.issuedAt}` +
        (open.amountDue === toFixedString(standing.amountCalled, policy.currencyScale, Rounding.UP)
          ? ""
          : `; the deficit has grown since: restoring the account took ${open.amountDue} ${policy.currency}`) +
        `; deadline ${open.deadlineAt}.`,
    );
    out.push(
      `  paid since the call ${toExactString(standing.paid, policy.currencyScale)} ${policy.currency}; still due now ${amount(standing.dueNow)} ` +
        `(met by ${policy.callMetBy}: the rest of what the notices asked is ${amount(standing.remaining)}, ` +
        `the deposit that restores the target is ${amount(standing.toRestore)})`,
    );
  }
  return out;
}

type Effect = Evaluation["step"]["effects"][number];

function explainAudit(effect: Extract<Effect, { kind: "AUDIT" }>, currency: string): string[] {
  const out: string[] = [];
  out.push(`  audit   ${effect.from} → ${effect.to}: ${effect.reason}`);
  const closure = effect.closure;
  if (closure) {
    out.push(
      `          call met by ${closure.how}: called ${closure.amountCalled}, due ${closure.amountDue}, paid ${closure.paid}` +
        (closure.waived ? `, waived ${closure.waived}` : "") +
        (closure.sold.length
          ? `, sold ${closure.sold.map((line) => `${line.quantity} ${line.target.kind === "HOLDING" ? line.target.asset : line.target.instrument} at ${line.averagePrice}`).join(", ")}`
          : "") +
        (closure.loss ? `, loss ${closure.loss}` : "") +
        ` ${currency}`,
    );
  }
  if (effect.alarm) out.push(`          operator alarm: ${effect.alarm}`);
  return out;
}

function explainTransition(evaluation: Evaluation): string[] {
  const { policy, step } = evaluation;
  const out: string[] = [];
  out.push(`Transition: ${evaluation.state.status} → ${step.next.status}`);
  for (const effect of step.effects) {
    if (effect.kind === "AUDIT") out.push(...explainAudit(effect, policy.currency));
    else if (effect.kind === "NOTIFY")
      out.push(
        `  notify  ${effect.notice}${effect.amountDue ? ` ${effect.amountDue} ${policy.currency} due${effect.deadlineAt ? ` by ${effect.deadlineAt}` : " now"}` : ""}${effect.met ? ` (met by ${effect.met})` : ""}`,
      );
    else if (effect.kind === "REQUEST_LIQUIDATION")
      out.push(
        `  liquidate (${effect.reason}) request ${effect.requestId}: ${effect.plan.steps.length} step(s)`,
      );
    else if (effect.kind === "FUND_FEE")
      out.push(`  fee     ${effect.amount} ${effect.currency} to the insurance fund (flow ${effect.flowId})`);
    else out.push(`  loss    ${effect.amount} ${policy.currency}`);
  }
  return out;
}

function explain(evaluation: Evaluation): string {
  const { policy } = evaluation;
  const money: MoneyFormat = (value) => toFixedString(value, policy.currencyScale, Rounding.HALF_EVEN);
  return [
    ...explainHoldings(evaluation, money),
    "",
    ...explainTotals(evaluation, money),
    "",
    ...explainCall(evaluation, money),
    ...explainOpenCall(evaluation),
    "",
    ...explainTransition(evaluation),
  ].join("\n");
}

function main(argv: string[]): number {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      explain: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, file] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (command !== "evaluate") {
    console.error(`unknown command ${command}\n\n${USAGE}`);
    return 2;
  }
  const source = !file || file === "-" ? 0 : file;
  let text: string;
  try {
    text = readFileSync(source, "utf8");
  } catch (error) {
    console.error(`cannot read ${file ?? "standard input"}: ${(error as Error).message}`);
    return 2;
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    console.error(`$: not valid JSON: ${(error as Error).message}`);
    return 2;
  }
  try {
    const evaluation = evaluateSnapshot(input);
    console.log(values.explain ? explain(evaluation) : JSON.stringify(evaluationReport(evaluation), null, 2));
    return 0;
  } catch (error) {
    if (error instanceof SnapshotError) {
      for (const issue of error.issues) console.error(`${issue.path}: ${issue.message}`);
      return 2;
    }
    throw error;
  }
}

const argv = process.argv.slice(2);
const SUBCOMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  local: runLocal,
  quarantine: runQuarantine,
  policy: runPolicy,
  fund: runFund,
  adl: runAdl,
};
const subcommand = SUBCOMMANDS[argv[0] ?? ""];
if (subcommand) {
  subcommand(argv.slice(1)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      const known =
        error instanceof LocalCommandError ||
        error instanceof QuarantineCommandError ||
        error instanceof PolicyCommandError ||
        error instanceof FundCommandError ||
        error instanceof AdlCommandError;
      console.error(known ? error.message : error);
      process.exitCode = known ? 2 : 1;
    },
  );
} else
  try {
    process.exitCode = main(argv);
  } catch (error) {
    if (error instanceof TypeError && /parseArgs|Unknown option|unexpected argument/i.test(String(error))) {
      console.error(`${(error as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      throw error;
    }
  }
