/**
 * Turns the table of handlers (handler-table.ts) into functions and their triggers: a stream mapping with
 * its on-failure queue, the fan-out queue's mapping, or a schedule with its dead-letter queue. One loop
 * over one table, so no list of handler ids is repeated anywhere.
 */
import { Duration } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { type EventBus, Rule, RuleTargetInput, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { StartingPosition } from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource, SqsDlq, SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { IQueue, Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { EngineFunction } from "./engine-function.ts";
import {
  HANDLERS,
  type HandlerDefinition,
  type QueueTrigger,
  type ScheduleTrigger,
  type StreamTrigger,
} from "./handler-table.ts";
import { deadLetterQueue } from "./queues.ts";
import type { EngineTables } from "./tables.ts";

export interface EngineHandlersProps {
  readonly tables: EngineTables;
  /** The queue that spreads a large revaluation over many invocations. */
  readonly fanOutQueue: IQueue;
  /** The queue the outbox relay puts notices on, for the notifier. */
  readonly noticeQueue: IQueue;
  readonly emailTopic: ITopic;
  /** The bus the outbox relay publishes on. */
  readonly eventBus: EventBus;
  /** The settings every function reads (table names, policies, queue, topic and bus). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Whether the handlers that have one get their reserved concurrency (handler-table.ts).
   * @default true
   */
  readonly reserveConcurrency?: boolean;
  /**
   * How often each scheduled handler (the sweep) runs.
   * @default 1 minute
   */
  readonly scheduleRate?: Duration | undefined;
  /**
   * The handlers to deploy.
   * @default HANDLERS, the engine's six
   */
  readonly handlers?: readonly HandlerDefinition[];
}

/** A handler as deployed: its row of the table, its function, and the queue that takes what it gives up. */
export interface DeployedHandler {
  readonly definition: HandlerDefinition;
  readonly engineFunction: EngineFunction;
  /** A stream mapping's on-failure queue or a schedule target's dead-letter queue; none for the fan-out queue. */
  readonly deadLetter?: Queue;
}

/**
 * The engine's Lambda functions and their triggers, one per row of the handler table.
 *
 * Its resources are created in `scope`, beside this construct, not under it: their logical ids are hashed
 * from their construct paths, and the deployed functions and queues must keep the ids they already have.
 */
export class EngineHandlers extends Construct {
  readonly deployed: readonly DeployedHandler[];
  /** Each function, by handler id. */
  readonly functions: Readonly<Record<string, EngineFunction>>;
  /** Each dead-letter queue, by name: `${id}Stream` for a stream mapping, the handler id for a schedule. */
  readonly deadLetterQueues: Readonly<Record<string, Queue>>;
  /** The ids of the handlers a DynamoDB stream invokes. */
  readonly streamConsumers: readonly string[];

  private readonly resourceScope: Construct;
  private readonly props: EngineHandlersProps;

  constructor(scope: Construct, id: string, props: EngineHandlersProps) {
    super(scope, id);
    this.resourceScope = scope;
    this.props = props;
    this.deployed = (props.handlers ?? HANDLERS).map((definition) => this.deploy(definition));
    this.functions = Object.fromEntries(
      this.deployed.map((handler) => [handler.definition.id, handler.engineFunction]),
    );
    this.deadLetterQueues = Object.fromEntries(
      this.deployed.flatMap(({ definition, deadLetter }) =>
        deadLetter
          ? [[definition.trigger.kind === "stream" ? `${definition.id}Stream` : definition.id, deadLetter]]
          : [],
      ),
    );
    this.streamConsumers = this.deployed
      .filter((handler) => handler.definition.trigger.kind === "stream")
      .map((handler) => handler.definition.id);
  }

  private deploy(definition: HandlerDefinition): DeployedHandler {
    const { tables, fanOutQueue, noticeQueue, emailTopic, eventBus, environment } = this.props;
    const engineFunction = new EngineFunction(this.resourceScope, definition.id, {
      entry: definition.entry,
      description: definition.description,
      environment,
      timeout: definition.timeout,
      memorySizeMegabytes: definition.memorySizeMegabytes,
      reservedConcurrentExecutions:
        this.props.reserveConcurrency === false ? undefined : definition.reservedConcurrency,
      statements: definition.statements({ tables, fanOutQueue, noticeQueue, emailTopic, eventBus }),
    });
    const trigger = definition.trigger;
    switch (trigger.kind) {
      case "stream":
        return {
          definition,
          engineFunction,
          deadLetter: this.stream(definition.id, engineFunction, trigger),
        };
      case "queue":
        this.queue(engineFunction, trigger);
        return { definition, engineFunction };
      case "schedule":
        return {
          definition,
          engineFunction,
          deadLetter: this.schedule(definition.id, engineFunction, trigger),
        };
    }
  }

  /** Maps the table's stream to the function; returns the queue for the records it gives up on. */
  private stream(id: string, engineFunction: EngineFunction, trigger: StreamTrigger): Queue {
    const onFailure = deadLetterQueue(this.resourceScope, `${id}StreamFailures`);
    const table = this.props.tables.all()[trigger.table];
    engineFunction.lambdaFunction.addEventSource(
      // CDK's ITable declares optional properties without `| undefined`, which exactOptionalPropertyTypes rejects.
      new DynamoEventSource(table as unknown as ITable, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: trigger.batchSize,
        maxBatchingWindow: Duration.seconds(0),
        bisectBatchOnError: true,
        retryAttempts: trigger.retryAttempts,
        maxRecordAge: trigger.maximumRecordAge,
        parallelizationFactor: trigger.parallelizationFactor,
        reportBatchItemFailures: true,
        onFailure: new SqsDlq(onFailure),
        filters: [...trigger.filters],
      }),
    );
    return onFailure;
  }

  /** Maps the trigger's queue to the function, reporting each failed message rather than the batch. */
  private queue(engineFunction: EngineFunction, trigger: QueueTrigger): void {
    engineFunction.lambdaFunction.addEventSource(
      new SqsEventSource(this.props[trigger.queue], {
        batchSize: trigger.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: trigger.maximumConcurrency,
      }),
    );
  }

  /** Runs the function on the schedule; returns the dead-letter queue of the events it could not take. */
  private schedule(id: string, engineFunction: EngineFunction, trigger: ScheduleTrigger): Queue {
    const deadLetter = deadLetterQueue(this.resourceScope, `${id}DeadLetter`);
    new Rule(this.resourceScope, `${id}Schedule`, {
      description: trigger.description,
      schedule: Schedule.rate(this.props.scheduleRate ?? Duration.minutes(1)),
      targets: [
        new LambdaFunction(engineFunction.lambdaFunction, {
          event: RuleTargetInput.fromEventPath("$"),
          retryAttempts: trigger.retryAttempts,
          maxEventAge: trigger.maximumEventAge,
          deadLetterQueue: deadLetter,
        }),
      ],
    });
    return deadLetter;
  }
}
