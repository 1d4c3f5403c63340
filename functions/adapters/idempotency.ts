/**
 * At-most-once side effects per id (an SMS, an email, an EventBridge event), with Powertools' idempotency
 * utility: the first call claims the id in the Idempotency table (INPROGRESS), runs, and stores the
 * result; a re-delivered record finds COMPLETED and returns the stored result without calling out again.
 * A failed call releases the claim, so the stream's retry can try again.
 */
import { IdempotencyConfig, makeIdempotent } from "@aws-lambda-powertools/idempotency";
import { DynamoDBPersistenceLayer } from "@aws-lambda-powertools/idempotency/dynamodb";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Context } from "aws-lambda";

/**
 * The prefix of every idempotency key. Powertools prefixes keys with the function's name by default, so a
 * renamed or replaced function would send again every SMS, email and event of a replayed stream; a fixed
 * prefix keeps "at most once" across redeploys. Changing it forgets every record made before.
 */
export const IDEMPOTENCY_KEY_PREFIX = "margin-call-engine";

/** How long a completed side effect is remembered: longer than any stream retention (24 h). */
export const IDEMPOTENCY_EXPIRY_SECONDS = 7 * 86_400;

export type OnceFunction<Result> = (input: { readonly key: string }) => Promise<Result>;

const stores = new WeakMap<DynamoDBClient, Map<string, DynamoDBPersistenceLayer>>();

/** One persistence layer per client and table, reused across invocations. */
export function onceStore(dynamo: DynamoDBClient, tableName: string): DynamoDBPersistenceLayer {
  const byTable = stores.get(dynamo) ?? new Map<string, DynamoDBPersistenceLayer>();
  stores.set(dynamo, byTable);
  let store = byTable.get(tableName);
  if (!store) {
    store = new DynamoDBPersistenceLayer({ tableName, awsSdkV3Client: dynamo as never });
    byTable.set(tableName, store);
  }
  return store;
}

/** Wraps `run` so it runs at most once per `key` (until the record expires). */
export function once<Result extends Record<string, unknown>>(
  store: DynamoDBPersistenceLayer,
  run: (key: string) => Promise<Result>,
  context?: Context,
): (key: string) => Promise<Result> {
  const config = new IdempotencyConfig({
    eventKeyJmesPath: "key",
    expiresAfterSeconds: IDEMPOTENCY_EXPIRY_SECONDS,
    throwOnNoIdempotencyKey: true,
  });
  if (context) config.registerLambdaContext(context);
  const idempotent = makeIdempotent(async (input: { key: string }) => run(input.key), {
    persistenceStore: store,
    config,
    keyPrefix: IDEMPOTENCY_KEY_PREFIX,
  });
  return (key: string) => idempotent({ key }) as Promise<Result>;
}
