/**
 * SQS message attributes and digests: reading them from a request, writing them back on the wire, choosing
 * the ones ReceiveMessage asks for, their size, and the MD5 digests SQS returns (which the SDK checks, so
 * they must be computed exactly as SQS does).
 */
import { createHash } from "node:crypto";
import { SQS_MAX_MESSAGE_ATTRIBUTES, sqsError } from "./sqs-protocol.ts";
import type { SqsMessageAttribute } from "./types.ts";
import { isRecord, type Json } from "./wire.ts";

type Attributes = Readonly<Record<string, SqsMessageAttribute>>;

export function md5Hex(data: string | Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

/**
 * MD5OfMessageAttributes as SQS computes it: over the attributes sorted by name, each as the name, the data
 * type (both length-prefixed UTF-8), a transport byte (1 string, 2 binary) and the length-prefixed value.
 */
export function md5OfMessageAttributes(attributes: Attributes): string {
  const parts: Buffer[] = [];
  const prefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const attribute = attributes[name];
    if (attribute === undefined) continue;
    prefixed(Buffer.from(name, "utf8"));
    prefixed(Buffer.from(attribute.dataType, "utf8"));
    if (attribute.binaryValue !== undefined) {
      parts.push(Buffer.from([2]));
      prefixed(Buffer.from(attribute.binaryValue, "base64"));
    } else {
      parts.push(Buffer.from([1]));
      prefixed(Buffer.from(attribute.stringValue ?? "", "utf8"));
    }
  }
  return md5Hex(Buffer.concat(parts));
}

/** `{ MD5OfMessageAttributes }` when there are attributes, else `{}`, for spreading into a reply. */
export function attributesDigest(attributes: Attributes): Json {
  return Object.keys(attributes).length > 0
    ? { MD5OfMessageAttributes: md5OfMessageAttributes(attributes) }
    : {};
}

function parseMessageAttribute(name: string, raw: unknown): SqsMessageAttribute {
  const dataType = isRecord(raw) ? raw.DataType : undefined;
  if (!isRecord(raw) || typeof dataType !== "string" || dataType === "") {
    throw sqsError(
      "InvalidParameterValue",
      `The message attribute '${name}' must contain a non-empty DataType.`,
    );
  }
  const binary = dataType === "Binary" || dataType.startsWith("Binary.");
  const attributeValue = binary ? raw.BinaryValue : raw.StringValue;
  if (typeof attributeValue !== "string") {
    throw sqsError(
      "InvalidParameterValue",
      `The message attribute '${name}' with type '${dataType}' must use field '${binary ? "Binary" : "String"}'.`,
    );
  }
  return binary ? { dataType, binaryValue: attributeValue } : { dataType, stringValue: attributeValue };
}

export function parseMessageAttributes(value: unknown): Record<string, SqsMessageAttribute> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    throw sqsError("InvalidParameterValue", "MessageAttributes must be a map of attribute name to value.");
  }
  const names = Object.keys(value);
  if (names.length > SQS_MAX_MESSAGE_ATTRIBUTES) {
    throw sqsError(
      "InvalidParameterValue",
      `Number of message attributes [${names.length}] exceeds the allowed maximum [${SQS_MAX_MESSAGE_ATTRIBUTES}].`,
    );
  }
  const attributes: Record<string, SqsMessageAttribute> = {};
  for (const name of names) attributes[name] = parseMessageAttribute(name, value[name]);
  return attributes;
}

export function messageAttributesSizeBytes(attributes: Attributes): number {
  let sizeBytes = 0;
  for (const [name, attribute] of Object.entries(attributes)) {
    sizeBytes += Buffer.byteLength(name) + Buffer.byteLength(attribute.dataType);
    sizeBytes +=
      attribute.binaryValue !== undefined
        ? Buffer.from(attribute.binaryValue, "base64").length
        : Buffer.byteLength(attribute.stringValue ?? "");
  }
  return sizeBytes;
}

/** Selects the message attributes ReceiveMessage's MessageAttributeNames asks for (`All`, `.*`, `prefix.*`). */
export function selectMessageAttributes(
  attributes: Attributes,
  names: readonly string[],
): Record<string, SqsMessageAttribute> {
  const wanted = (name: string) =>
    names.some(
      (pattern) =>
        pattern === "All" ||
        pattern === ".*" ||
        pattern === name ||
        (pattern.endsWith(".*") && name.startsWith(pattern.slice(0, -1))),
    );
  const selected: Record<string, SqsMessageAttribute> = {};
  for (const [name, attribute] of Object.entries(attributes)) {
    if (wanted(name)) selected[name] = attribute;
  }
  return selected;
}

export function wireMessageAttributes(attributes: Attributes): Json {
  const wire: Json = {};
  for (const [name, attribute] of Object.entries(attributes)) {
    wire[name] =
      attribute.binaryValue !== undefined
        ? { DataType: attribute.dataType, BinaryValue: attribute.binaryValue }
        : { DataType: attribute.dataType, StringValue: attribute.stringValue ?? "" };
  }
  return wire;
}
