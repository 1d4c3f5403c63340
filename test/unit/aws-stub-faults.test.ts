// The aws-stub's fault modes (stub.faults), driven through the real SDK v3 clients as the engine drives them.
import {
  EventBridgeClient,
  type EventBridgeClientConfig,
  PutEventsCommand,
} from "@aws-sdk/client-eventbridge";
import { PublishCommand, SNSClient, type SNSClientConfig } from "@aws-sdk/client-sns";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Faults } from "../../functions/local/aws-stub/faults.ts";
import {
  type AwsStub,
  type PutEventsEntry,
  type SnsPublish,
  startAwsStub,
} from "../../functions/local/aws-stub/index.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const base = { region: "us-east-1", credentials, maxAttempts: 1 };

let stub: AwsStub;
const smsSeen: SnsPublish[] = [];
const topicSeen: SnsPublish[] = [];
const eventsSeen: PutEventsEntry[] = [];
const clients: { destroy(): void }[] = [];

function sns(extra: Partial<SNSClientConfig> = {}): SNSClient {
  const client = new SNSClient({ ...base, endpoint: stub.endpoint, ...extra });
  clients.push(client);
  return client;
}

function eventBridge(extra: Partial<EventBridgeClientConfig> = {}): EventBridgeClient {
  const client = new EventBridgeClient({ ...base, endpoint: stub.endpoint, ...extra });
  clients.push(client);
  return client;
}

function sqs(): SQSClient {
  const client = new SQSClient({ ...base, endpoint: stub.endpoint });
  clients.push(client);
  return client;
}

const sms = (n: number) => new PublishCommand({ PhoneNumber: "+15555550100", Message: `sms ${n}` });
const topic = (n: number) =>
  new PublishCommand({ TopicArn: "arn:aws:sns:us-east-1:123456789012:notices", Message: `mail ${n}` });
const put = (...ids: number[]) =>
  new PutEventsCommand({
    Entries: ids.map((id) => ({ Source: "s", DetailType: "d", Detail: JSON.stringify({ id }) })),
  });
const failure = (sent: Promise<unknown>) => sent.then(() => undefined).catch((e: unknown) => e);

/** A retry strategy without back-off that retries any failure up to twice. */
function retryAtOnce() {
  const token = (count: number) => ({ getRetryCount: () => count, getRetryDelay: () => 0 });
  return {
    mode: "standard",
    acquireInitialRetryToken: async () => token(0),
    refreshRetryTokenForRetry: async (previous: ReturnType<typeof token>) => {
      if (previous.getRetryCount() >= 2) throw new Error("out of retries");
      return token(previous.getRetryCount() + 1);
    },
    recordSuccess: () => {},
  };
}

beforeAll(async () => {
  stub = await startAwsStub({
    onSms: (p) => {
      smsSeen.push(p);
    },
    onTopicMessage: (p) => {
      topicSeen.push(p);
    },
    onEvent: (e) => {
      eventsSeen.push(e);
    },
  });
});

afterEach(() => {
  stub.reset();
  smsSeen.length = 0;
  topicSeen.length = 0;
  eventsSeen.length = 0;
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  await stub.stop();
});

