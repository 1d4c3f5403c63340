/** What an operator must see of each revaluation, in the logs that the stack's metric filters watch. */
import type { RevalueOutcome } from "../adapters/engine.ts";
import { LOG_SIGNALS, OPERATOR_ALARMS } from "../domain/alarms.ts";
import type { Runtime } from "./runtime.ts";

export function logOutcome(engine: Runtime, outcome: RevalueOutcome): void {
  if (outcome.kind === "SKIPPED") {
    engine.logger.warn(LOG_SIGNALS.ACCOUNT_NOT_REVALUED.message, {
      accountId: outcome.accountId,
      reason: outcome.reason,
    });
    return;
  }
  if (outcome.unindexed) {
    // Not an alarm: no market reaches such a line, and the sweep decides the account on every pass.
    engine.logger.warn("trigger lines not indexed", {
      accountId: outcome.accountId,
      lines: outcome.unindexed,
    });
  }
  if (outcome.kind !== "TRANSITIONED") return;
  engine.logger.info("transition", {
    accountId: outcome.accountId,
    status: outcome.state.status,
    version: outcome.state.version,
    effects: outcome.effects.map((effect) => effect.kind),
  });
  for (const effect of outcome.effects) {
    if (effect.kind === "AUDIT" && effect.alarm) {
      engine.logger.error(OPERATOR_ALARMS[effect.alarm].message, {
        accountId: outcome.accountId,
        alarm: effect.alarm,
        reason: effect.reason,
      });
    }
  }
}

export function logOutcomes(engine: Runtime, outcomes: readonly RevalueOutcome[]): void {
  for (const outcome of outcomes) logOutcome(engine, outcome);
}
