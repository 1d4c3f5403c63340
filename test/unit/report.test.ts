import { describe, expect, it } from "vitest";
import { type RunReportData, renderReport, scriptSafeJson } from "../../functions/local/report.ts";

const HOSTILE = "</script><script>alert(1)</script><!-- <SCRIPT> & \u2028\u2029 \"quoted\" 'single'";

function sample(): RunReportData {
  return {
    title: "Crash <b>demo</b> & co",
    generatedAt: "2026-03-02T16:05:11.000Z",
    scenario: {
      name: "market-crash",
      description: "BTC falls 25%; ETH quotes diverge </script>",
      speed: 60,
      simulatedStart: "2026-03-02T14:00:00.000Z",
      simulatedEnd: "2026-03-02T16:00:00.000Z",
    },
    book: { accounts: 3, currency: "USD" },
    prices: [
      {
        asset: "BTC",
        points: [
          { t: "2026-03-02T14:00:00.000Z", price: "64250.50" },
          { t: "2026-03-02T15:00:00.000Z", price: "48187.88" },
        ],
      },
    ],
    halts: [
      {
        asset: "ETH",
        from: "2026-03-02T14:40:00.000Z",
        to: "2026-03-02T14:49:00.000Z",
        reason: `diverging ${HOSTILE}`,
      },
    ],
    states: [{ t: "2026-03-02T14:00:00.000Z", counts: { HEALTHY: 2, CALLED: 1 } }],
    ratiosBefore: ["1.5", "2.25", "0.98"],
    ratiosAfter: ["0.75", "1.01", "3.5"],
    timeline: [{ t: "2026-03-02T14:31:00.000Z", accountId: `ACC-${HOSTILE}`, kind: "CALL", detail: HOSTILE }],
    summary: [
      { label: "Margin calls <issued>", value: "1" },
      { label: "Loss", value: "0.00 USD" },
    ],
  };
}

function empty(): RunReportData {
  return {
    title: "Empty",
    generatedAt: "2026-03-02T16:05:11.000Z",
    scenario: { name: "none", description: "", speed: 1, simulatedStart: "", simulatedEnd: "" },
    book: { accounts: 0, currency: "USD" },
    prices: [],
    halts: [],
    states: [],
    ratiosBefore: [],
    ratiosAfter: [],
    timeline: [],
    summary: [],
  };
}

const count = (haystack: string, needle: string | RegExp): number => haystack.split(needle).length - 1;

function embedded(html: string): string {
  const match = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  if (!match?.[1]) throw new Error("no embedded report data");
  return match[1];
}

/** The bodies of the inline (non-JSON) scripts. */
function inlineScripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((match) => match[1] ?? "");
}

describe("renderReport", () => {
  it("is one HTML document with nothing to fetch", () => {
    const html = renderReport(sample());
    expect(html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(html.trimEnd().endsWith("</html>")).toBe(true);
    for (const tag of ["<html", "<head>", "</head>", "<body>", "</body>", "</html>"])
      expect(count(html, tag)).toBe(1);

    expect(html).not.toMatch(/src\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/href\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toContain("@import");
    expect(html).not.toMatch(/<(link|img|iframe|object|embed|base)\b/i);
    // ECharts clips its lines with url(#id): a reference inside the page, never a fetch. Nothing else.
    expect(html).not.toMatch(/\burl\(\s*["']?\s*(?!#chart-[a-z]+-c\d+\))/i);
    // The only absolute URL in the page is the SVG namespace name, which is never fetched.
    const urls = new Set(html.match(/https?:\/\/[^\s"'<>)]+/g) ?? []);
    expect([...urls]).toEqual(["http://www.w3.org/2000/svg"]);
    // And a CSP that forbids any fetch, should a future edit add one.
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none';`);
  });

  it("has the summary table, the scenario, and four chart containers with a how-to-read note each", () => {
    const html = renderReport(sample());
    expect(html).toContain('<table class="summary">');
    expect(html).toContain('<th scope="row">Margin calls &lt;issued&gt;</th><td>1</td>');
    expect(html).toContain("BTC falls 25%; ETH quotes diverge &lt;/script&gt;");
    for (const chart of ["prices", "states", "ratios", "timeline"]) {
      expect(count(html, `data-chart="${chart}" data-rendered="false"`)).toBe(1);
    }
    expect(count(html, "How to read this.")).toBe(4);
    expect(html.indexOf('<table class="summary">')).toBeLessThan(html.indexOf('data-chart="prices"'));
  });

  it("escapes text in markup", () => {
    const html = renderReport(sample());
    expect(html).toContain("<title>Crash &lt;b&gt;demo&lt;/b&gt; &amp; co</title>");
    expect(html).toContain("<h1>Crash &lt;b&gt;demo&lt;/b&gt; &amp; co</h1>");
    expect(html).not.toContain("<b>demo</b>");
  });

  it("embeds the data so that no string can close its script element or open a comment", () => {
    const data = sample();
    const html = renderReport(data);
    // Three script elements (error hook, data, renderer), each closed exactly once.
    expect(count(html, /<script\b/i)).toBe(3);
    expect(count(html, /<\/script/i)).toBe(3);
    expect(count(html, "<!--")).toBe(0);
    expect(html).not.toContain("alert(1)</script>");

    const json = embedded(html);
    expect(json).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(json)).toEqual(data);
  });

  it("escapes every character that matters inside a script element, and JSON reads it back", () => {
    const value = { s: HOSTILE, nested: [`</SCRIPT >`, "<!--", "-->", "a&b"] };
    const json = scriptSafeJson(value);
    expect(json).not.toMatch(/[<>&\u2028\u2029]/);
    expect(json).toContain("\\u003c/script\\u003e");
    expect(JSON.parse(json)).toEqual(value);
  });

  it("ships inline scripts that parse", () => {
    const scripts = inlineScripts(renderReport(sample()));
    expect(scripts).toHaveLength(2);
    for (const script of scripts) expect(() => new Function(script)).not.toThrow();
    const renderer = scripts[1] ?? "";
    expect(renderer).toContain('document.addEventListener("DOMContentLoaded"');
    for (const attribute of ["data-rendered", "data-points"]) expect(renderer).toContain(attribute);
    expect(scripts[0]).toContain("window.onerror");
    expect(scripts[0]).toContain("document.body.dataset.error");
  });

  it("renders empty arrays: the page is complete and the charts have data to say 'no data' with", () => {
    const data = empty();
    const html = renderReport(data);
    expect(html).toContain("No summary figures were recorded for this run.");
    expect(html).not.toContain('class="scenario"');
    expect(count(html, "data-chart=")).toBe(4);
    expect(JSON.parse(embedded(html))).toEqual(data);
    for (const script of inlineScripts(html)) expect(() => new Function(script)).not.toThrow();
    // The charts are drawn when the report is written: each of the four says "no data" in its svg.
    expect(count(html, ">no data</text>")).toBe(4);
  });

  it("is deterministic", () => {
    expect(renderReport(sample())).toBe(renderReport(sample()));
  });
});
