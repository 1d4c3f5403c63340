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
  /** The versioned policy documents and the active set (docs/policies.md); each PROFILE names a `policyId`. */
  policiesTable: "POLICIES_TABLE",
  /** The insurance fund's ledger (functions/adapters/insurance-fund-store.ts). */
  insuranceFundTable: "INSURANCE_FUND_TABLE",
  /** Seconds a function keeps the active policy set before it reads the table again (default 60). */
  policyCacheSeconds: "POLICY_CACHE_SECONDS",
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

/**
 * The custom resource that puts the stack's policy documents into the Policies table and activates them at
 * deploy (lib/policy-set.ts), and the properties its handler reads (functions/handlers/policy-bootstrap.ts).
 * The documents travel as one JSON text: CloudFormation passes every scalar property as a string.
 */
export const POLICY_SET_RESOURCE = {
  type: "Custom::PolicySet",
  tableProperty: "PoliciesTable",
  documentsProperty: "PolicyDocuments",
} as const;
