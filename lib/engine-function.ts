/**
 * Every handler is deployed the same way (runtime, architecture, bundling, JSON logs to its own log group,
 * a role of its own). This construct is that one way, so the stack only says what differs per handler.
 */
import { fileURLToPath } from "node:url";
import { type CfnResource, type Duration, RemovalPolicy } from "aws-cdk-lib";
import { type IRole, type PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, LoggingFormat, Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

/** The metadata key under which each function records its handler module, for the local runtime. */
export const ENTRY_METADATA = "margin-call:entry";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface EngineFunctionProps {
  /** The handler module, relative to the repository root, e.g. `functions/handlers/sweep.ts`. */
  readonly entry: string;
  readonly description: string;
  /** Added to the Powertools service name and log level that every function has. */
  readonly environment: Readonly<Record<string, string>>;
  readonly timeout: Duration;
  /**
   * The function's memory, in megabytes.
   * @default 512
   */
  readonly memorySizeMegabytes?: number | undefined;
  /**
   * Concurrency reserved for the function.
   * @default none
   */
  readonly reservedConcurrentExecutions?: number | undefined;
  /** Everything the handler calls, beyond its logs and its event source (which the mapping grants). */
  readonly statements: readonly PolicyStatement[];
}

/**
 * One handler as a Lambda function: Node 24 on arm64, an ESM bundle built by the local esbuild, JSON logs
 * to its own log group, and its own role holding only the statements given (no managed policy).
 */
export class EngineFunction extends Construct {
  readonly lambdaFunction: NodejsFunction;
  readonly role: IRole;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: EngineFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, "Logs", {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `${id}: its log group and what its handler calls, nothing else`,
    });
    this.logGroup.grantWrite(role);
    for (const statement of props.statements) role.addToPrincipalPolicy(statement);
    this.role = role;
    this.lambdaFunction = new NodejsFunction(this, "Function", {
      entry: `${ROOT}${props.entry}`,
      handler: "handler",
      projectRoot: ROOT,
      depsLockFilePath: `${ROOT}package-lock.json`,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      description: props.description,
      memorySize: props.memorySizeMegabytes ?? 512,
      timeout: props.timeout,
      ...(props.reservedConcurrentExecutions === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
      role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      environment: {
        POWERTOOLS_SERVICE_NAME: "margin-call-engine",
        POWERTOOLS_LOG_LEVEL: "INFO",
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: "node24",
        platform: "node",
        minify: true,
        sourceMap: true,
        mainFields: ["module", "main"],
        // Some dependencies are CommonJS and call require(): give the ESM bundle one.
        banner: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
        forceDockerBundling: false,
      },
    });
    (this.lambdaFunction.node.defaultChild as CfnResource).addMetadata(ENTRY_METADATA, props.entry);
  }
}
