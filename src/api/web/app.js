// roomstream's page: the seed's flow (동네 → 비용 → 시설 → 층 → 결과) over /api/v1, in plain JavaScript
// with no build step and nothing fetched from elsewhere. Routes live in the URL hash (#/cost); the
// choices live in localStorage, so a reload keeps them.
"use strict";

const STORE = "roomstream.search";
const FACILITIES = [["subway", "지하철"], ["convenience_store", "편의점"], ["cafe", "카페"], ["mart", "대형마트"], ["restaurant", "음식점"], ["hospital", "병원"]];
const COMPONENTS = [["cost", "월 비용"], ["value", "가성비"], ["facilities", "편의시설"], ["floor", "층"], ["direction", "방향"], ["broker", "중개사"], ["freshness", "최신성"]];
const SORTS = [["score", "점수 높은 순"], ["cost", "월 비용 낮은 순"], ["newest", "최신 순"], ["area", "넓은 순"]];
const PLATFORM = { zigbang: "직방", dabang: "다방" };
const ROOM = { one_room: "원룸", separated_one_room: "분리형 원룸", duplex: "복층", two_room: "투룸", unknown: "" };
const DEFAULTS = { place: "", depositMax: 30000, rentMax: 200, includeFee: false, facilities: [], verifiedOnly: false, noSemiBasement: false, noRooftop: false, sort: "score" };

let state = load();
let pages = [null]; // cursors of the pages seen: pages[i] starts page i + 1
let page = 0;

function load() {
  try { return Object.assign({}, DEFAULTS, JSON.parse(localStorage.getItem(STORE) || "{}")); } catch (_) { return Object.assign({}, DEFAULTS); }
}
function save() { localStorage.setItem(STORE, JSON.stringify(state)); }

const app = document.getElementById("app");
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c.nodeType ? c : String(c));
  return e;
}
function show(...nodes) { app.replaceChildren(...nodes); window.scrollTo(0, 0); }
function won(v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString("ko-KR"); }
function go(route) { location.hash = "#/" + route; }
function actions(back, next, label) {
  return el("div", { class: "actions" },
    back ? el("button", { class: "secondary", onclick: () => go(back) }, "이전") : el("span"),
    el("button", { "data-testid": "next", onclick: () => go(next) }, label || "다음"));
}

async function api(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== null && v !== undefined && v !== "" && v !== false) q.append(k, v);
  }
  const res = await fetch("/api/v1/" + path + (q.toString() ? "?" + q : ""));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

// ① 동네
async function address() {
  const input = el("input", { type: "text", id: "place", "data-testid": "place", placeholder: "군자동, 서초구, 잠실", value: state.place,
    oninput: (e) => { state.place = e.target.value; save(); } });
  const chips = el("div", { class: "chips", "data-testid": "region-chips" });
  show(el("section", { class: "panel" },
    el("h1", {}, "어느 동네에서 찾으세요?"),
    el("label", { for: "place" }, "동네 이름 (쉼표로 여러 곳)"), input, chips,
    actions(null, "cost")));
  try {
    const regions = await api("regions");
    regions.filter((r) => r.name).sort((a, b) => b.listings - a.listings).slice(0, 25).forEach((r) =>
      chips.append(el("button", { class: "chip", type: "button", onclick: () => {
        const parts = state.place.split(",").map((s) => s.trim()).filter(Boolean);
        if (!parts.includes(r.name)) parts.push(r.name);
        state.place = parts.join(", "); input.value = state.place; save();
      } }, `${r.name} ${r.listings}`)));
  } catch (_) { /* suggestions are optional */ }
}