describe("aws-stub faults: acceptThenFail", () => {
  it("records and delivers an SMS, then fails its reply with a 500 InternalError", async () => {
    stub.faults.acceptThenFail({ service: "sns", count: 1 });
    const client = sns();
    const error = await failure(client.send(sms(1)));
    expect(error).toMatchObject({ name: "InternalErrorException", $metadata: { httpStatusCode: 500 } });
    expect(stub.published).toHaveLength(1);
    expect(stub.published[0]).toMatchObject({
      phoneNumber: "+15555550100",
      message: "sms 1",
      replyFailed: true,
    });
    expect(smsSeen).toEqual(stub.published);

    const out = await client.send(sms(2));
    expect(stub.published.map((p) => [p.messageId, p.replyFailed])).toEqual([
      [stub.published[0]?.messageId, true],
      [out.MessageId, undefined],
    ]);
    expect(stub.faults.summary().acceptedThenFailed).toEqual({ sns: 1, eventbridge: 0 });
  });

  it("is not used up by a Publish refused as invalid, and a retrying SDK publishes twice", async () => {
    stub.faults.acceptThenFail({ service: "sns", count: 1 });
    const invalid = await failure(sns().send(new PublishCommand({ Message: "no destination" })));
    expect(invalid).toMatchObject({ name: "InvalidParameterException" });
    const out = await sns({ maxAttempts: 3, retryStrategy: retryAtOnce() }).send(topic(1));
    expect(out.$metadata.attempts).toBe(2);
    expect(stub.published.map((p) => [p.message, p.replyFailed ?? false])).toEqual([
      ["mail 1", true],
      ["mail 1", false],
    ]);
    expect(stub.published[1]?.messageId).toBe(out.MessageId);
    expect(topicSeen).toHaveLength(2);
  });

  it("records and delivers every PutEvents entry, then fails the reply with a 500 InternalException", async () => {
    stub.faults.acceptThenFail({ service: "eventbridge", count: 1 });
    const client = eventBridge();
    const error = await failure(client.send(put(1, 2)));
    expect(error).toMatchObject({ name: "InternalException", $metadata: { httpStatusCode: 500 } });
    expect(stub.events.map((e) => [JSON.parse(e.detail).id, e.replyFailed])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(eventsSeen).toEqual(stub.events);
    const out = await client.send(put(3));
    expect(out.FailedEntryCount).toBe(0);
    expect(stub.events[2]?.replyFailed).toBeUndefined();
    expect(stub.faults.summary().acceptedThenFailed).toEqual({ sns: 0, eventbridge: 1 });
  });
});

describe("aws-stub faults: throttle", () => {
  it("accepts perSecond SNS requests and refuses the rest with a 400 Throttling, unrecorded", async () => {
    stub.faults.throttle({ service: "sns", perSecond: 2 });
    const client = sns();
    const outcomes = [];
    for (let n = 1; n <= 4; n += 1) outcomes.push(await failure(client.send(sms(n))));
    expect(outcomes.slice(0, 2)).toEqual([undefined, undefined]);
    for (const error of outcomes.slice(2)) {
      expect(error).toMatchObject({ name: "Throttling", $metadata: { httpStatusCode: 400 } });
    }
    expect(stub.published.map((p) => p.message)).toEqual(["sms 1", "sms 2"]);
    expect(smsSeen).toHaveLength(2);
    expect(stub.faults.summary().throttled).toEqual({ sns: 2, eventbridge: 0, sqs: 0 });
  });

  it("with smsOnly, limits SMS and lets topic publishes through uncounted", async () => {
    stub.faults.throttle({ service: "sns", perSecond: 1, smsOnly: true });
    const client = sns();
    await client.send(topic(1));
    await client.send(sms(1));
    await client.send(topic(2));
    const error = await failure(client.send(sms(2)));
    expect(error).toMatchObject({ name: "Throttling", $metadata: { httpStatusCode: 400 } });
    expect(stub.published.map((p) => p.message)).toEqual(["mail 1", "sms 1", "mail 2"]);
    expect(stub.faults.summary().throttled.sns).toBe(1);
  });

  it("refuses PutEvents with a 400 ThrottlingException and accepts again a second later", async () => {
    stub.faults.throttle({ service: "eventbridge", perSecond: 1 });
    const client = eventBridge();
    await client.send(put(1));
    const error = await failure(client.send(put(2)));
    expect(error).toMatchObject({ name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
    expect(stub.events.map((e) => JSON.parse(e.detail).id)).toEqual([1]);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    await client.send(put(3));
    expect(stub.events.map((e) => JSON.parse(e.detail).id)).toEqual([1, 3]);
    expect(stub.faults.summary().throttled).toEqual({ sns: 0, eventbridge: 1, sqs: 0 });
  });

  it("refuses SQS requests with a 400 RequestThrottled, nothing sent", async () => {
    stub.faults.throttle({ service: "sqs", perSecond: 1 });
    const url = stub.queueUrl("Throttled");
    const client = sqs();
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "one" }));
    const error = await failure(client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "two" })));
    expect(error).toMatchObject({ name: "RequestThrottled", $metadata: { httpStatusCode: 400 } });
    expect(stub.queue(url).messages.map((m) => m.body)).toEqual(["one"]);
    expect(stub.faults.summary().throttled).toEqual({ sns: 0, eventbridge: 0, sqs: 1 });
  });

  it("counts in a rolling one-second window", () => {
    let now = 0;
    const faults = new Faults(() => now);
    faults.throttle({ service: "sns", perSecond: 2 });
    const admitted = [0, 500, 999, 1000, 1499, 1500, 1500].map((at) => {
      now = at;
      return faults.admit("sns", false);
    });
    expect(admitted).toEqual([true, true, false, true, false, true, false]);
    expect(faults.summary().throttled.sns).toBe(3);
    expect(faults.admit("eventbridge", false)).toBe(true);
  });
});

