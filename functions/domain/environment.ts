/**
 * The names of the engine's environment variables, in a module with no imports: the CDK stack writes these
 * variables (lib/), the settings adapter reads them at runtime (functions/adapters/settings.ts) and the
 * local runtime reads them from the synthesized template. Defined once, here, so that `lib/` need not
 * import a runtime adapter to name them.
 */
export const ENV = {
  accountsTable: "ACCOUNTS_TABLE",
  pricesTable: "PRICES_TABLE",
  marginCallsTable: "MARGIN_CALLS_TABLE",
  triggerIndexTable: "TRIGGER_INDEX_TABLE",
  outboxTable: "OUTBOX_TABLE",
  auditLogTable: "AUDIT_LOG_TABLE",
  quarantineTable: "QUARANTINE_TABLE",
  /** A JSON array of policy documents; each account's PROFILE names one by `policyId`. */
  policies: "POLICY_DOCUMENTS",
  fanOutQueueUrl: "FAN_OUT_QUEUE_URL",
  /** The queue the outbox relay puts each notice on; the notifier sends from it at a bounded rate. */
  noticeQueueUrl: "NOTICE_QUEUE_URL",
  /** SMS per second the whole notifier may publish (the account's SNS SMS throughput). */
  smsPerSecond: "SMS_PER_SECOND",
  /** Notifier invocations at once, at most (the notice queue mapping's maximum concurrency). */
  notifierConcurrency: "NOTIFIER_CONCURRENCY",
  emailTopicArn: "EMAIL_TOPIC_ARN",
  eventBusName: "EVENT_BUS_NAME",
  /** Accounts one invocation revalues before it hands the rest of a range to the fan-out queue. */
  maxAccountsPerInvocation: "MAX_ACCOUNTS_PER_INVOCATION",
  sweepSegments: "SWEEP_SEGMENTS",
  /**
   * Milliseconds a fan-out invocation spends starting revaluations (at most its remaining time less 30 s):
   * the accounts of a page not started by then go back to the queue as a page of their own.
   */
  pageBudgetMs: "PAGE_BUDGET_MS",
  openCallShards: "OPEN_CALL_SHARDS",
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