// ② 비용
function cost() {
  const dep = el("output", { "data-testid": "deposit-value" }, won(state.depositMax));
  const rent = el("output", { "data-testid": "rent-value" }, won(state.rentMax));
  show(el("section", { class: "panel" },
    el("h1", {}, "비용은 어느 정도까지 괜찮으세요?"),
    el("label", { for: "deposit" }, "보증금 최대 (만원): ", dep),
    el("input", { type: "range", id: "deposit", "data-testid": "deposit", min: 0, max: 30000, step: 500, value: state.depositMax,
      oninput: (e) => { state.depositMax = Number(e.target.value); dep.value = won(state.depositMax); save(); } }),
    el("label", { for: "rent" }, "월세 최대 (만원): ", rent),
    el("input", { type: "range", id: "rent", "data-testid": "rent", min: 0, max: 200, step: 5, value: state.rentMax,
      oninput: (e) => { state.rentMax = Number(e.target.value); rent.value = won(state.rentMax); save(); } }),
    el("label", { class: "check" },
      el("input", { type: "checkbox", "data-testid": "include-fee", checked: state.includeFee, onchange: (e) => { state.includeFee = e.target.checked; save(); } }),
      "관리비 포함해서 계산"),
    actions("address", "facility")));
}

// ③ 시설
function facility() {
  show(el("section", { class: "panel" },
    el("h1", {}, "가까이 꼭 있어야 하는 곳은? (1km 이내)"),
    FACILITIES.map(([key, name]) => el("label", { class: "check" },
      el("input", { type: "checkbox", "data-testid": "facility-" + key, checked: state.facilities.includes(key),
        onchange: (e) => { state.facilities = state.facilities.filter((f) => f !== key).concat(e.target.checked ? [key] : []); save(); } }),
      name)),
    el("label", { class: "check" },
      el("input", { type: "checkbox", "data-testid": "verified-only", checked: state.verifiedOnly, onchange: (e) => { state.verifiedOnly = e.target.checked; save(); } }),
      "안심 중개사(등록 확인된 중개사) 매물만"),
    actions("cost", "floor")));
}

// ④ 층
function floor() {
  show(el("section", { class: "panel" },
    el("h1", {}, "피하고 싶은 층이 있나요?"),
    el("label", { class: "check" },
      el("input", { type: "checkbox", "data-testid": "no-semi-basement", checked: state.noSemiBasement, onchange: (e) => { state.noSemiBasement = e.target.checked; save(); } }),
      "반지하 제외"),
    el("label", { class: "check" },
      el("input", { type: "checkbox", "data-testid": "no-rooftop", checked: state.noRooftop, onchange: (e) => { state.noRooftop = e.target.checked; save(); } }),
      "옥탑 제외"),
    actions("facility", "results", "결과 보기")));
}

function query() {
  return {
    place: state.place.trim(), deposit_max: state.depositMax < 30000 ? state.depositMax : "", rent_max: state.rentMax < 200 ? state.rentMax : "",
    include_fee: state.includeFee, facility: state.facilities, verified_only: state.verifiedOnly,
    exclude_semi_basement: state.noSemiBasement, exclude_rooftop: state.noRooftop, sort: state.sort, limit: 10,
  };
}

function baitReason(r) {
  let m;
  if ((m = r.match(/asking cost is (\d+) %/))) return `시세 대비 ${m[1]}% 수준의 가격`;
  if ((m = r.match(/same photo appears under (\d+\+?)/))) return `같은 사진이 다른 매물 ${m[1]}건에 쓰임`;
  if (r.startsWith("broker not verified")) return "등록이 확인되지 않은 중개사";
  if (r.startsWith("listed unchanged")) return "30일 넘게 그대로 게시됨";
  return r;
}

