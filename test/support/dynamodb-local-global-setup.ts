import type { TestProject } from "vitest/node";
import { DynamoDbLocalSetupError, startDynamoDbLocal } from "../../functions/local/dynamodb-local.ts";
import { type CfnTemplate, synthesizeTemplate } from "../../functions/local/template.ts";

declare module "vitest" {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
    template: CfnTemplate;
  }
}

/** Starts one DynamoDB Local for the integration tests and synthesizes the template once for all of them. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let local: Awaited<ReturnType<typeof startDynamoDbLocal>>;
  try {
    local = await startDynamoDbLocal({ log: (line) => console.log(line) });
  } catch (error) {
    if (error instanceof DynamoDbLocalSetupError) {
      // The message says what to do; a stack trace would only hide it.
      console.error(`\n${error.message}\n`);
      const clean = new Error(error.message);
      clean.stack = error.message;
      throw clean;
    }
    throw error;
  }
  project.provide("dynamodbEndpoint", local.endpoint);
  project.provide("template", synthesizeTemplate());
  return async () => {
    await local.stop();
  };
}
