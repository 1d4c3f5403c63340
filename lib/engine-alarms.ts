/**
 * What an operator is told, and how: an encrypted alarm topic and an alarm for each condition that needs a
 * person (a failing or throttled function, a stream falling behind, a message set aside, a log signal, a
 * notice SNS could not deliver, SMS spend near its limit). Grouped so the stack hands it what to watch.
 */
import { Duration, Stack } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  Metric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { FilterPattern } from "aws-cdk-lib/aws-logs";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { LOG_SIGNALS, type LogSignal, OPERATOR_ALARMS } from "../functions/domain/alarms.ts";
import type { BorrowerNotices } from "./borrower-notices.ts";
import type { EngineFunction } from "./engine-function.ts";

/** The CloudWatch namespace of the metrics the log signals' filters count. */
export const METRIC_NAMESPACE = "MarginCallEngine";

/** How far a stream consumer may fall behind, in milliseconds, for three minutes before it alarms. */
const ITERATOR_AGE_LIMIT_MILLISECONDS = 60_000;

/**
 * How long a page of revaluation work may wait on its queue before an operator is told: a sweep pass
 * queues its segments at once and a crash's ticks their ranges, and either should start within minutes.
 */
const WORK_QUEUE_AGE_LIMIT = Duration.minutes(5);

/** The share of the monthly SMS spend limit at which the spend alarm fires. */
const SMS_SPEND_ALARM_SHARE = 0.8;

export interface EngineAlarmsProps {
  /** The functions to watch, by handler id: their errors, throttles and the log signals they log. */
  readonly functions: Readonly<Record<string, EngineFunction>>;
  /**
   * The ids of the functions a stream invokes: their iterator age is watched.
   * @default none
   */
  readonly streamConsumers?: readonly string[];
  /**
   * Queues that hold what was set aside for an operator, by name: one message raises an alarm.
   * @default none
   */
  readonly deadLetterQueues?: Readonly<Record<string, IQueue>>;
  /**
   * Queues of work whose oldest message must not wait longer than WORK_QUEUE_AGE_LIMIT: the fan-out
   * queue (a tick's or a sweep's pages falling behind), by name.
   * @default none
   */
  readonly workQueues?: Readonly<Record<string, IQueue>>;
  /** The notices whose SMS and email delivery failures, and SMS spend, are watched. */
  readonly notices: BorrowerNotices;
  /**
   * The log messages that raise an alarm, matched as prefixes in every function's log group.
   * @default LOG_SIGNALS then OPERATOR_ALARMS, from functions/domain/alarms.ts
   */
  readonly logSignals?: readonly LogSignal[];
  /**
   * Where alarms are emailed.
   * @default no email subscription
   */
  readonly alarmEmail?: string | undefined;
}

/**
 * The alarm topic (under a key of its own: CloudWatch cannot publish to a topic under the AWS-managed SNS
 * key) and every alarm of the engine, each notifying that topic.
 *
 * Its resources are created in `scope`, beside this construct, not under it: their logical ids are hashed
 * from their construct paths, and the deployed topic, key and alarms must keep the ids they already have.
 */
export class EngineAlarms extends Construct {
  readonly alarmTopic: Topic;

  private readonly resourceScope: Construct;

  constructor(scope: Construct, id: string, props: EngineAlarmsProps) {
    super(scope, id);
    this.resourceScope = scope;
    this.alarmTopic = this.topic(props.alarmEmail);
    this.watchFunctions(props.functions, props.streamConsumers ?? []);
    this.watchDeadLetters(props.deadLetterQueues ?? {});
    this.watchWorkQueues(props.workQueues ?? {});
    const logSignals = props.logSignals ?? [...Object.values(LOG_SIGNALS), ...Object.values(OPERATOR_ALARMS)];
    this.watchLogSignals(props.functions, logSignals);
    this.watchNotices(props.notices);
  }

