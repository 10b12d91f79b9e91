// choreo explorer: a page over the explorer's JSON API (/api/...). Plain JavaScript, no build
// step; every text from the API is set as text (never as HTML).
"use strict";

const main = document.getElementById("main");
let catalog = null; // GET /api/catalog
let view = 0; // incremented on every navigation, so that a late answer or a poll of an old view is dropped

// h builds an element: h("a", {href: "#/", class: "x", dataset: {id: "1"}}, "text", child...).
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

async function api(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((body && body.error) || resp.status + " " + resp.statusText);
  return body;
}

const enc = encodeURIComponent;
const eventHref = (name) => "#/events/" + enc(name);
const serviceHref = (name) => "#/services/" + enc(name);
const chainHref = (name) => "#/chains/" + enc(name);
const opHref = (id) => "#/operations/" + enc(id);

function fmtMs(ms) {
  if (ms === undefined || ms === null) return "";
  const a = Math.abs(ms);
  if (a >= 1000) return (ms / 1000).toFixed(2) + " s";
  if (a >= 10) return ms.toFixed(0) + " ms";
  if (a >= 1) return ms.toFixed(1) + " ms";
  return (ms * 1000).toFixed(0) + " µs";
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toISOString().replace("T", " ").replace("Z", "");
}

function badge(status, text) {
  return h("span", { class: "badge " + status, dataset: { status } }, text || status);
}

