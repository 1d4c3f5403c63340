import { createHash } from "node:crypto";
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
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  MessageNotInflight,
  QueueDoesNotExist,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type SQSClientConfig,
  SQSServiceException,
} from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type AwsStub,
  type PutEventsEntry,
  type SnsPublish,
  startAwsStub,
} from "../../functions/local/aws-stub/index.ts";

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

function sqsClient(extra: Partial<SQSClientConfig> = {}, endpoint = stub.endpoint): SQSClient {
  const client = new SQSClient({ region: "us-east-1", endpoint, credentials, ...extra });
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
        seq: expect.any(Number),
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
        seq: expect.any(Number),
      },
      {
        source: "margin-call.engine",
        detailType: "LiquidationRequested",
        detail: entry(2).Detail,
        eventBusName: "margin-call-bus",
        resources: entry(2).Resources,
        eventId: out.Entries?.[1]?.EventId,
        receivedAt: expect.any(String),
        seq: expect.any(Number),
      },
    ]);
    expect(out.Entries?.[0]?.EventId).not.toBe(out.Entries?.[1]?.EventId);
    expect(stub.events[1]?.seq).toBe((stub.events[0]?.seq ?? 0) + 1);
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

describe("aws-stub: SQS (awsJson1_0)", () => {
  const md5 = (text: string) => createHash("md5").update(text, "utf8").digest("hex");
  const bodies = [
    JSON.stringify({ accountId: "ACC-1", amount: "1234.56", note: "Ünïcödé ✓ — 保证金 🚨" }),
    'line one\nline two\r\n\ttabbed & <escaped> "quoted"',
    "𝄞 astral plane and emoji 👩‍👩‍👧",
  ];

  it("round-trips SendMessageBatch, ReceiveMessage and DeleteMessage with bodies intact", async () => {
    const client = sqsClient();
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: "FanOut" }));
    expect(QueueUrl).toBe(`${stub.endpoint}/000000000000/FanOut`);
    expect(QueueUrl).toBe(stub.queueUrl("FanOut"));
    const url = QueueUrl ?? "";

    // The SDK checks every MD5OfMessageBody against the body it sent, and throws on a mismatch.
    const sent = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: bodies.map((MessageBody, i) => ({ Id: `m${i}`, MessageBody })),
      }),
    );
    expect(sent.Failed ?? []).toEqual([]);
    expect(sent.Successful?.map((e) => e.Id)).toEqual(["m0", "m1", "m2"]);
    expect(sent.Successful?.map((e) => e.MD5OfMessageBody)).toEqual(bodies.map(md5));
    expect(stub.queue(url).depth).toBe(3);

    const before = Date.now();
    // The SDK also checks every MD5OfBody of a received message.
    const received = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
      }),
    );
    const messages = received.Messages ?? [];
    expect(messages.map((m) => m.Body)).toEqual(bodies);
    expect(messages.map((m) => m.MessageId)).toEqual(sent.Successful?.map((e) => e.MessageId));
    for (const message of messages) {
      expect(message.ReceiptHandle).toBeTruthy();
      expect(message.MD5OfBody).toBe(md5(message.Body ?? ""));
      expect(message.Attributes?.ApproximateReceiveCount).toBe("1");
      expect(Number(message.Attributes?.SentTimestamp)).toBeLessThanOrEqual(before);
      expect(Number(message.Attributes?.SentTimestamp)).toBeGreaterThan(before - 10_000);
    }
    expect(stub.queue(url).messages.map((m) => [m.body, m.state, m.receiveCount])).toEqual(
      bodies.map((body) => [body, "inFlight", 1]),
    );
    expect((await client.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages).toBeUndefined();

    const [first, ...rest] = messages;
    await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first?.ReceiptHandle }));
    expect(stub.queue(url).messages.map((m) => m.body)).toEqual(bodies.slice(1));
    const deleted = await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: rest.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    expect(deleted.Successful?.map((e) => e.Id)).toEqual(["d0", "d1"]);
    expect(deleted.Failed ?? []).toEqual([]);
    expect(stub.queue(url).depth).toBe(0);
    expect(stub.requests).toBe(6);
  });

  it("accepts any QueueUrl, creating its queue on first use, and finds it by name afterwards", async () => {
    const client = sqsClient();
    const url = "https://sqs.eu-west-1.amazonaws.com/123456789012/Anywhere";
    const missing = await client
      .send(new GetQueueUrlCommand({ QueueName: "Anywhere", QueueOwnerAWSAccountId: "123456789012" }))
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(QueueDoesNotExist);
    expect(missing).toMatchObject({ name: "QueueDoesNotExist", $metadata: { httpStatusCode: 400 } });
    expect(stub.queue(url)).toMatchObject({ exists: false, depth: 0, messages: [] });

    const out = await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "hello" }));
    expect(out.MD5OfMessageBody).toBe(md5("hello"));
    const found = await client.send(
      new GetQueueUrlCommand({ QueueName: "Anywhere", QueueOwnerAWSAccountId: "123456789012" }),
    );
    expect(found.QueueUrl).toBe(url);
    // The same path on another host is the same queue.
    expect(stub.queue(`${stub.endpoint}/123456789012/Anywhere`)).toMatchObject({ exists: true, depth: 1 });
    const attributes = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
    );
    expect(attributes.Attributes).toEqual({ QueueArn: "arn:aws:sqs:us-east-1:123456789012:Anywhere" });
  });

  it("counts visible, in-flight and delayed messages in GetQueueAttributes", async () => {
    const client = sqsClient();
    const url = stub.queueUrl("Counts");
    for (const body of ["a", "b", "c"])
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "later", DelaySeconds: 60 }));
    await client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1 }));
    const out = await client.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          "ApproximateNumberOfMessages",
          "ApproximateNumberOfMessagesNotVisible",
          "ApproximateNumberOfMessagesDelayed",
        ],
      }),
    );
    expect(out.Attributes).toEqual({
      ApproximateNumberOfMessages: "2",
      ApproximateNumberOfMessagesNotVisible: "1",
      ApproximateNumberOfMessagesDelayed: "1",
    });
    const view = stub.queue(url);
    expect([view.depth, view.visible, view.inFlight]).toEqual([4, 2, 1]);
    expect(view.messages.map((m) => m.state)).toEqual(["inFlight", "visible", "visible", "delayed"]);
    const all = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }));
    expect(all.Attributes).toMatchObject({ ApproximateNumberOfMessages: "2", VisibilityTimeout: "30" });
  });

  it("redelivers a message once its visibility timeout passes, long polling until then", async () => {
    const client = sqsClient();
    const url = stub.queueUrl("Redeliver");
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "again" }));
    const first = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        VisibilityTimeout: 1,
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
    );
    const started = Date.now();
    // Nothing is visible now; the long poll returns as soon as the 1 s timeout has passed.
    const second = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        WaitTimeSeconds: 5,
        MessageSystemAttributeNames: ["All"],
      }),
    );
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(800);
    expect(waited).toBeLessThan(3000);
    expect(first.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("1");
    const again = second.Messages?.[0];
    expect(again?.MessageId).toBe(first.Messages?.[0]?.MessageId);
    expect(again?.Body).toBe("again");
    expect(again?.Attributes?.ApproximateReceiveCount).toBe("2");
    expect(again?.ReceiptHandle).not.toBe(first.Messages?.[0]?.ReceiptHandle);
  });

  it("wakes a long poll when a message arrives", async () => {
    const url = stub.queueUrl("Wake");
    const started = Date.now();
    const pending = sqsClient().send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 10 }));
    setTimeout(() => stub.sendLocal(url, "ping"), 30);
    const out = await pending;
    expect(out.Messages?.map((m) => m.Body)).toEqual(["ping"]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("ChangeMessageVisibility makes a message visible again, and refuses one not in flight", async () => {
    const client = sqsClient();
    const url = stub.queueUrl("Visibility");
    stub.sendLocal(url, "x");
    const [message] = (await client.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages ?? [];
    await client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: message?.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    expect(stub.queue(url).visible).toBe(1);
    const error = await client
      .send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: message?.ReceiptHandle,
          VisibilityTimeout: 10,
        }),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessageNotInflight);
    expect(error).toMatchObject({ name: "MessageNotInflight", $metadata: { httpStatusCode: 400 } });
  });

  it("follows SQS's rules for receipt handles", async () => {
    const client = sqsClient({ maxAttempts: 1 });
    const url = stub.queueUrl("Handles");
    stub.sendLocal(url, "x");
    const [first] = stub.receiveLocal(url, 1, 0);
    const [second] = stub.receiveLocal(url, 1, 30);
    expect(second?.messageId).toBe(first?.messageId);
    expect(second?.receiveCount).toBe(2);
    // A stale handle succeeds without deleting, as SQS does; the latest one deletes.
    await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first?.receiptHandle }));
    expect(stub.queue(url).depth).toBe(1);
    await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: second?.receiptHandle }));
    expect(stub.queue(url).depth).toBe(0);
    // Deleting twice is harmless too.
    await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: second?.receiptHandle }));
    const error = await client
      .send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: "not-a-handle" }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReceiptHandleIsInvalid);
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });

  it("moves a message to the dead-letter queue on the receive after maxReceiveCount", async () => {
    const client = sqsClient();
    const url = stub.queueUrl("Work");
    const deadLetterUrl = stub.queueUrl("Work-dlq");
    stub.configureQueue(url, { maxReceiveCount: 2, deadLetterUrl });
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "poison" }));
    const receive = (queueUrl: string) =>
      client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          VisibilityTimeout: 0,
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
        }),
      );
    expect((await receive(url)).Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("1");
    expect((await receive(url)).Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("2");
    expect(stub.queue(deadLetterUrl).depth).toBe(0);
    expect((await receive(url)).Messages).toBeUndefined();
    expect(stub.queue(url).depth).toBe(0);
    expect(stub.queue(deadLetterUrl).messages).toEqual([
      expect.objectContaining({ body: "poison", receiveCount: 2, state: "visible" }),
    ]);
    const dead = await receive(deadLetterUrl);
    expect(dead.Messages?.map((m) => [m.Body, m.Attributes?.ApproximateReceiveCount])).toEqual([
      ["poison", "3"],
    ]);

    const attributes = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["RedrivePolicy"] }),
    );
    expect(JSON.parse(attributes.Attributes?.RedrivePolicy ?? "{}")).toEqual({
      deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:Work-dlq",
      maxReceiveCount: 2,
    });
  });

  it("takes a redrive policy in CreateQueue's attributes", async () => {
    const client = sqsClient();
    const { QueueUrl: dlq } = await client.send(new CreateQueueCommand({ QueueName: "Orders-dlq" }));
    const { QueueUrl: url } = await client.send(
      new CreateQueueCommand({
        QueueName: "Orders",
        Attributes: {
          VisibilityTimeout: "0",
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:Orders-dlq",
            maxReceiveCount: "1",
          }),
        },
      }),
    );
    stub.sendLocal(url ?? "", "order");
    expect(stub.receiveLocal(url ?? "").map((m) => m.body)).toEqual(["order"]);
    expect(stub.receiveLocal(url ?? "")).toEqual([]);
    expect(stub.queue(dlq ?? "").messages.map((m) => m.body)).toEqual(["order"]);
  });

  it("reports each failed batch entry, injected or invalid, next to the successful ones", async () => {
    const client = sqsClient();
    const url = stub.queueUrl("Batch");
    stub.failNextSqsBatchEntries(1);
    const out = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: "a", MessageBody: "one" },
          { Id: "b", MessageBody: "two" },
          { Id: "c", MessageBody: "bad \u0000 byte" },
          { Id: "d", MessageBody: "four" },
        ],
      }),
    );
    expect(out.$metadata.httpStatusCode).toBe(200);
    expect(out.Successful?.map((e) => e.Id)).toEqual(["b", "d"]);
    expect(out.Failed).toEqual([
      { Id: "a", SenderFault: false, Code: "InternalError", Message: expect.any(String) },
      { Id: "c", SenderFault: true, Code: "InvalidMessageContents", Message: expect.any(String) },
    ]);
    expect(stub.queue(url).messages.map((m) => m.body)).toEqual(["two", "four"]);

    const received = stub.receiveLocal(url, 10);
    stub.failNextSqsBatchEntries(1, "ThrottlingException");
    const deleted = await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: received.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.receiptHandle })),
      }),
    );
    expect(deleted.Failed?.map((e) => [e.Id, e.Code])).toEqual([["d0", "ThrottlingException"]]);
    expect(deleted.Successful?.map((e) => e.Id)).toEqual(["d1"]);
    expect(stub.queue(url).messages.map((m) => m.body)).toEqual(["two"]);
  });

  it("refuses malformed batches and parameters with the service's errors", async () => {
    const client = sqsClient({ maxAttempts: 1 });
    const url = stub.queueUrl("Invalid");
    const failure = (sent: Promise<unknown>) => sent.catch((e: unknown) => e);
    const duplicate = await failure(
      client.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: "a", MessageBody: "1" },
            { Id: "a", MessageBody: "2" },
          ],
        }),
      ),
    );
    expect(duplicate).toMatchObject({ name: "BatchEntryIdsNotDistinct" });
    const tooMany = await failure(
      client.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: "x" })),
        }),
      ),
    );
    expect(tooMany).toMatchObject({ name: "TooManyEntriesInBatchRequest" });
    const empty = await failure(client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [] })));
    expect(empty).toMatchObject({ name: "EmptyBatchRequest" });
    const max = await failure(
      client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 11 })),
    );
    expect(max).toBeInstanceOf(SQSServiceException);
    expect(max).toMatchObject({ name: "InvalidParameterValue", $metadata: { httpStatusCode: 400 } });
    const unsupported = await failure(client.send(new ListQueuesCommand({})));
    expect(unsupported).toMatchObject({ name: "UnsupportedOperation" });
    expect(stub.queue(url).depth).toBe(0);
  });

  it("round-trips message attributes and their MD5", async () => {
    const client = sqsClient();
    const url = stub.queueUrl("Attributes");
    const out = await client.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: "with attributes",
        MessageAttributes: {
          kind: { DataType: "String", StringValue: "margin-call.issued" },
          amount: { DataType: "Number", StringValue: "1234.56" },
          blob: { DataType: "Binary", BinaryValue: new Uint8Array([0, 1, 254, 255]) },
        },
      }),
    );
    expect(out.MD5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);
    const [message] =
      (await client.send(new ReceiveMessageCommand({ QueueUrl: url, MessageAttributeNames: ["All"] })))
        .Messages ?? [];
    expect(message?.MessageAttributes).toEqual({
      kind: { DataType: "String", StringValue: "margin-call.issued" },
      amount: { DataType: "Number", StringValue: "1234.56" },
      blob: { DataType: "Binary", BinaryValue: new Uint8Array([0, 1, 254, 255]) },
    });
    expect(message?.MD5OfMessageAttributes).toBe(out.MD5OfMessageAttributes);
    expect(stub.queue(url).messages[0]?.messageAttributes.blob).toEqual({
      dataType: "Binary",
      binaryValue: "AAH+/w==",
    });

    // The example of the SQS developer guide ("Calculating the MD5 message digest for message attributes").
    const documented = await client.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: "x",
        MessageAttributes: { SellerName: { DataType: "String", StringValue: "Example Store" } },
      }),
    );
    expect(documented.MD5OfMessageAttributes).toBe("cd28f3b68aeee4b2eac9c66f2f694b58");
  });

  it("serves the SDK and the in-process API from the same queues", async () => {
    const client = sqsClient();
    const url = stub.queueUrl("Local");
    const { messageId } = stub.sendLocal(url, "from the runtime", {
      messageAttributes: { kind: { dataType: "String", stringValue: "k" } },
    });
    const [viaSdk] =
      (await client.send(new ReceiveMessageCommand({ QueueUrl: url, MessageAttributeNames: ["kind"] })))
        .Messages ?? [];
    expect(viaSdk).toMatchObject({ MessageId: messageId, Body: "from the runtime" });
    expect(viaSdk?.MessageAttributes?.kind?.StringValue).toBe("k");
    await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: viaSdk?.ReceiptHandle }));

    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "from a handler" }));
    const [local] = stub.receiveLocal(url, 10, 30);
    expect(local).toMatchObject({
      body: "from a handler",
      receiveCount: 1,
      md5OfBody: md5("from a handler"),
    });
    expect(stub.receiveLocal(url)).toEqual([]);
    expect(stub.deleteLocal(url, local?.receiptHandle ?? "")).toBe(true);
    expect(stub.deleteLocal(url, local?.receiptHandle ?? "")).toBe(false);
    expect(stub.deleteLocal(url, "garbage")).toBe(false);
    expect(stub.queue(url).depth).toBe(0);
    expect(() => stub.receiveLocal(url, 11)).toThrow(/MaxNumberOfMessages/);
    expect(() => stub.configureQueue(url, { maxReceiveCount: 3 })).toThrow(RangeError);
    expect(() => stub.configureQueue(url, { maxReceiveCount: 3, deadLetterUrl: url })).toThrow(RangeError);
  });

  it("steps over a visibility timeout with a hand-moved clock", async () => {
    let clock = Date.parse("2024-05-06T07:08:09.000Z");
    const own = await startAwsStub({ now: () => clock });
    try {
      const url = own.queueUrl("Clocked");
      own.configureQueue(url, { visibilityTimeoutSeconds: 60 });
      own.sendLocal(url, "tick");
      const client = sqsClient({}, own.endpoint);
      const receive = () =>
        client.send(new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ["All"] }));
      const first = await receive();
      expect(first.Messages?.[0]?.Attributes).toMatchObject({
        ApproximateReceiveCount: "1",
        SentTimestamp: String(clock),
        ApproximateFirstReceiveTimestamp: String(clock),
      });
      clock += 59_999;
      expect((await receive()).Messages).toBeUndefined();
      clock += 1;
      const second = await receive();
      expect(second.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("2");
      expect(own.queue(url).messages).toEqual([
        expect.objectContaining({ receiveCount: 2, state: "inFlight" }),
      ]);
    } finally {
      await own.stop();
    }
  });

  it("is reachable through AWS_ENDPOINT_URL_SQS", async () => {
    const previous = process.env.AWS_ENDPOINT_URL_SQS;
    process.env.AWS_ENDPOINT_URL_SQS = stub.env.AWS_ENDPOINT_URL_SQS;
    try {
      const client = new SQSClient({ region: "us-east-1", credentials });
      clients.push(client);
      const url = stub.queueUrl("Env");
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "env" }));
      expect(stub.queue(url).messages.map((m) => m.body)).toEqual(["env"]);
    } finally {
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_SQS;
      else process.env.AWS_ENDPOINT_URL_SQS = previous;
    }
  });

  it("fails SQS requests too under failNextRequests, as a retryable RequestThrottled", async () => {
    const url = stub.queueUrl("Throttled");
    stub.failNextRequests(1, 400);
    const error = await sqsClient({ maxAttempts: 1 })
      .send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x" }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SQSServiceException);
    expect(error).toMatchObject({ name: "RequestThrottled", $metadata: { httpStatusCode: 400 } });
    expect(stub.queue(url).depth).toBe(0);

    const errorTypes: string[] = [];
    const token = (count: number) => ({ getRetryCount: () => count, getRetryDelay: () => 0 });
    const client = sqsClient({
      retryStrategy: {
        mode: "standard",
        acquireInitialRetryToken: async () => token(0),
        refreshRetryTokenForRetry: async (previous, info) => {
          errorTypes.push(info.errorType);
          return token(previous.getRetryCount() + 1);
        },
        recordSuccess: () => {},
      },
    });
    stub.failNextRequests(2, 503);
    const out = await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "y" }));
    expect(out.$metadata.attempts).toBe(3);
    expect(errorTypes).toEqual(["THROTTLING", "THROTTLING"]);
    expect(stub.queue(url).messages.map((m) => m.body)).toEqual(["y"]);
  });

  it("ends a pending long poll when the stub stops", async () => {
    const own = await startAwsStub();
    const client = sqsClient({ maxAttempts: 1 }, own.endpoint);
    const started = Date.now();
    const pending = client
      .send(new ReceiveMessageCommand({ QueueUrl: own.queueUrl("Never"), WaitTimeSeconds: 20 }))
      .catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await own.stop();
    const outcome = await pending;
    expect(Date.now() - started).toBeLessThan(2000);
    // Either an empty reply or a closed socket; never a 20 s wait.
    expect(outcome instanceof Error || (outcome as { Messages?: unknown }).Messages === undefined).toBe(true);
  });
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
