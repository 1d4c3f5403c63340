import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";

// The local tools run on the developer's Node (>= 20); the deployed Lambdas run on Node 22 or newer.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** The region the local clients claim. DynamoDB Local keeps one database per access key id and region. */
export const LOCAL_REGION = "us-east-1";

export interface LocalClients {
  readonly dynamodb: DynamoDBClient;
  readonly streams: DynamoDBStreamsClient;
  destroy(): void;
}

/**
 * SDK v3 clients for DynamoDB Local. Each access key id gets its own database (DynamoDB Local runs without
 * -sharedDb), which is how test files stay apart on one JVM.
 */
export function localClients(endpoint: string, accessKeyId: string): LocalClients {
  const config = {
    endpoint,
    region: LOCAL_REGION,
    credentials: { accessKeyId, secretAccessKey: "local" },
    maxAttempts: 3,
  };
  const dynamodb = new DynamoDBClient(config);
  const streams = new DynamoDBStreamsClient(config);
  return {
    dynamodb,
    streams,
    destroy: () => {
      dynamodb.destroy();
      streams.destroy();
    },
  };
}
