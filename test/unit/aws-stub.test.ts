import {
  EventBridgeClient,
  type EventBridgeClientConfig,
  PutEventsCommand,
} from "@aws-sdk/client-eventbridge";
import {
  ListTopicsCommand,
  PublishCommand,
  SetSMSAttributesCommand,
  SNSClient,
  type SNSClientConfig,
} from "@aws-sdk/client-sns";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type AwsStub,
  type PutEventsEntry,
  type SnsPublish,
  startAwsStub,
} from "../../functions/local/aws-stub.ts";

// The SDK checks this (for the exact value "true") when a client is constructed.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

let stub: AwsStub;
const smsSeen: SnsPublish[] = [];
const topicSeen: SnsPublish[] = [];
const eventsSeen: PutEventsEntry[] = [];
const clients: { destroy(): void }[] = [];

function sns(extra: Partial<SNSClientConfig> = {}): SNSClient {
  const client = new SNSClient({ region: "us-east-1", endpoint: stub.endpoint, credentials, ...extra });
  clients.push(client);
  return client;
}

function eventBridge(extra: Partial<EventBridgeClientConfig> = {}): EventBridgeClient {
  const client = new EventBridgeClient({
    region: "us-east-1",
    endpoint: stub.endpoint,
    credentials,
    ...extra,
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  stub = await startAwsStub({
    onSms: (p) => {
      smsSeen.push(p);
    },
    onTopicMessage: async (p) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
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

describe("aws-stub: SNS (awsQuery)", () => {
  it("records an SMS Publish exactly and returns its MessageId", async () => {
    const out = await sns().send(
      new PublishCommand({
        PhoneNumber: "+15555550100",
        Message: "Margin call: deposit 1,234.56 USD by 16:00 & reply + ok <now>",
        MessageAttributes: {
          "AWS.SNS.SMS.SMSType": { DataType: "String", StringValue: "Transactional" },
        },
      }),
    );
    expect(out.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(stub.published).toEqual([
      {
        action: "Publish",
        phoneNumber: "+15555550100",
        message: "Margin call: deposit 1,234.56 USD by 16:00 & reply + ok <now>",
        messageAttributes: { "AWS.SNS.SMS.SMSType": { dataType: "String", stringValue: "Transactional" } },
        messageId: out.MessageId,
        receivedAt: expect.any(String),
      },
    ]);
    expect(Number.isNaN(Date.parse(stub.published[0]?.receivedAt ?? ""))).toBe(false);
    expect(smsSeen).toEqual(stub.published);
    expect(topicSeen).toEqual([]);
    expect(stub.requests).toBe(1);
  });

  it("records a topic Publish with Subject and message attributes", async () => {
    const topicArn = "arn:aws:sns:us-east-1:123456789012:margin-call-notices";
    const out = await sns().send(
      new PublishCommand({
        TopicArn: topicArn,
        Subject: "Margin call on account ACC-1",
        Message: "Dear client,\n\nplease cure the margin call. Ünïcödé ✓",
        MessageAttributes: {
          kind: { DataType: "String", StringValue: "margin-call.issued" },
          amount: { DataType: "Number", StringValue: "1234.56" },
        },
      }),
    );
    expect(out.MessageId).toBeTruthy();
    expect(stub.published).toHaveLength(1);
    const publish = stub.published[0];
    expect(publish).toMatchObject({
      action: "Publish",
      topicArn,
      subject: "Margin call on account ACC-1",
      message: "Dear client,\n\nplease cure the margin call. Ünïcödé ✓",
      messageAttributes: {
        kind: { dataType: "String", stringValue: "margin-call.issued" },
        amount: { dataType: "Number", stringValue: "1234.56" },
      },
      messageId: out.MessageId,
    });
    expect(publish?.phoneNumber).toBeUndefined();
    // The async callback was awaited before the SDK call returned.
    expect(topicSeen).toEqual(stub.published);
    expect(smsSeen).toEqual([]);
  });

  it("accepts SetSMSAttributes", async () => {
    const client = sns();
    await client.send(new SetSMSAttributesCommand({ attributes: { DefaultSMSType: "Transactional" } }));
    await client.send(new SetSMSAttributesCommand({ attributes: { DefaultSenderID: "MARGIN" } }));
    expect(stub.smsAttributes).toEqual({ DefaultSMSType: "Transactional", DefaultSenderID: "MARGIN" });
  });

  it("turns an unknown action into an SDK exception", async () => {
    const error = await sns({ maxAttempts: 1 })
      .send(new ListTopicsCommand({}))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: "InvalidAction", $metadata: { httpStatusCode: 400 } });
    expect(stub.published).toEqual([]);
  });

  it("rejects a Publish without a destination", async () => {
    const error = await sns({ maxAttempts: 1 })
      .send(new PublishCommand({ Message: "x" }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "InvalidParameterException" });
  });

  it("is reachable through AWS_ENDPOINT_URL_SNS", async () => {
    const previous = process.env.AWS_ENDPOINT_URL_SNS;
    process.env.AWS_ENDPOINT_URL_SNS = stub.env.AWS_ENDPOINT_URL_SNS;
    try {
      const client = new SNSClient({ region: "us-east-1", credentials });
      clients.push(client);
      const out = await client.send(new PublishCommand({ PhoneNumber: "+15555550101", Message: "env" }));
      expect(stub.published.map((p) => p.messageId)).toEqual([out.MessageId]);
    } finally {
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_SNS;
      else process.env.AWS_ENDPOINT_URL_SNS = previous;
    }
  });
});

describe("aws-stub: EventBridge (awsJson1_1)", () => {
  const entry = (n: number) => ({
    Source: "margin-call.engine",
    DetailType: "LiquidationRequested",
    Detail: JSON.stringify({ accountId: `ACC-${n}`, amount: "100.00" }),
    EventBusName: "margin-call-bus",
    Resources: [`arn:aws:dynamodb:us-east-1:123456789012:table/accounts/ACC-${n}`],
  });

  it("records PutEvents entries and returns their EventIds", async () => {
    const time = new Date("2024-05-06T07:08:09.123Z");
    const out = await eventBridge().send(
      new PutEventsCommand({ Entries: [{ ...entry(1), Time: time }, entry(2)] }),
    );
    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries).toHaveLength(2);
    expect(stub.events).toEqual([
      {
        source: "margin-call.engine",
        detailType: "LiquidationRequested",
        detail: entry(1).Detail,
        eventBusName: "margin-call-bus",
        resources: entry(1).Resources,
        time: "2024-05-06T07:08:09.123Z",
        eventId: out.Entries?.[0]?.EventId,
        receivedAt: expect.any(String),
      },
      {
        source: "margin-call.engine",
        detailType: "LiquidationRequested",
        detail: entry(2).Detail,
        eventBusName: "margin-call-bus",
        resources: entry(2).Resources,
        eventId: out.Entries?.[1]?.EventId,
        receivedAt: expect.any(String),
      },
    ]);
    expect(out.Entries?.[0]?.EventId).not.toBe(out.Entries?.[1]?.EventId);
    expect(eventsSeen).toEqual(stub.events);
  });

  it("failNextPutEvents(1) fails exactly one entry inside a 200 reply", async () => {
    stub.failNextPutEvents(1);
    const client = eventBridge();
    const out = await client.send(new PutEventsCommand({ Entries: [entry(1), entry(2), entry(3)] }));
    expect(out.$metadata.httpStatusCode).toBe(200);
    expect(out.FailedEntryCount).toBe(1);
    expect(out.Entries?.[0]).toEqual({ ErrorCode: "InternalFailure", ErrorMessage: expect.any(String) });
    expect(out.Entries?.[0]?.EventId).toBeUndefined();
    expect(out.Entries?.[1]?.EventId).toBeTruthy();
    expect(out.Entries?.[1]?.ErrorCode).toBeUndefined();
    expect(out.Entries?.[2]?.EventId).toBeTruthy();
    expect(stub.events.map((e) => JSON.parse(e.detail).accountId)).toEqual(["ACC-2", "ACC-3"]);

    const again = await client.send(new PutEventsCommand({ Entries: [entry(4)] }));
    expect(again.FailedEntryCount).toBe(0);
  });

  it("failNextPutEvents takes an error code and spans calls", async () => {
    stub.failNextPutEvents(2, "ThrottlingException");
    const client = eventBridge();
    const first = await client.send(new PutEventsCommand({ Entries: [entry(1)] }));
    const second = await client.send(new PutEventsCommand({ Entries: [entry(2), entry(3)] }));
    expect(first.FailedEntryCount).toBe(1);
    expect(first.Entries?.[0]?.ErrorCode).toBe("ThrottlingException");
    expect(second.FailedEntryCount).toBe(1);
    expect(second.Entries?.map((e) => e.ErrorCode ?? "ok")).toEqual(["ThrottlingException", "ok"]);
  });

  it("fails a malformed Detail per entry, as the service does", async () => {
    const out = await eventBridge().send(
      new PutEventsCommand({ Entries: [{ ...entry(1), Detail: "not json" }, entry(2)] }),
    );
    expect(out.FailedEntryCount).toBe(1);
    expect(out.Entries?.[0]?.ErrorCode).toBe("MalformedDetail");
    expect(stub.events).toHaveLength(1);
  });
});

describe("aws-stub: failNextRequests", () => {
  it("makes the SNS client throw a throttling error, then recovers", async () => {
    const client = sns({ maxAttempts: 1 });
    stub.failNextRequests(1);
    const error = await client
      .send(new PublishCommand({ PhoneNumber: "+15555550100", Message: "x" }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "Throttling", $metadata: { httpStatusCode: 500 } });
    expect(stub.published).toEqual([]);
    const out = await client.send(new PublishCommand({ PhoneNumber: "+15555550100", Message: "x" }));
    expect(out.MessageId).toBeTruthy();
    expect(stub.published).toHaveLength(1);
    expect(stub.requests).toBe(2);
  });

  it("makes the EventBridge client throw ThrottlingException, then recovers", async () => {
    const client = eventBridge({ maxAttempts: 1 });
    stub.failNextRequests(1, 400);
    const error = await client.send(new PutEventsCommand({ Entries: [entry()] })).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
    const out = await client.send(new PutEventsCommand({ Entries: [entry()] }));
    expect(out.FailedEntryCount).toBe(0);
    expect(stub.events).toHaveLength(1);
  });

  it("is classified as retryable by the SDK and retried away", async () => {
    // A retry strategy without back-off, which records how the SDK classified each failure.
    const errorTypes: string[] = [];
    const token = (count: number) => ({ getRetryCount: () => count, getRetryDelay: () => 0 });
    const retryStrategy = () => ({
      mode: "standard",
      acquireInitialRetryToken: async () => token(0),
      refreshRetryTokenForRetry: async (
        previous: ReturnType<typeof token>,
        info: { errorType: string },
      ): Promise<ReturnType<typeof token>> => {
        errorTypes.push(info.errorType);
        if (previous.getRetryCount() >= 2) throw new Error("out of retries");
        return token(previous.getRetryCount() + 1);
      },
      recordSuccess: () => {},
    });
    const client = eventBridge({ retryStrategy: retryStrategy() });
    stub.failNextRequests(1, 400);
    const out = await client.send(new PutEventsCommand({ Entries: [entry()] }));
    expect(out.FailedEntryCount).toBe(0);
    expect(out.$metadata.attempts).toBe(2);
    stub.failNextRequests(2, 503);
    await client.send(new PutEventsCommand({ Entries: [entry()] }));
    stub.failNextRequests(1);
    await sns({ retryStrategy: retryStrategy() }).send(
      new PublishCommand({ TopicArn: "arn:aws:sns:us-east-1:123456789012:t", Message: "x" }),
    );
    expect(errorTypes).toEqual(["THROTTLING", "THROTTLING", "THROTTLING", "THROTTLING"]);
    expect(stub.requests).toBe(7);
    expect(stub.events).toHaveLength(2);
    expect(stub.published).toHaveLength(1);
  });

  function entry() {
    return { Source: "s", DetailType: "d", Detail: "{}", EventBusName: "default" };
  }
});

describe("aws-stub: stop", () => {
  it("closes the server and every socket, and a second stop is harmless", async () => {
    const own = await startAwsStub();
    const client = new SNSClient({
      region: "us-east-1",
      endpoint: own.endpoint,
      credentials,
      maxAttempts: 1,
    });
    try {
      // A keep-alive socket stays open after this call; stop() must close it anyway.
      await client.send(new PublishCommand({ PhoneNumber: "+15555550100", Message: "x" }));
      expect(own.listening).toBe(true);
      await own.stop();
      expect(own.listening).toBe(false);
      await own.stop();
      const error = await client
        .send(new PublishCommand({ PhoneNumber: "+15555550100", Message: "x" }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(own.published).toHaveLength(1);
    } finally {
      client.destroy();
    }
  });

  it("leaves no listening server handle behind", async () => {
    const servers = () => process.getActiveResourcesInfo().filter((r) => r === "TCPServerWrap").length;
    const before = servers();
    const own = await startAwsStub();
    expect(servers()).toBe(before + 1);
    const port = Number(new URL(own.endpoint).port);
    await own.stop();
    expect(servers()).toBe(before);
    const { createConnection } = await import("node:net");
    const refused = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
