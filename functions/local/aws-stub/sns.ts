/**
 * The stub's SNS: Publish and SetSMSAttributes over the awsQuery protocol (a form-encoded body, XML
 * replies). A Publish is recorded and handed to the caller's SMS or topic callback before the reply, so that
 * the local runtime can render each SMS as it arrives. The fault seam may drop an SMS past a spend limit
 * (recorded, answered, not handed on) or fail the reply of a Publish it accepted.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Faults } from "./faults.ts";
import type { AwsStubOptions, SnsMessageAttribute, SnsPublish } from "./types.ts";
import { optional, queryMapEntries, runCallback, StubError, sendSnsXml } from "./wire.ts";

/** What the SNS actions read and record. */
export interface SnsState {
  readonly published: SnsPublish[];
  readonly smsAttributes: Record<string, string>;
  readonly faults: Faults;
  /** The next value of the stub's record counter. */
  readonly nextSeq: () => number;
  readonly options: Pick<AwsStubOptions, "onSms" | "onTopicMessage">;
}

/** Whether the request is a Publish to a PhoneNumber (an SMS). */
export function isSmsPublish(form: URLSearchParams): boolean {
  return form.get("Action") === "Publish" && form.get("PhoneNumber") !== null;
}

function parseMessageAttributes(form: URLSearchParams): Record<string, SnsMessageAttribute> {
  const messageAttributes: Record<string, SnsMessageAttribute> = {};
  for (const entry of queryMapEntries(form, "MessageAttributes").values()) {
    const name = entry.get("Name");
    if (name === undefined) continue;
    const binaryValue = entry.get("Value.BinaryValue");
    messageAttributes[name] = {
      dataType: entry.get("Value.DataType") ?? "",
      stringValue: entry.get("Value.StringValue") ?? "",
      ...(binaryValue === undefined ? {} : { binaryValue }),
    };
  }
  return messageAttributes;
}

function parsePublish(form: URLSearchParams): Omit<SnsPublish, "seq"> {
  const message = form.get("Message");
  if (message === null) {
    throw new StubError(400, "InvalidParameter", "Invalid parameter: Message is required");
  }
  const targets = ["PhoneNumber", "TopicArn", "TargetArn"].filter((name) => form.get(name) !== null);
  if (targets.length !== 1) {
    throw new StubError(
      400,
      "InvalidParameter",
      "Invalid parameter: exactly one of PhoneNumber, TopicArn or TargetArn is required",
    );
  }
  return {
    action: "Publish",
    ...optional("phoneNumber", form.get("PhoneNumber")),
    ...optional("topicArn", form.get("TopicArn")),
    ...optional("targetArn", form.get("TargetArn")),
    ...optional("subject", form.get("Subject")),
    message,
    ...optional("messageStructure", form.get("MessageStructure")),
    ...optional("messageGroupId", form.get("MessageGroupId")),
    ...optional("messageDeduplicationId", form.get("MessageDeduplicationId")),
    messageAttributes: parseMessageAttributes(form),
    messageId: randomUUID(),
    receivedAt: new Date().toISOString(),
  };
}

async function publish(
  form: URLSearchParams,
  response: ServerResponse,
  requestId: string,
  state: SnsState,
): Promise<void> {
  const parsed = parsePublish(form);
  const isSms = parsed.phoneNumber !== undefined;
  const dropped = isSms && !state.faults.deliverSms();
  const replyFailed = state.faults.takeAcceptThenFail("sns");
  const published: SnsPublish = {
    ...parsed,
    seq: state.nextSeq(),
    ...(replyFailed ? { replyFailed: true as const } : {}),
    ...(dropped ? { dropped: true as const } : {}),
  };
  state.published.push(published);
  if (!dropped) await runCallback(isSms ? state.options.onSms : state.options.onTopicMessage, published);
  if (replyFailed) {
    throw new StubError(500, "InternalError", "Internal error (reply failed by aws-stub after the Publish)");
  }
  sendSnsXml(
    response,
    "Publish",
    `<PublishResult><MessageId>${published.messageId}</MessageId></PublishResult>`,
    requestId,
  );
}

function setSmsAttributes(
  form: URLSearchParams,
  response: ServerResponse,
  requestId: string,
  state: SnsState,
): void {
  // The SDK sends this map in lower case: attributes.entry.N.key / attributes.entry.N.value.
  for (const entry of queryMapEntries(form, "attributes").values()) {
    const key = entry.get("key");
    const value = entry.get("value");
    if (key !== undefined && value !== undefined) state.smsAttributes[key] = value;
  }
  sendSnsXml(response, "SetSMSAttributes", "<SetSMSAttributesResult/>", requestId);
}

/** One SNS request: its form-encoded body already read. */
export async function handleSns(
  form: URLSearchParams,
  response: ServerResponse,
  requestId: string,
  state: SnsState,
): Promise<void> {
  const action = form.get("Action") ?? "";
  switch (action) {
    case "Publish":
      return publish(form, response, requestId, state);
    case "SetSMSAttributes":
      return setSmsAttributes(form, response, requestId, state);
    default:
      throw new StubError(
        400,
        "InvalidAction",
        `The action ${action || "(none)"} is not valid for this endpoint (aws-stub implements Publish and SetSMSAttributes).`,
      );
  }
}