function card(l, detailed) {
  const fee = l.fee === null ? "관리비 정보 없음" : `관리비 ${won(l.fee)}만원`;
  const area = l.area_m2 === null ? "면적 정보 없음" : `${l.area_m2}㎡ (${l.area_pyeong}평)`;
  const price = l.lease === "jeonse" ? `전세 ${won(l.deposit)}` : `보증금 ${won(l.deposit)} / 월세 ${won(l.rent)}`;
  const where = [l.region.gu, l.region.dong].filter(Boolean).join(" ");
  return el("article", { class: "card", "data-testid": "card", "data-id": l.id },
    el("h2", {}, detailed ? l.title : el("a", { href: "#/listing/" + encodeURIComponent(l.id), "data-testid": "detail-link" }, l.title || "(제목 없음)")),
    el("div", {},
      el("div", { class: "price", "data-testid": "price" }, price),
      el("div", { class: "facts" }, `${fee} · ${area} · ${l.floor.label}${l.direction ? " · " + l.direction + "향" : ""} · ${ROOM[l.room_type] || ""}`),
      el("div", { class: "facts" }, where, l.monthly_cost !== null ? ` · 월 비용 약 ${won(Math.round(l.monthly_cost))}만원` : ""),
      el("div", {},
        l.broker.verified ? el("span", { class: "badge ok", "data-testid": "verified" }, "안심 중개사")
          : el("span", { class: "badge no" }, l.broker.status === "unknown" ? "중개사 정보 없음" : "중개사 미확인"),
        l.links.length > 1 ? el("span", { class: "badge ok" }, `${l.links.length}개 사이트에 등록`) : null)),
    el("div", { class: "score" }, el("div", { class: "total", "data-testid": "score" }, l.score.total.toFixed(1)), el("div", { class: "facts" }, "점수 / 100")),
    l.bait.warning ? el("div", { class: "bait", "data-testid": "bait" }, `허위매물 주의 (위험도 ${Math.round(l.bait.risk)}): `, l.bait.reasons.map(baitReason).join(", ")) : null,
    el("div", { class: "bars", "data-testid": "breakdown" }, COMPONENTS.map(([k, name]) => {
      const v = l.score.components[k];
      return el("div", {}, `${name} ${v === null ? "정보 없음" : Math.round(v)}`, el("div", { class: "bar" }, el("span", { style: `width:${v || 0}%` })));
    })),
    el("div", { class: "links", "data-testid": "links" }, l.links.map((k) =>
      el("a", { href: k.url, target: "_blank", rel: "noopener", "data-platform": k.platform }, `${PLATFORM[k.platform] || k.platform}에서 보기`))));
}

// ⑤ 결과
async function results() {
  const sort = el("select", { "data-testid": "sort", onchange: (e) => { state.sort = e.target.value; save(); pages = [null]; page = 0; results(); } },
    SORTS.map(([v, name]) => el("option", { value: v, selected: state.sort === v }, name)));
  const list = el("div", { "data-testid": "results" }, el("p", { class: "empty" }, "불러오는 중…"));
  const pager = el("div", { class: "pager" });
  const chosen = [state.place || "모든 동네", state.depositMax < 30000 ? `보증금 ≤ ${won(state.depositMax)}` : "", state.rentMax < 200 ? `월세${state.includeFee ? "+관리비" : ""} ≤ ${state.rentMax}` : "",
    ...state.facilities.map((f) => FACILITIES.find((x) => x[0] === f)[1]), state.noSemiBasement ? "반지하 제외" : "", state.noRooftop ? "옥탑 제외" : "", state.verifiedOnly ? "안심 중개사만" : ""].filter(Boolean);
  show(el("div", { class: "summary", "data-testid": "summary" }, chosen.join(" · ")), el("div", { class: "toolbar" }, "정렬", sort), list, pager);
  try {
    const body = await api("listings", Object.assign(query(), { cursor: pages[page] }));
    if (body.next_cursor) pages[page + 1] = body.next_cursor;
    list.replaceChildren(...(body.items.length ? body.items.map((l) => card(l, false))
      : [el("p", { class: "empty", "data-testid": "no-results" }, body.unmatched ? `'${body.unmatched.join(", ")}'에 해당하는 동네를 찾지 못했어요.` : "조건에 맞는 방이 없어요. 조건을 조금 넓혀 보세요.")]));
    pager.replaceChildren(
      el("button", { class: "secondary", "data-testid": "prev", disabled: page === 0, onclick: () => { page -= 1; results(); } }, "이전 페이지"),
      el("span", { "data-testid": "page" }, `${page + 1}쪽`),
      el("button", { "data-testid": "next-page", disabled: !body.next_cursor, onclick: () => { page += 1; results(); } }, "다음 페이지"));
  } catch (e) {
    list.replaceChildren(el("p", { class: "error", "data-testid": "error" }, "불러오지 못했어요: " + e.message));
  }
}

