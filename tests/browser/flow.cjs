// Walks roomstream's page in headless Chromium like a person would — 시작 → 동네 → 비용 → 시설 → 층 →
// 결과 → 다음 페이지 → 상세 — and prints what it saw as one JSON line for tests/it/web.rs to check
// against the API. Saves screenshots in OUT_DIR. Any request to another host fails the run (the page
// must work offline).
//
// usage: node flow.cjs BASE_URL OUT_DIR PLACE
"use strict";
const { chromium } = require("playwright-core");

const [base, outDir, place] = process.argv.slice(2);

async function cards(page) {
  return page.$$eval("[data-testid=card]", (els) => els.map((e) => ({
    id: e.dataset.id,
    price: e.querySelector("[data-testid=price]").textContent,
    score: e.querySelector("[data-testid=score]").textContent,
    verified: !!e.querySelector("[data-testid=verified]"),
    bait: !!e.querySelector("[data-testid=bait]"),
    links: [...e.querySelectorAll("[data-testid=links] a")].map((a) => a.dataset.platform),
    breakdown: e.querySelectorAll("[data-testid=breakdown] > div").length,
  })));
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 1200 }, locale: "ko-KR" });
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) return route.continue();
    problems.push("request to another host: " + url);
    return route.abort();
  });

  await page.goto(base + "/");
  await page.click("[data-testid=start]");
  await page.fill("[data-testid=place]", place);
  await page.click("[data-testid=next]");
  await page.locator("[data-testid=rent]").fill("70");
  await page.check("[data-testid=include-fee]");
  await page.click("[data-testid=next]");
  await page.check("[data-testid=facility-subway]");
  await page.click("[data-testid=next]");
  await page.check("[data-testid=no-semi-basement]");
  await page.click("[data-testid=next]");
  await page.waitForSelector("[data-testid=card], [data-testid=no-results], [data-testid=error]");
  const summary = await page.textContent("[data-testid=summary]");
  const first = await cards(page);
  await page.screenshot({ path: outDir + "/results.png", fullPage: true });

  let second = [];
  if (await page.isEnabled("[data-testid=next-page]")) {
    await page.click("[data-testid=next-page]");
    await page.waitForFunction(() => document.querySelector("[data-testid=page]")?.textContent === "2쪽");
    await page.waitForSelector("[data-testid=card], [data-testid=no-results]");
    second = await cards(page);
    await page.click("[data-testid=prev]");
    await page.waitForFunction(() => document.querySelector("[data-testid=page]")?.textContent === "1쪽");
  }

  await page.click("[data-testid=detail-link] >> nth=0");
  await page.waitForSelector("[data-testid=price-history], [data-testid=error]");
  const detail = {
    id: await page.getAttribute("[data-testid=card]", "data-id"),
    prices: (await page.$$("[data-testid=price-history] tr")).length - 1,
    members: (await page.$$("[data-testid=members] tr")).length - 1,
    comparables: await page.textContent("[data-testid=comparables]").catch(() => ""),
  };
  await page.screenshot({ path: outDir + "/detail.png", fullPage: true });
  console.log(JSON.stringify({ summary, first, second, detail, problems }));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
