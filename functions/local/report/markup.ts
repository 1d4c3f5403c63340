/**
 * Escaping for the two places the page puts run data into markup: text and attribute values (HTML
 * escapes), and the JSON inside a script element (which must not be able to end that element).
 */

const MARKUP_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text safe in HTML or SVG text and in a quoted attribute value. */
export function escapeMarkup(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (character) => MARKUP_ESCAPES[character] ?? character);
}

/**
 * JSON that is safe as the text of a `<script>` element: `<` and `>` (so neither `</script` nor `<!--` can
 * occur), `&`, and the JavaScript line terminators U+2028/U+2029 become `\uXXXX` escapes, which JSON.parse
 * reads back as the same characters.
 */
export function scriptSafeJson(value: unknown): string {
  return (JSON.stringify(value) ?? "null")
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
