/** How the local runtime renders each SMS and email it would send, as a file of `.local/outbox/`. */
import type { SnsPublish } from "./aws-stub/index.ts";

export function renderedNotice(
  message: SnsPublish,
  channel: "sms" | "email",
): { readonly fileName: string; readonly text: string } {
  // Emails carry the notification id; an SMS carries only its text, so it is named by time and number.
  const id =
    message.messageAttributes.notificationId?.stringValue ??
    `${message.receivedAt}-${(message.phoneNumber ?? "").slice(-4)}-${message.messageId.slice(0, 8)}`;
  const safe = id.replace(/[^A-Za-z0-9._-]/g, "_");
  const lines =
    channel === "sms"
      ? [`To: ${message.phoneNumber ?? ""}`, "Channel: SMS (Transactional)", "", message.message]
      : [
          `To: ${message.messageAttributes.recipient?.stringValue ?? "(mail gateway)"}`,
          `Subject: ${message.subject ?? ""}`,
          `Notice: ${message.messageAttributes.notice?.stringValue ?? ""}`,
          "",
          message.message,
        ];
  return { fileName: `${safe}.${channel}.txt`, text: `${lines.join("\n")}\n` };
}
