import { type CfnResource, RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";

/**
 * The logical IDs of the engine's tables. They are fixed (not hashed from the construct path) so that
 * the local runtime can name its DynamoDB Local tables after them and resolve `Ref`s in the template.
 * See docs/data-model.md for the keys and access patterns of each.
 */
export const TABLE_LOGICAL_IDS = {
  accounts: "Accounts",
  prices: "Prices",
  marginCalls: "MarginCalls",
  triggerIndex: "TriggerIndex",
  outbox: "Outbox",
  auditLog: "AuditLog",
  quarantine: "Quarantine",
  idempotency: "Idempotency",
} as const;

export type TableName = keyof typeof TABLE_LOGICAL_IDS;

/** Time-to-live attribute, the same on every table that has one: epoch seconds. */
export const TTL_ATTRIBUTE = "expiresAtEpochSeconds";

export interface EngineTablesProps {
  /**
   * What happens to the tables when the stack is deleted.
   * @default RemovalPolicy.RETAIN: margin-call records are books and records, never dropped with a stack.
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Refuse DeleteTable on every table.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * A customer-managed KMS key for every table.
   * @default the AWS-managed key for DynamoDB (aws/dynamodb)
   */
  readonly encryptionKey?: IKey;
}

/** The DynamoDB tables of the engine. One table per lifecycle and per stream consumer: see docs/data-model.md. */
export class EngineTables extends Construct {
  /** Upstream: account profile, holdings, positions, deposits and execution reports, keyed by account. */
  readonly accounts: Table;
  /** Upstream: the latest mark of each asset from each price source. */
  readonly prices: Table;
  /** Engine: the margin-call state machine of each account, with a version for optimistic locking. */
  readonly marginCalls: Table;
  /** Engine: each account's breach and warning prices per asset, ordered by price, for price-tick fan-out. */
  readonly triggerIndex: Table;
  /** Engine: the transactional outbox of notifications and liquidation requests. */
  readonly outbox: Table;
  /** Engine: the append-only record of every transition and its inputs. */
  readonly auditLog: Table;
  /** Engine: upstream records that broke the data contract, kept for an operator to inspect and replay. */
  readonly quarantine: Table;
  /** Engine: Powertools idempotency records, so each SMS, email and event goes out at most once. */
  readonly idempotency: Table;

  constructor(scope: Construct, id: string, props: EngineTablesProps = {}) {
    super(scope, id);
    const common = {
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      ...(props.encryptionKey
        ? { encryption: TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
        : { encryption: TableEncryption.AWS_MANAGED }),
    };
    const string = AttributeType.STRING;

    this.accounts = this.table("accounts", {
      ...common,
      partitionKey: { name: "accountId", type: string },
      sortKey: { name: "sk", type: string },
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      timeToLiveAttribute: TTL_ATTRIBUTE,
    });

    this.prices = this.table("prices", {
      ...common,
      partitionKey: { name: "asset", type: string },
      sortKey: { name: "source", type: string },
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
    });

    this.marginCalls = this.table("marginCalls", {
      ...common,
      partitionKey: { name: "accountId", type: string },
    });
    this.marginCalls.addGlobalSecondaryIndex({
      indexName: "byDeadline",
      partitionKey: { name: "openCallShard", type: string },
      sortKey: { name: "deadlineAt", type: string },
    });

    this.triggerIndex = this.table("triggerIndex", {
      ...common,
      partitionKey: { name: "line", type: string },
      sortKey: { name: "triggerKey", type: string },
      timeToLiveAttribute: TTL_ATTRIBUTE,
    });

    this.outbox = this.table("outbox", {
      ...common,
      partitionKey: { name: "outboxId", type: string },
      stream: StreamViewType.NEW_IMAGE,
      timeToLiveAttribute: TTL_ATTRIBUTE,
    });

    this.auditLog = this.table("auditLog", {
      ...common,
      partitionKey: { name: "accountId", type: string },
      sortKey: { name: "seq", type: string },
    });
    this.auditLog.addGlobalSecondaryIndex({
      indexName: "byDay",
      partitionKey: { name: "dayShard", type: string },
      sortKey: { name: "recordedAtAccount", type: string },
    });

    this.quarantine = this.table("quarantine", {
      ...common,
      partitionKey: { name: "quarantineId", type: string },
      timeToLiveAttribute: TTL_ATTRIBUTE,
    });
    this.quarantine.addGlobalSecondaryIndex({
      indexName: "byStatus",
      partitionKey: { name: "status", type: string },
      sortKey: { name: "receivedAtId", type: string },
    });

    this.idempotency = this.table("idempotency", {
      ...common,
      partitionKey: { name: "id", type: string },
      // Powertools' default expiry attribute: the records are disposable once past the stream retention.
      timeToLiveAttribute: "expiration",
    });
  }

  /** Every table, by name, for grants and alarms. */
  all(): Record<TableName, Table> {
    return {
      accounts: this.accounts,
      prices: this.prices,
      marginCalls: this.marginCalls,
      triggerIndex: this.triggerIndex,
      outbox: this.outbox,
      auditLog: this.auditLog,
      quarantine: this.quarantine,
      idempotency: this.idempotency,
    };
  }

  private table(name: TableName, props: ConstructorParameters<typeof Table>[2]): Table {
    const logicalId = TABLE_LOGICAL_IDS[name];
    const table = new Table(this, logicalId, props);
    (table.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
    return table;
  }
}