// 상세
async function detail(id) {
  show(el("p", { class: "empty" }, "불러오는 중…"));
  try {
    const l = await api("listings/" + encodeURIComponent(id));
    const gu = l.comparables.find((c) => c.dong_code === "");
    const dong = l.comparables.find((c) => c.dong_code !== "");
    show(
      el("p", {}, el("a", { href: "#/results" }, "← 결과로")),
      card(l, true),
      el("section", { class: "panel" },
        el("h1", {}, "가격 변동"),
        el("table", { "data-testid": "price-history" },
          el("tr", {}, el("th", {}, "시점"), el("th", {}, "보증금"), el("th", {}, "월세"), el("th", {}, "관리비")),
          l.price_history.map((p) => el("tr", {}, el("td", {}, p.from.slice(0, 10)), el("td", {}, won(p.deposit)), el("td", {}, won(p.rent)), el("td", {}, p.fee === null ? "-" : won(p.fee))))),
        el("h1", { style: "margin-top:1.2rem" }, "이 방을 올린 곳"),
        el("table", { "data-testid": "members" },
          el("tr", {}, el("th", {}, "사이트"), el("th", {}, "조건"), el("th", {}, "처음 본 날")),
          l.members.map((m) => el("tr", {}, el("td", {}, el("a", { href: m.url, target: "_blank", rel: "noopener" }, PLATFORM[m.platform] || m.platform)),
            el("td", {}, `${won(m.deposit)} / ${won(m.rent)}`), el("td", {}, m.first_seen_at.slice(0, 10))))),
        el("h1", { style: "margin-top:1.2rem" }, "동네 시세와 비교"),
        el("p", { "data-testid": "comparables" },
          `이 방의 월 비용 ${won(Math.round(l.monthly_cost || 0))}만원 · `,
          dong && dong.median_monthly_cost !== null ? `${dong.dong} 중위 ${won(Math.round(dong.median_monthly_cost))}만원 · ` : "",
          gu && gu.median_monthly_cost !== null ? `${gu.gu} 중위 ${won(Math.round(gu.median_monthly_cost))}만원` : ""),
        el("p", { class: "facts" }, `중개사: ${l.broker_check.office || "-"} (${l.broker_check.reason})`)));
  } catch (e) {
    show(el("p", { class: "error", "data-testid": "error" }, "불러오지 못했어요: " + e.message), el("a", { href: "#/results" }, "← 결과로"));
  }
}

function intro() {
  show(el("section", { class: "panel" },
    el("h1", {}, "첫 원룸, 한 곳에서 비교하세요"),
    el("p", {}, "직방과 다방의 원룸을 모아 같은 방은 하나로 묶고, 비용·편의시설·층·중개사 등록 여부로 점수를 매겼습니다. 의심스러운 매물에는 이유와 함께 경고를 붙입니다."),
    el("button", { "data-testid": "start", onclick: () => go("address") }, "시작하기")));
}

function route() {
  const path = location.hash.replace(/^#\/?/, "");
  const [name, arg] = path.split("/");
  document.querySelectorAll(".steps a").forEach((a) => a.classList.toggle("on", a.dataset.step === name));
  if (name !== "results") { pages = [null]; page = 0; }
  ({ address, cost, facility, floor, results, listing: () => detail(decodeURIComponent(arg || "")) }[name] || intro)();
}
window.addEventListener("hashchange", route);
route();
