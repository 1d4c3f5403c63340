/**
 * The engine's DynamoDB tables, under fixed logical ids: the local runtime names its DynamoDB Local tables
 * after them. One table per lifecycle and per stream consumer; docs/data-model.md gives the keys and why.
 */
import { type CfnResource, RemovalPolicy } from "aws-cdk-lib";
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  StreamViewType,
  Table,
  TableEncryption,
} from "aws-cdk-lib/aws-dynamodb";
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
  policies: "Policies",
  insuranceFund: "InsuranceFund",
} as const;

export type TableName = keyof typeof TABLE_LOGICAL_IDS;

/** Time-to-live attribute, the same on every table that has one: epoch seconds. */
export const TTL_ATTRIBUTE = "expiresAtEpochSeconds";

/** The settings every table shares, whatever its keys. */
type TableProps = Omit<ConstructorParameters<typeof Table>[2], "partitionKey">;

/** A global secondary index: its name and its string keys. */
interface IndexShape {
  readonly indexName: string;
  readonly partitionKey: string;
  readonly sortKey: string;
  /** Keys only, when the index only finds items that are then read from the table. Default: all attributes. */
  readonly keysOnly?: boolean;
}

/** What differs from table to table: its string keys, stream, expiry attribute and indexes. */
interface TableShape {
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly stream?: StreamViewType;
  readonly timeToLiveAttribute?: string;
  readonly indexes?: readonly IndexShape[];
}

/** The keys of each table. See docs/data-model.md for the access patterns behind them. */
const TABLE_SHAPES: Record<TableName, TableShape> = {
  accounts: {
    partitionKey: "accountId",
    sortKey: "sk",
    stream: StreamViewType.NEW_AND_OLD_IMAGES,
    timeToLiveAttribute: TTL_ATTRIBUTE,
    // Sparse: only POSITION items have `instrument`. The holders of an instrument, for the loss waterfall's
    // ADL and socialised loss (adapters/counterparties.ts).
    indexes: [
      { indexName: "byInstrument", partitionKey: "instrument", sortKey: "accountId", keysOnly: true },
    ],
  },
  prices: { partitionKey: "asset", sortKey: "source", stream: StreamViewType.NEW_AND_OLD_IMAGES },
  marginCalls: {
    partitionKey: "accountId",
    indexes: [{ indexName: "byDeadline", partitionKey: "openCallShard", sortKey: "deadlineAt" }],
  },
  triggerIndex: { partitionKey: "line", sortKey: "triggerKey", timeToLiveAttribute: TTL_ATTRIBUTE },
  outbox: { partitionKey: "outboxId", stream: StreamViewType.NEW_IMAGE, timeToLiveAttribute: TTL_ATTRIBUTE },
  auditLog: {
    partitionKey: "accountId",
    sortKey: "seq",
    indexes: [{ indexName: "byDay", partitionKey: "dayShard", sortKey: "recordedAtAccount" }],
  },
  quarantine: {
    partitionKey: "quarantineId",
    timeToLiveAttribute: TTL_ATTRIBUTE,
    indexes: [{ indexName: "byStatus", partitionKey: "status", sortKey: "receivedAtId" }],
  },
  // Versions `V#0000000003` of each policy, and the active set under `*` / `ACTIVE` (docs/policies.md).
  policies: { partitionKey: "policyId", sortKey: "version" },
  // One partition per currency `FUND#<currency>`: the head `BALANCE`, the flows `FLOW#<seq>` and their
  // idempotency markers `FLOWID#<flowId>` (functions/domain/insurance-fund.ts). Append-only but the head.
  insuranceFund: { partitionKey: "fund", sortKey: "entry" },
};

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
  /** Engine: every version of every margin policy, append-only, and the set of active versions. */
  readonly policies: Table;
  /** Engine: the insurance fund's ledger, one partition per currency: its balance and every flow. */
  readonly insuranceFund: Table;

  constructor(scope: Construct, id: string, props: EngineTablesProps = {}) {
    super(scope, id);
    const common: TableProps = {
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      ...(props.encryptionKey
        ? { encryption: TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
        : { encryption: TableEncryption.AWS_MANAGED }),
    };
    this.accounts = this.table("accounts", common);
    this.prices = this.table("prices", common);
    this.marginCalls = this.table("marginCalls", common);
    this.triggerIndex = this.table("triggerIndex", common);
    this.outbox = this.table("outbox", common);
    this.auditLog = this.table("auditLog", common);
    this.quarantine = this.table("quarantine", common);
    this.policies = this.table("policies", common);
    this.insuranceFund = this.table("insuranceFund", common);
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
      policies: this.policies,
      insuranceFund: this.insuranceFund,
    };
  }

  /** Creates one table from its shape, under its fixed logical id, then its secondary indexes. */
  private table(name: TableName, common: TableProps): Table {
    const shape = TABLE_SHAPES[name];
    const logicalId = TABLE_LOGICAL_IDS[name];
    const table = new Table(this, logicalId, {
      ...common,
      partitionKey: { name: shape.partitionKey, type: AttributeType.STRING },
      ...(shape.sortKey ? { sortKey: { name: shape.sortKey, type: AttributeType.STRING } } : {}),
      ...(shape.stream ? { stream: shape.stream } : {}),
      ...(shape.timeToLiveAttribute ? { timeToLiveAttribute: shape.timeToLiveAttribute } : {}),
    });
    for (const index of shape.indexes ?? []) {
      table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        ...(index.keysOnly ? { projectionType: ProjectionType.KEYS_ONLY } : {}),
      });
    }
    (table.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
    return table;
  }
}