  private topic(alarmEmail: string | undefined): Topic {
    const alarmKey = new Key(this.resourceScope, "AlarmKey", {
      enableKeyRotation: true,
      description: "Encrypts the alarm topic; CloudWatch may use it to publish alarms",
    });
    // Only this account's alarms may use the key: without the source-account condition, CloudWatch acting
    // for any account could (the confused-deputy guard AWS recommends for service principals).
    alarmKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } },
      }),
    );
    const topic = new Topic(this.resourceScope, "AlarmTopic", { masterKey: alarmKey, enforceSSL: true });
    if (alarmEmail) topic.addSubscription(new EmailSubscription(alarmEmail));
    return topic;
  }

  private alarm(
    id: string,
    metric: IMetric,
    threshold: number,
    description: string,
    evaluationPeriods = 1,
  ): void {
    const alarm = new Alarm(this.resourceScope, id, {
      metric,
      threshold,
      evaluationPeriods,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
  }

  /** Errors and throttles of every function; the iterator age of every stream consumer. */
  private watchFunctions(
    functions: Readonly<Record<string, EngineFunction>>,
    streamConsumers: readonly string[],
  ): void {
    const minute = Duration.minutes(1);
    for (const [id, { lambdaFunction }] of Object.entries(functions)) {
      this.alarm(
        `${id}Errors`,
        lambdaFunction.metricErrors({ period: minute }),
        1,
        `${id} failed an invocation`,
      );
      this.alarm(
        `${id}Throttles`,
        lambdaFunction.metricThrottles({ period: minute }),
        1,
        `${id} was throttled`,
      );
    }
    for (const id of streamConsumers) {
      const lambdaFunction = functions[id]?.lambdaFunction;
      if (!lambdaFunction) continue;
      const iteratorAge = lambdaFunction.metric("IteratorAge", { statistic: "Maximum", period: minute });
      const description = `${id} is more than a minute behind its stream`;
      this.alarm(`${id}IteratorAge`, iteratorAge, ITERATOR_AGE_LIMIT_MILLISECONDS, description, 3);
    }
  }

  private watchDeadLetters(deadLetterQueues: Readonly<Record<string, IQueue>>): void {
    for (const [id, queue] of Object.entries(deadLetterQueues)) {
      const period = Duration.minutes(1);
      const depth = queue.metricApproximateNumberOfMessagesVisible({ period, statistic: "Maximum" });
      this.alarm(`${id}DeadLetterDepth`, depth, 1, `${id}: a message was set aside for an operator`);
    }
  }

  private watchWorkQueues(workQueues: Readonly<Record<string, IQueue>>): void {
    for (const [id, queue] of Object.entries(workQueues)) {
      const period = Duration.minutes(1);
      const age = queue.metricApproximateAgeOfOldestMessage({ period, statistic: "Maximum" });
      const limit = WORK_QUEUE_AGE_LIMIT.toSeconds();
      this.alarm(`${id}QueueAge`, age, limit, `${id}: work has waited ${limit} s or more on the queue`);
    }
  }

  /** One metric filter per signal in every function's log group, and one alarm per signal. */
  private watchLogSignals(
    functions: Readonly<Record<string, EngineFunction>>,
    logSignals: readonly LogSignal[],
  ): void {
    for (const { message, metric: metricName, description } of logSignals) {
      const period = Duration.minutes(1);
      const metric = new Metric({ namespace: METRIC_NAMESPACE, metricName, statistic: "Sum", period });
      for (const [id, engineFunction] of Object.entries(functions)) {
        engineFunction.logGroup.addMetricFilter(`${metricName}Filter`, {
          filterPattern: FilterPattern.stringValue("$.message", "=", `${message}*`),
          metricNamespace: METRIC_NAMESPACE,
          metricName,
          metricValue: "1",
          filterName: `${id}-${metricName}`,
        });
      }
      this.alarm(`${metricName}Alarm`, metric, 1, description);
    }
  }

  private watchNotices(notices: BorrowerNotices): void {
    const smsFailed = new Metric({
      namespace: "AWS/SNS",
      metricName: "NumberOfNotificationsFailed",
      dimensionsMap: { PhoneNumber: "PhoneNumber" },
      statistic: "Sum",
      period: Duration.minutes(5),
    });
    this.alarm("SmsDeliveryFailures", smsFailed, 1, "SNS could not deliver a margin notice by SMS");
    const smsSpend = new Metric({
      namespace: "AWS/SNS",
      metricName: "SMSMonthToDateSpentUSD",
      statistic: "Maximum",
      period: Duration.hours(1),
    });
    const spendThresholdUsd = notices.smsMonthlySpendLimitUsd * SMS_SPEND_ALARM_SHARE;
    this.alarm("SmsSpend", smsSpend, spendThresholdUsd, "SMS spend passed 80% of the monthly limit");
    const emailFailed = notices.emailTopic.metricNumberOfNotificationsFailed({ period: Duration.minutes(5) });
    this.alarm(
      "EmailDeliveryFailures",
      emailFailed,
      1,
      "SNS could not deliver a notice to the email channel",
    );
  }
}