describe("aws-stub faults: smsSpendLimit", () => {
  it("answers SMS past the limit as a success but records them dropped and does not deliver them", async () => {
    stub.faults.smsSpendLimit({ maxMessages: 2 });
    const client = sns();
    const ids = [];
    for (let n = 1; n <= 4; n += 1) ids.push((await client.send(sms(n))).MessageId);
    await client.send(topic(1));
    expect(new Set(ids).size).toBe(4);
    expect(stub.published.map((p) => [p.messageId, p.dropped ?? false])).toEqual([
      [ids[0], false],
      [ids[1], false],
      [ids[2], true],
      [ids[3], true],
      [expect.any(String), false],
    ]);
    expect(smsSeen.map((p) => p.message)).toEqual(["sms 1", "sms 2"]);
    expect(topicSeen.map((p) => p.message)).toEqual(["mail 1"]);
    expect(stub.faults.summary().smsDropped).toBe(2);
  });
});

describe("aws-stub faults: latency", () => {
  it("delays the requests of one service, or of all", async () => {
    stub.faults.latency({ service: "eventbridge", ms: 150 });
    const started = performance.now();
    await eventBridge().send(put(1));
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await sns().send(topic(1));
    expect(stub.faults.summary().delayed).toBe(1);
    stub.faults.latency({ ms: 20 });
    await sns().send(topic(2));
    await eventBridge().send(put(2));
    expect(stub.faults.summary().delayed).toBe(3);
  });

  it("does not hold a delayed request past stop()", async () => {
    const own = await startAwsStub();
    own.faults.latency({ ms: 10_000 });
    const client = new SNSClient({ ...base, endpoint: own.endpoint });
    try {
      const started = Date.now();
      const pending = failure(client.send(topic(1)));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await own.stop();
      expect(await pending).toBeInstanceOf(Error);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(own.published).toEqual([]);
    } finally {
      client.destroy();
    }
  });
});

describe("aws-stub faults: summary, reset and seq", () => {
  it("counts every injected fault, and reset() clears the faults and the counts", async () => {
    const { acceptThenFail, throttle, failNextRequests, summary, reset } = stub.faults;
    acceptThenFail({ service: "eventbridge", count: 5 });
    throttle({ service: "sns", perSecond: 0 });
    failNextRequests(1, 400);
    stub.failNextPutEvents(1);
    await failure(eventBridge().send(put(1)));
    await failure(eventBridge().send(put(2, 3)));
    await failure(sns().send(sms(1)));
    expect(summary()).toEqual({
      acceptedThenFailed: { sns: 0, eventbridge: 1 },
      throttled: { sns: 1, eventbridge: 0, sqs: 0 },
      smsDropped: 0,
      delayed: 0,
      requestsFailed: 1,
      putEventsEntriesFailed: 1,
      sqsBatchEntriesFailed: 0,
    });
    expect(stub.events.map((e) => [JSON.parse(e.detail).id, e.replyFailed])).toEqual([[3, true]]);
    reset();
    expect(summary().acceptedThenFailed.eventbridge).toBe(0);
    await sns().send(sms(2));
    expect((await eventBridge().send(put(4))).FailedEntryCount).toBe(0);
    expect(stub.events.at(-1)?.replyFailed).toBeUndefined();
  });

  it("stub.reset() clears the faults too", async () => {
    stub.faults.throttle({ service: "sns", perSecond: 0 });
    stub.faults.smsSpendLimit({ maxMessages: 0 });
    stub.reset();
    await sns().send(sms(1));
    expect(stub.published.map((p) => p.dropped)).toEqual([undefined]);
    expect(stub.faults.summary().throttled.sns).toBe(0);
  });

  it("orders records across services by a shared seq", async () => {
    await sns().send(sms(1));
    await eventBridge().send(put(1, 2));
    await sns().send(topic(1));
    const first = stub.published[0]?.seq ?? 0;
    expect(first).toBeGreaterThan(0);
    expect(stub.events.map((e) => e.seq)).toEqual([first + 1, first + 2]);
    expect(stub.published.map((p) => p.seq)).toEqual([first, first + 3]);
  });

  it("refuses bad arguments with a RangeError", () => {
    expect(() => stub.faults.throttle({ service: "sqs", perSecond: 1, smsOnly: true })).toThrow(RangeError);
    expect(() => stub.faults.throttle({ service: "sns", perSecond: -1 })).toThrow(RangeError);
    expect(() => stub.faults.acceptThenFail({ service: "sns", count: 1.5 })).toThrow(RangeError);
    expect(() => stub.faults.smsSpendLimit({ maxMessages: Number.NaN })).toThrow(RangeError);
    expect(() => stub.faults.latency({ ms: Number.POSITIVE_INFINITY })).toThrow(RangeError);
  });
});
