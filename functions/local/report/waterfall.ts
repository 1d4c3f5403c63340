/**
 * The report's "Loss waterfall" card: how each loss was met (the insurance fund first, then auto-deleveraging
 * or a socialised charge when the policy says so, the rest bad debt), the fund's balance over time (every
 * InsuranceFundFlow with its cause, amount and balance after), and, when there are any, every
 * DeleveragingRequested with its instructions and every LossSocialised with its charges. Plain HTML tables:
 * amounts are shown as the events wrote them, never recomputed. Every row carries the reference it came from
 * (`data-reference`), so a test or a reader can find the event.
 */

import { escapeMarkup } from "./markup.ts";
import type { ReportDeleveraging, ReportLoss, ReportLossWaterfall, ReportSocialisedLoss } from "./types.ts";

export const WATERFALL_STYLE = `
h3 { font-size: 15px; margin: 14px 0 6px; }
.scroll { max-height: 420px; overflow-y: auto; border: 1px solid var(--line); border-radius: 6px; }
table.ledger { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
table.ledger th, table.ledger td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; }
table.ledger th { position: sticky; top: 0; background: var(--card); color: var(--muted); font-weight: 500; }
table.ledger td.amount, table.ledger th.amount { text-align: right; }
`;

const HOW =
  "Each loss is an account left below zero equity after its liquidation: its shortfall is met first by the " +
  "insurance fund, as far as its balance goes, then, when the policy says so, by auto-deleveraging " +
  "(counterparties' positions closed at the bankrupt account's price) or a charge socialised over other " +
  "accounts; what remains is bad debt. The fund's ledger below lists every flow in order: liquidation fees " +
  "and top-ups credit it, covers debit it, and the balance after each is what the fund held then.";

type Cell = { readonly text: string; readonly amount?: boolean };

const cell = (text: unknown): Cell => ({ text: String(text) });
const amount = (text: string): Cell => ({ text, amount: true });

function table(
  name: string,
  headings: readonly Cell[],
  rows: ReadonlyArray<{ reference: string; cells: readonly Cell[] }>,
): string {
  const th = (heading: Cell) =>
    `<th scope="col"${heading.amount ? ' class="amount"' : ""}>${escapeMarkup(heading.text)}</th>`;
  const td = (value: Cell) => `<td${value.amount ? ' class="amount"' : ""}>${escapeMarkup(value.text)}</td>`;
  const body = rows
    .map((row) => `<tr data-reference="${escapeMarkup(row.reference)}">${row.cells.map(td).join("")}</tr>`)
    .join("\n");
  return `<div class="scroll"><table class="ledger" data-table="${name}"><thead><tr>${headings.map(th).join("")}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

function lossesTable(losses: readonly ReportLoss[], currency: string): string {
  if (losses.length === 0) return '<p class="note">No account ended below zero equity.</p>';
  return table(
    "losses",
    [
      cell("Recorded"),
      cell("Account"),
      amount(`Shortfall (${currency})`),
      amount("Fund"),
      amount("ADL"),
      amount("Socialised"),
      amount("Bad debt"),
    ],
    losses.map((loss) => ({
      reference: loss.reference,
      cells: [
        cell(loss.t),
        cell(loss.accountId),
        amount(loss.shortfall),
        amount(loss.settled ? loss.fundCover : "pending"),
        amount(loss.settled ? loss.adlCover : "pending"),
        amount(loss.settled ? loss.socialisedCover : "pending"),
        amount(loss.settled ? loss.badDebt : "pending"),
      ],
    })),
  );
}

function flowsTable(waterfall: ReportLossWaterfall): string {
  if (waterfall.flows.length === 0) return '<p class="note">The fund recorded no flow.</p>';
  return table(
    "fund-flows",
    [
      cell("#"),
      cell("Recorded"),
      cell("Cause"),
      cell("Account"),
      amount(`Amount (${waterfall.currency})`),
      amount("Balance after"),
      cell("Source"),
    ],
    waterfall.flows.map((flow) => ({
      reference: flow.reference,
      cells: [
        cell(flow.seq),
        cell(flow.t),
        cell(flow.cause),
        cell(flow.accountId ?? "-"),
        amount(flow.amount),
        amount(flow.balanceAfter),
        cell(flow.sourceReference),
      ],
    })),
  );
}

function deleveragingBlock(adl: ReportDeleveraging): string {
  const summary =
    `${adl.bankruptAccountId}'s ${adl.bankruptSide} ${adl.instrument}: ${adl.quantityClosed} of ${adl.quantityNeeded} ` +
    `closed against counterparties at the bankruptcy price ${adl.bankruptcyPrice}, covering ${adl.cover} (${adl.t}).`;
  const instructions = table(
    "deleveraging",
    [cell("Rank"), cell("Account"), cell("Side"), amount("Quantity"), amount("Price"), cell("Closes all")],
    adl.instructions.map((instruction) => ({
      reference: `${adl.reference}#${instruction.rank}`,
      cells: [
        cell(instruction.rank),
        cell(instruction.accountId),
        cell(instruction.side),
        amount(instruction.quantity),
        amount(instruction.price),
        cell(instruction.closesAll ? "yes" : "no"),
      ],
    })),
  );
  return `<div data-event="DeleveragingRequested" data-reference="${escapeMarkup(adl.reference)}"><p class="note">${escapeMarkup(summary)}</p>${instructions}</div>`;
}

function socialisedBlock(loss: ReportSocialisedLoss): string {
  const summary =
    `${loss.amount} of ${loss.bankruptAccountId}'s loss charged over ${loss.charges.length} accounts ` +
    `in proportion to their ${loss.base} (total ${loss.baseTotal}) (${loss.t}).`;
  const charges = table(
    "socialised",
    [cell("Account"), amount("Charge")],
    loss.charges.map((charge) => ({
      reference: `${loss.reference}#${charge.accountId}`,
      cells: [cell(charge.accountId), amount(charge.amount)],
    })),
  );
  return `<div data-event="LossSocialised" data-reference="${escapeMarkup(loss.reference)}"><p class="note">${escapeMarkup(summary)}</p>${charges}</div>`;
}

/** The card; without waterfall data it says that none was recorded. */
export function renderLossWaterfall(waterfall: ReportLossWaterfall | undefined): string {
  const parts = waterfall
    ? [
        "<h3>Losses</h3>",
        lossesTable(waterfall.losses, waterfall.currency),
        `<h3>Insurance fund (${escapeMarkup(waterfall.currency)}): balance over time</h3>`,
        flowsTable(waterfall),
        ...(waterfall.deleveraging.length
          ? ["<h3>Auto-deleveraging</h3>", ...waterfall.deleveraging.map(deleveragingBlock)]
          : []),
        ...(waterfall.socialised.length
          ? ["<h3>Socialised losses</h3>", ...waterfall.socialised.map(socialisedBlock)]
          : []),
      ]
    : ['<p class="note">No insurance-fund flows or losses were recorded for this run.</p>'];
  return `<section class="card" aria-labelledby="h-waterfall" data-section="loss-waterfall">
<h2 id="h-waterfall">Loss waterfall</h2>
<p class="how"><strong>How to read this.</strong> ${escapeMarkup(HOW)}</p>
${parts.join("\n")}
</section>`;
}