function links(names, href, cls) {
  if (!names || names.length === 0) return h("span", { class: "muted" }, "none");
  return h("span", { class: "pill-list" }, names.map((n) => h("a", { href: href(n), class: cls }, n)));
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter((p) => p).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function show(...children) {
  main.replaceChildren(...children.flat());
}

function fail(err) {
  show(h("div", { class: "panel error-box", id: "error" }, String(err.message || err)));
}

// ---- routing

const routes = [
  [/^$/, operationsPage, "operations"],
  [/^operations\/(.+)$/, operationPage, "operations"],
  [/^chains$/, chainsPage, "chains"],
  [/^chains\/(.+)$/, chainPage, "chains"],
  [/^services$/, servicesPage, "services"],
  [/^services\/(.+)$/, servicePage, "services"],
  [/^events$/, eventsPage, "events"],
  [/^events\/(.+)$/, eventPage, "events"],
];

function route() {
  view++;
  const path = location.hash.replace(/^#\/?/, "");
  for (const [re, page, nav] of routes) {
    const m = path.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.route === nav);
    const arg = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    const v = view;
    Promise.resolve().then(() => page(arg, v)).catch((err) => { if (v === view) fail(err); });
    window.scrollTo(0, 0);
    return;
  }
  fail(new Error("no such page: #" + path));
}

// ---- operations

function operationsPage(_, v) {
  const status = h("span", { class: "muted", id: "ops-status" }, "reading Kafka…");
  const live = h("input", { type: "checkbox", id: "live", checked: "checked" });
  const body = h("tbody", { id: "ops" });
  const warnings = h("ul", { class: "plain warnings" });
  show(
    h("h1", {}, "Recent operations"),
    h("p", { class: "sub" }, "Each operation is a chain of events that share a correlation ID, compared with the catalog. Newest first."),
    h("div", { class: "toolbar" }, h("label", {}, live, " live"), status),
    warnings,
    h("table", {},
      h("thead", {}, h("tr", {}, ["Start (UTC)", "Operation", "First event", "Events", "Duration", "Status", "Detail"].map((c) => h("th", {}, c)))),
      body),
  );
  const poll = async () => {
    if (v !== view) return;
    try {
      const r = await api("/api/operations?n=30");
      if (v !== view) return;
      body.replaceChildren(...(r.operations.length ? r.operations.map(operationRow)
        : [h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No operations in Kafka yet. Register an account to start one."))]));
      warnings.replaceChildren(...r.warnings.map((w) => h("li", {}, w)));
      status.textContent = "as of " + fmtTime(r.asOf);
    } catch (err) {
      if (v !== view) return;
      status.textContent = "could not read the operations: " + err.message;
    }
    if (v === view && live.checked) setTimeout(poll, 5000);
  };
  live.addEventListener("change", () => { if (live.checked) poll(); });
  poll();
}

function operationRow(op) {
  let detail = op.chains.join(", ");
  if (op.deviations.length) detail = op.deviations[0] + (op.deviations.length > 1 ? " (+" + (op.deviations.length - 1) + " more)" : "");
  return h("tr", { dataset: { correlationId: op.correlationId } },
    h("td", { class: "mono" }, fmtTime(op.start)),
    h("td", { class: "mono" }, h("a", { href: opHref(op.correlationId) }, op.correlationId)),
    h("td", {}, op.first ? h("a", { href: eventHref(op.first) }, op.first) : h("span", { class: "muted" }, "unknown")),
    h("td", {}, op.events),
    h("td", {}, fmtMs(op.durationMs)),
    h("td", {}, badge(op.status)),
    h("td", { class: op.deviations.length ? "error-text" : "" }, detail));
}

async function operationPage(id, v) {
  show(h("h1", {}, "Operation ", h("span", { class: "mono" }, id)), h("p", { class: "muted" }, "Reading Kafka…"));
  const op = await api("/api/operations/" + enc(id));
  if (v !== view) return;
  const sum = op.summary;
  const parts = [
    h("h1", {}, "Operation ", h("span", { class: "mono", id: "op-id" }, op.correlationId), " ", badge(op.status)),
    h("p", { class: "sub" },
      sum.events + " event(s) in " + fmtMs(sum.durationMs) + ", started " + fmtTime(sum.start) + " UTC. ",
      op.chains.length ? ["Chain ", op.chains.map((c, i) => [i ? ", " : "", h("a", { href: chainHref(c.name) }, c.name), c.complete ? "" : " (incomplete)"])] : "Follows no catalog chain.",
    ),
  ];
  if (op.deviations.length) {
    parts.push(h("div", { class: "panel deviations", id: "deviations" },
      h("strong", {}, op.deviations.length + " deviation(s) from the catalog"),
      h("ul", { class: "plain" }, op.deviations.map((d) => h("li", {}, d.message)))));
  }
  const notes = [...op.warnings];
  if (op.missingTopics.length) notes.push("not read, the topics do not exist: " + op.missingTopics.join(", "));
  if (notes.length) parts.push(h("ul", { class: "plain warnings" }, notes.map((w) => h("li", {}, w))));
  for (const ch of op.chains) {
    const c = catalog.chains.find((x) => x.name === ch.name);
    if (c) parts.push(h("div", { class: "diagram chain-state", title: "the catalog chain, its steps marked as observed" }, chainDiagram(c, chainState(c, ch, op.expected))));
  }
  parts.push(h("h2", {}, "What happened"), h("ul", { class: "tree", id: "tree" }, op.roots.map(treeNode)));
  if (op.unplacedEffects.length) {
    parts.push(h("h2", {}, "Effects whose event is not in the trace"), h("ul", { class: "tree" }, op.unplacedEffects.map((e) => effectNode({ ...e, hopMs: null }))));
  }
  const asked = Object.keys(op.effectsAsOf);
  parts.push(h("p", { class: "muted" }, asked.length ? "Effects asked of: " + asked.join(", ") + "." : "No service was asked for effects: they are shown as declared."));
  show(parts);
}

// chainState marks the steps of catalog chain c that operation chain ch (its observed events)
// reached, and the state of the effect it ends in.
function chainState(c, ch, expected) {
  const state = {};
  let emits = 0;
  c.steps.forEach((st, i) => {
    if (st.emits) { state[i] = emits < ch.events.length ? "ok" : "bad"; emits++; return; }
    const x = expected.find((e) => e.chain === c.name && e.effect === st.effect);
    if (!ch.complete) state[i] = "bad";
    else if (x && x.observed) state[i] = x.observed.status === "failed" ? "bad" : x.observed.status === "pending" ? "warn" : "ok";
    else if (x && x.asked) state[i] = "bad";
  });
  return state;
}

function treeNode(n) {
  if (n.parked) return parkedNode(n);
  const deviates = n.deviations.length > 0;
  const card = h("div", { class: "node" + (deviates ? " deviates" : "") },
    h("div", { class: "title" },
      n.hopMs !== undefined ? h("span", { class: "hop", title: "latency of this hop: since the event that caused it" }, "+" + fmtMs(n.hopMs)) : null,
      h("a", { class: "type", href: eventHref(n.type || "") }, n.type || "event of unknown type"),
      h("span", { class: "meta" }, "by " + (n.source ? n.source.replace(/^\//, "") : "an unknown source")),
      h("span", { class: "meta mono" }, n.topic + "/" + n.partition + "@" + n.offset),
      n.copies ? badge("deviating", "published " + (n.copies + 1) + " times") : null,
      n.decodeError ? badge("parked", "not decoded") : null,
    ),
    h("div", { class: "meta" }, n.hopMs === undefined ? fmtTime(n.time) + " UTC" : "at +" + fmtMs(n.atMs), " · ce_id ", h("span", { class: "mono" }, n.id), n.key ? " · key " + n.key : ""),
    deviates ? h("ul", { class: "devs" }, n.deviations.map((d) => h("li", {}, d))) : null,
    n.decodeError ? h("div", { class: "error-text" }, n.decodeError) : null,
    n.event ? h("details", {}, h("summary", {}, "event"), h("pre", {}, JSON.stringify(n.event, null, 2))) : null,
  );
  const kids = [...n.children.map(treeNode), ...n.effects.map(effectNode),
    ...n.expected.filter((x) => !x.observed).map(expectedNode)];
  return h("li", { dataset: { type: n.type || "", id: n.id } }, card, kids.length ? h("ul", {}, kids) : null);
}

function parkedNode(n) {
  const p = n.parked;
  const how = [p.handler && "handler " + p.handler, p.reason && p.reason !== "handler" && "reason " + p.reason, p.class, p.attempts && (p.attempts === 1 ? "1 attempt" : p.attempts + " attempts")].filter(Boolean);
  const card = h("div", { class: "node parked" },
    h("div", { class: "title" },
      n.hopMs !== undefined ? h("span", { class: "hop" }, "+" + fmtMs(n.hopMs)) : null,
      badge("parked", p.handledLater ? "PARKED, handled later" : "PARKED"),
      h("span", { class: "type" }, n.type || "event of unknown type"),
      h("span", { class: "meta" }, "by group " + p.group + (how.length ? " (" + how.join(", ") + ")" : "")),
    ),
    h("div", { class: "meta mono" }, "on " + n.topic + "/" + n.partition + "@" + n.offset + ", from " + p.sourceTopic + "/" + p.sourcePartition + "@" + p.sourceOffset),
    h("div", { class: "error-text" }, p.error || "no error recorded"),
    n.deviations.length ? h("ul", { class: "devs" }, n.deviations.map((d) => h("li", {}, d))) : null,
  );
  return h("li", { dataset: { type: n.type || "", id: n.id, parked: p.group } }, card,
    n.children.length ? h("ul", {}, n.children.map(treeNode)) : null);
}

function effectNode(e) {
  return h("li", { dataset: { effect: e.effect, service: e.service, status: e.status } },
    h("div", { class: "node effect " + e.status },
      h("div", { class: "title" },
        e.hopMs !== null && e.hopMs !== undefined ? h("span", { class: "hop" }, "+" + fmtMs(e.hopMs)) : null,
        h("span", { class: "type" }, "effect: " + e.effect),
        h("span", { class: "meta" }, "by " + e.service),
        badge(e.status)),
      h("div", { class: "meta" }, "recorded " + fmtTime(e.at) + (e.doneAt ? ", happened " + fmtTime(e.doneAt) : "")),
      e.error ? h("div", { class: "error-text" }, e.error) : null));
}

function expectedNode(x) {
  let text, status;
  if (x.emits) {
    text = "expected next in chain “" + x.chain + "”: " + x.service + " emits " + x.emits + ", not in Kafka yet";
    status = "missing";
  } else if (x.asked) {
    text = "effect: " + x.effect + " by " + x.service + ", not recorded by " + x.service;
    status = "missing";
  } else {
    text = "effect: " + x.effect + " by " + x.service + ", declared (the service was not asked)";
    status = "unobserved";
  }
  return h("li", { dataset: { expected: x.effect || x.emits, status } },
    h("div", { class: "node expected " + status }, h("div", { class: "title" }, h("span", {}, text), badge(status, status === "missing" ? "missing" : "not observed"))));
}

// ---- catalog

function filterBox(placeholder, rows, text) {
  const input = h("input", { type: "search", placeholder, id: "filter" });
  const count = h("span", { class: "muted" });
  const apply = () => {
    const q = input.value.trim().toLowerCase();
    let n = 0;
    rows.forEach((r, i) => { const hit = !q || text[i].includes(q); r.hidden = !hit; if (hit) n++; });
    count.textContent = n + " of " + rows.length;
  };
  input.addEventListener("input", apply);
  apply();
  return h("div", { class: "toolbar" }, input, count);
}

function chainsPage() {
  const rows = catalog.chains.map((c) => h("tr", {},
    h("td", {}, h("a", { href: chainHref(c.name) }, c.name)),
    h("td", {}, c.trigger),
    h("td", { class: "muted" }, c.steps.map((st) => st.emits || "effect: " + st.effect).join(" → "))));
  show(h("h1", {}, "Chains"), h("p", { class: "sub" }, "Business operations as the events they cause, as the catalog declares them."),
    filterBox("filter chains, events, services", rows, catalog.chains.map((c) => JSON.stringify(c).toLowerCase())),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Chain"), h("th", {}, "Trigger"), h("th", {}, "Steps"))), h("tbody", {}, rows)));
}

function chainPage(name) {
  const c = catalog.chains.find((x) => x.name === name);
  if (!c) throw new Error("chain “" + name + "” is not in the catalog");
  show(h("h1", {}, c.name), h("p", { class: "sub" }, c.description),
    h("div", { class: "diagram", id: "chain-diagram" }, chainDiagram(c)),
    h("h2", {}, "Steps"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Service"), h("th", {}, "Emits or causes"))),
      h("tbody", {},
        h("tr", {}, h("td", {}, "0"), h("td", { class: "muted" }, "outside Kafka"), h("td", {}, c.trigger)),
        c.steps.map((st, i) => h("tr", {}, h("td", {}, i + 1), h("td", {}, h("a", { href: serviceHref(st.service) }, st.service)),
          h("td", {}, st.emits ? h("a", { href: eventHref(st.emits) }, st.emits) : "effect: " + st.effect))))));
}

function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

// chainDiagram draws a chain left to right: its trigger, each step's event (with the service that
// emits it) and the effect it ends in, joined by arrows labelled with the reacting service.
// state, when given, marks each step (by index) as observed in an operation: "ok", "bad" or "warn".
function chainDiagram(c, state) {
  const W = 204, H = 58, GAP = 56, PAD = 12;
  const boxes = [{ kind: "trigger", title: clip(c.trigger, 28), sub: "trigger", full: c.trigger }];
  c.steps.forEach((st, i) => {
    const mark = state ? state[i] : undefined;
    const sub = (mark === "ok" ? "✓ " : mark === "bad" ? "✗ " : mark === "warn" ? "… " : "") + clip(st.service, 28);
    boxes.push(st.emits
      ? { kind: "event", title: clip(st.emits, 26), sub, full: st.emits, href: eventHref(st.emits), mark }
      : { kind: "effect", title: clip(st.effect, 26), sub, full: "effect: " + st.effect, href: serviceHref(st.service), mark });
  });
  // Wrap into rows that fit the page, so that a long chain is seen whole.
  const perRow = Math.max(2, Math.min(boxes.length, Math.floor((Math.max(main.clientWidth, 600) - 60 + GAP) / (W + GAP))));
  const rows = Math.ceil(boxes.length / perRow), ROWGAP = 34;
  const width = PAD * 2 + perRow * W + (perRow - 1) * GAP, height = PAD * 2 + rows * H + (rows - 1) * ROWGAP + 4;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "chain " + c.name });
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a94a6" }))));
  const fills = { trigger: ["#f0f2f6", "#98a2b3"], event: ["#eef3ff", "#2f5bd3"], effect: ["#f3ecff", "#7a4fd0"] };
  const pos = (i) => [PAD + (i % perRow) * (W + GAP), PAD + Math.floor(i / perRow) * (H + ROWGAP)];
  boxes.forEach((b, i) => {
    const [x, y] = pos(i);
    if (i > 0 && i % perRow === 0) {
      const [px, py] = pos(i - 1), mid = py + H + ROWGAP / 2;
      svg.append(s("path", { d: `M ${px + W / 2} ${py + H} V ${mid} H ${x + W / 2} V ${y - 3}`, fill: "none", stroke: "#8a94a6", "stroke-width": 1.6, "marker-end": "url(#arrow)" }));
    } else if (i > 0) {
      svg.append(s("line", { x1: x - GAP + 2, y1: y + H / 2, x2: x - 3, y2: y + H / 2, stroke: "#8a94a6", "stroke-width": 1.6, "marker-end": "url(#arrow)" }));
    }
    const g = s("g", { class: "box " + b.kind });
    let [fill, stroke] = fills[b.kind];
    if (b.mark === "ok") [fill, stroke] = ["#e5f5ea", "#17803d"];
    if (b.mark === "bad") [fill, stroke] = ["#fde8e8", "#c0262d"];
    if (b.mark === "warn") [fill, stroke] = ["#fff3dc", "#a15c00"];
    g.append(s("rect", { x, y, width: W, height: H, rx: b.kind === "event" ? 8 : b.kind === "effect" ? 22 : 4, fill, stroke, "stroke-width": b.mark ? 2 : 1.4, "stroke-dasharray": b.kind === "trigger" || b.mark === "bad" ? "4 3" : "" }),
      s("text", { x: x + W / 2, y: y + 24, "text-anchor": "middle", "font-size": 12.5, "font-weight": 700, fill: "#1d2330" }, b.title),
      s("text", { x: x + W / 2, y: y + 43, "text-anchor": "middle", "font-size": 11.5, fill: "#667085" }, b.sub),
      s("title", {}, b.full));
    if (b.href) { const a = s("a", { href: b.href }); a.append(g); svg.append(a); } else svg.append(g);
  });
  return svg;
}

// contextDiagram draws one thing in the middle with what flows in on the left and out on the right.
function contextDiagram(center, left, right, label) {
  const W = 200, H = 30, ROW = 38, PAD = 12, CW = 210;
  const rows = Math.max(left.length, right.length, 1);
  const height = PAD * 2 + rows * ROW, width = PAD * 2 + W * 2 + CW + 160;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  svg.append(s("defs", {}, s("marker", { id: "arrow2", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a94a6" }))));
  const cx = PAD + W + 80, cy = height / 2;
  const side = (items, x, toCenter) => items.forEach((it, i) => {
    const y = PAD + (rows - items.length) * ROW / 2 + i * ROW + 4;
    const g = s("g", {});
    g.append(s("rect", { x, y, width: W, height: H, rx: it.kind === "effect" ? 15 : 6, fill: it.kind === "effect" ? "#f3ecff" : it.kind === "service" ? "#eaf6ef" : "#eef3ff", stroke: it.kind === "effect" ? "#7a4fd0" : it.kind === "service" ? "#17803d" : "#2f5bd3" }),
      s("text", { x: x + W / 2, y: y + 19, "text-anchor": "middle", "font-size": 12.5, fill: "#1d2330" }, clip(it.name, 28)), s("title", {}, it.name));
    svg.append(toCenter
      ? s("line", { x1: x + W, y1: y + H / 2, x2: cx - 3, y2: cy, stroke: "#a3acbb", "stroke-width": 1.2, "marker-end": "url(#arrow2)" })
      : s("line", { x1: cx + CW, y1: cy, x2: x - 3, y2: y + H / 2, stroke: "#a3acbb", "stroke-width": 1.2, "marker-end": "url(#arrow2)" }));
    if (it.href) { const a = s("a", { href: it.href }); a.append(g); svg.append(a); } else svg.append(g);
  });
  side(left, PAD, true);
  side(right, cx + CW + 80, false);
  svg.append(s("rect", { x: cx, y: cy - 22, width: CW, height: 44, rx: 8, fill: "#1d2330" }),
    s("text", { x: cx + CW / 2, y: cy + 5, "text-anchor": "middle", "font-size": 14, "font-weight": 700, fill: "#fff" }, clip(center, 26)));
  return svg;
}

function servicesPage() {
  const rows = catalog.services.map((sv) => h("tr", {},
    h("td", {}, h("a", { href: serviceHref(sv.name) }, sv.name)),
    h("td", {}, sv.consumes.length), h("td", {}, sv.produces.length), h("td", {}, sv.effects.join(", ")),
    h("td", { class: "muted" }, sv.description)));
  show(h("h1", {}, "Services"), h("p", { class: "sub" }, "Each service has its own consumer group and handles the events it consumes idempotently."),
    filterBox("filter services", rows, catalog.services.map((x) => JSON.stringify(x).toLowerCase())),
    h("table", {}, h("thead", {}, h("tr", {}, ["Service", "Consumes", "Produces", "Effects", "Description"].map((c) => h("th", {}, c)))), h("tbody", {}, rows)));
}

async function servicePage(name, v) {
  const d = await api("/api/services/" + enc(name));
  if (v !== view) return;
  const im = d.impact;
  show(h("h1", {}, d.name), h("p", { class: "sub" }, d.description),
    h("div", { class: "diagram" }, contextDiagram(d.name,
      d.consumes.map((e) => ({ name: e, href: eventHref(e) })),
      [...d.produces.map((e) => ({ name: e, href: eventHref(e) })), ...d.effects.map((e) => ({ name: "effect: " + e, kind: "effect" }))],
      "service " + d.name)),
    h("div", { class: "panel" }, kv([
      ["Consumer group", d.group || "none (produces only)"],
      ["Consumes", links(d.consumes, eventHref)],
      ["Produces", links(d.produces, eventHref)],
      ["Effects", d.effects.length ? d.effects.join(", ") : h("span", { class: "muted" }, "none")],
      ["Chains", links(im.chains.map((c) => c.chain), chainHref)],
      ["Downstream events", links(im.downstream, eventHref)],
      ["Services reached", links(im.services, serviceHref, "svc")],
    ])));
}

function eventsPage() {
  const rows = catalog.events.map((e) => h("tr", { dataset: { event: e.name } },
    h("td", {}, h("a", { href: eventHref(e.name) }, e.name)),
    h("td", { class: "mono" }, e.topic),
    h("td", {}, h("a", { href: serviceHref(e.producer) }, e.producer)),
    h("td", {}, e.consumers.length),
    h("td", { class: "muted" }, e.description)));
  show(h("h1", {}, "Events"), h("p", { class: "sub" }, "Every event, its topic and producer. Open one for its schema and what depends on it."),
    filterBox("filter events, topics, services", rows, catalog.events.map((x) => JSON.stringify(x).toLowerCase())),
    h("table", { id: "events" }, h("thead", {}, h("tr", {}, ["Event", "Topic", "Producer", "Consumers", "Description"].map((c) => h("th", {}, c)))), h("tbody", {}, rows)));
}

async function eventPage(name, v) {
  const d = await api("/api/events/" + enc(name));
  if (v !== view) return;
  const im = d.impact;
  const fields = d.schema && Array.isArray(d.schema.fields) ? d.schema.fields : [];
  show(h("h1", {}, d.name), h("p", { class: "sub" }, d.description),
    h("div", { class: "diagram" }, contextDiagram(d.name,
      [{ name: d.producer, kind: "service", href: serviceHref(d.producer) }],
      d.consumers.map((c) => ({ name: c, kind: "service", href: serviceHref(c) })), "event " + d.name)),
    h("div", { class: "panel" }, kv([
      ["Topic", h("span", { class: "mono" }, d.topic)],
      ["Key", h("span", { class: "mono" }, d.key)],
      ["Producer", links([d.producer], serviceHref, "svc")],
      ["Consumers", links(d.consumers, serviceHref, "svc")],
      ["Compatibility", d.compatibility],
      ["Chains", links(im.chains.map((c) => c.chain), chainHref)],
      ["Downstream events", links(im.downstream, eventHref)],
      ["Effects", im.effects.length ? im.effects.map((e) => e.service + ": " + e.effect).join(", ") : h("span", { class: "muted" }, "none")],
    ])),
    d.schema ? [
      h("h2", {}, "Schema"),
      fields.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Type"), h("th", {}, "Doc"))),
        h("tbody", {}, fields.map((f) => h("tr", {}, h("td", { class: "mono" }, f.name), h("td", { class: "mono" }, typeName(f.type)), h("td", { class: "muted" }, f.doc || ""))))) : null,
      h("details", { class: "panel" }, h("summary", {}, "Avro schema"), h("pre", {}, JSON.stringify(d.schema, null, 2))),
    ] : null);
}

function typeName(t) {
  if (typeof t === "string") return t;
  if (Array.isArray(t)) return t.map(typeName).join(" | ");
  if (t && t.logicalType) return t.logicalType;
  if (t && t.type === "array") return "array<" + typeName(t.items) + ">";
  if (t && t.type === "map") return "map<" + typeName(t.values) + ">";
  if (t && t.name) return t.name;
  return t && t.type ? t.type : "?";
}

// ---- start

document.getElementById("lookup").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = document.getElementById("lookup-id").value.trim();
  if (id) location.hash = opHref(id);
});

window.addEventListener("hashchange", route);

api("/api/catalog").then((c) => {
  catalog = c;
  document.getElementById("n-chains").textContent = c.chains.length;
  document.getElementById("n-services").textContent = c.services.length;
  document.getElementById("n-events").textContent = c.events.length;
  route();
}).catch(fail);
