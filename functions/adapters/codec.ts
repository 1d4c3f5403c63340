/**
 * DynamoDB items in and out without losing digits. Money is stored as strings; the only numbers in the
 * engine's items are integers (versions, sequence numbers, epoch seconds). Upstream may still write a
 * number where the contract wants a string: it is read as a JS number only so that the contract can
 * reject it by name ("numbers lose digits"), never to compute with it.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";

type Image = Record<string, AttributeValue>;

/** Integers become numbers; an integer beyond 2^53 stays a string, so nothing can round it silently. */
function numberFromText(text: string): number | string {
  const asNumber = Number(text);
  return /^-?\d+$/.test(text) && !Number.isSafeInteger(asNumber) ? text : asNumber;
}

/** A stream image or a read item as plain JSON values. Images from Lambda events have the same shape. */
export function fromImage(image: Record<string, unknown>): Record<string, unknown> {
  return unmarshall(image as Image, { wrapNumbers: numberFromText });
}

export function toItem(value: Record<string, unknown>): Image {
  return marshall(value, { removeUndefinedValues: true, convertClassInstanceToMap: false });
}
