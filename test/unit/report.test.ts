import { describe, expect, it } from "vitest";
import { lossWaterfallOf } from "../../functions/local/demo/waterfall.ts";
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
    expect(count(html, "How to read this.")).toBe(5);
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
    expect(html).toContain("No insurance-fund flows or losses were recorded for this run.");
  });

  it("is deterministic", () => {
    expect(renderReport(sample())).toBe(renderReport(sample()));
  });

  it("renders the loss waterfall from the engine's events: the fund's ledger, each loss, ADL instructions and socialised charges", () => {
    const at = "2026-03-02T14:40:00.000Z";
    const lossReference = "ACC-BUST:v7:loss";
    const events = [
      {
        detailType: "InsuranceFundFlow",
        detail: {
          reference: "topup:demo-seed",
          currency: "USD",
          seq: 1,
          cause: "MANUAL_TOPUP",
          amount: "1000.00",
          requested: "1000.00",
          balanceAfter: "1000.00",
          accountId: null,
          sourceReference: "demo-seed",
          recordedAt: "2026-03-02T14:00:00.000Z",
        },
      },
      {
        detailType: "LossRecorded",
        detail: {
          reference: lossReference,
          accountId: "ACC-BUST",
          callId: "ACC-BUST:call:1",
          amount: "2500.00",
          recordedAt: at,
        },
      },
      {
        detailType: "InsuranceFundFlow",
        detail: {
          reference: `${lossReference}:fund`,
          currency: "USD",
          seq: 2,
          cause: "BANKRUPTCY_COVER",
          amount: "-1000.00",
          requested: "2500.00",
          balanceAfter: "0.00",
          accountId: "ACC-BUST",
          sourceReference: lossReference,
          recordedAt: at,
        },
      },
      {
        detailType: "DeleveragingRequested",
        detail: {
          reference: `${lossReference}:adl`,
          bankruptAccountId: "ACC-BUST",
          instrument: "BTC-PERP",
          bankruptSide: "LONG",
          bankruptcyPrice: "41000",
          quantityNeeded: "2",
          quantityClosed: "2",
          currency: "USD",
          cover: "1200.00",
          instructions: [
            {
              accountId: "ACC-SHORT-2",
              side: "BUY",
              quantity: "0.5",
              price: "41000",
              closesAll: true,
              rank: 2,
            },
            {
              accountId: "ACC-SHORT-1",
              side: "BUY",
              quantity: "1.5",
              price: "41000",
              closesAll: false,
              rank: 1,
            },
          ],
          recordedAt: at,
        },
      },
      {
        detailType: "LossSocialised",
        detail: {
          reference: `${lossReference}:socialised`,
          bankruptAccountId: "ACC-BUST",
          currency: "USD",
          base: "POSITIVE_EQUITY",
          baseTotal: "300000",
          amount: "200.00",
          charges: [
            { accountId: "ACC-A", amount: "150.00" },
            { accountId: "ACC-B", amount: "50.00" },
          ],
          recordedAt: at,
        },
      },
      {
        detailType: "BadDebtRecorded",
        detail: {
          reference: `${lossReference}:bad-debt`,
          accountId: "ACC-BUST",
          currency: "USD",
          shortfall: "2500.00",
          fundCover: "1000.00",
          afterFund: "ADL",
          adlCover: "1200.00",
          socialisedCover: "200.00",
          amount: "100.00",
          recordedAt: at,
        },
      },
    ];
    const waterfall = lossWaterfallOf(events, "USD", 2);
    expect(waterfall.losses).toEqual([
      {
        t: at,
        accountId: "ACC-BUST",
        reference: lossReference,
        shortfall: "2500.00",
        settled: true,
        fundCover: "1000.00",
        adlCover: "1200.00",
        socialisedCover: "200.00",
        badDebt: "100.00",
      },
    ]);
    const html = renderReport({ ...sample(), lossWaterfall: waterfall });
    const rows = (table: string) => {
      const body =
        new RegExp(`data-table="${table}">[\\s\\S]*?<tbody>([\\s\\S]*?)</tbody>`).exec(html)?.[1] ?? "";
      return [...body.matchAll(/<tr data-reference="([^"]*)">(.*?)<\/tr>/g)].map((row) => [
        row[1],
        ...[...(row[2] ?? "").matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((cell) => cell[1]),
      ]);
    };
    expect(count(html, 'data-section="loss-waterfall"')).toBe(1);
    expect(rows("losses")).toEqual([
      [lossReference, at, "ACC-BUST", "2500.00", "1000.00", "1200.00", "200.00", "100.00"],
    ]);
    expect(rows("fund-flows")).toEqual([
      [
        "topup:demo-seed",
        "1",
        "2026-03-02T14:00:00.000Z",
        "MANUAL_TOPUP",
        "-",
        "1000.00",
        "1000.00",
        "demo-seed",
      ],
      [`${lossReference}:fund`, "2", at, "BANKRUPTCY_COVER", "ACC-BUST", "-1000.00", "0.00", lossReference],
    ]);
    // Each instruction, by rank: the counterparty, its side, the quantity and the bankruptcy price.
    expect(count(html, 'data-event="DeleveragingRequested"')).toBe(1);
    expect(rows("deleveraging")).toEqual([
      [`${lossReference}:adl#1`, "1", "ACC-SHORT-1", "BUY", "1.5", "41000", "no"],
      [`${lossReference}:adl#2`, "2", "ACC-SHORT-2", "BUY", "0.5", "41000", "yes"],
    ]);
    expect(rows("socialised")).toEqual([
      [`${lossReference}:socialised#ACC-A`, "ACC-A", "150.00"],
      [`${lossReference}:socialised#ACC-B`, "ACC-B", "50.00"],
    ]);
    expect(JSON.parse(embedded(html)).lossWaterfall).toEqual(waterfall);
  });

  it("shows a loss whose waterfall has not run yet as pending", () => {
    const waterfall = lossWaterfallOf(
      [
        {
          detailType: "LossRecorded",
          detail: {
            reference: "ACC-1:v3:loss",
            accountId: "ACC-1",
            amount: "12.30",
            recordedAt: "2026-03-02T14:40:00.000Z",
          },
        },
      ],
      "USD",
      2,
    );
    expect(waterfall.losses[0]).toMatchObject({ settled: false, fundCover: "0.00", badDebt: "0.00" });
    const html = renderReport({ ...sample(), lossWaterfall: waterfall });
    expect(html).toContain(
      '<tr data-reference="ACC-1:v3:loss"><td>2026-03-02T14:40:00.000Z</td><td>ACC-1</td><td class="amount">12.30</td><td class="amount">pending</td>',
    );
    expect(html).toContain("The fund recorded no flow.");
  });
});
