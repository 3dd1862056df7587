"use strict";
// The regulator console. It holds no data: every value comes from the API with the
// token kept in this tab's sessionStorage, and every value reaches the page through
// textContent or an attribute, never as HTML.
(() => {
  const TOKEN_KEY = "coldchain.token";
  const ALERTS_EVERY_MS = 30000;

  const EVENT_TYPES = {
    intake: ["入库", "intake"],
    disinfection: ["消杀", "disinfection"],
    nucleic_test: ["核酸检测", "nucleic test"],
    outbound: ["出库", "outbound"],
    sale: ["销售", "sale"],
  };
  const ALERT_TYPES = {
    missing_disinfection: ["缺少消杀", "missing disinfection"],
    missing_nucleic_test: ["缺少核酸检测", "missing nucleic test"],
    positive_nucleic_test: ["核酸检测阳性", "positive nucleic test"],
    mixed_storage: ["进口与国产混存", "mixed storage"],
    unknown_trace_code: ["未知追溯码", "unknown trace code"],
    quantity_exceeded: ["数量超出", "quantity exceeded"],
    info_mismatch: ["信息不一致", "info mismatch"],
  };
  const WORDS = {
    critical: ["严重", "critical"],
    warning: ["警告", "warning"],
    firing: ["告警中", "firing"],
    resolved: ["已解除", "resolved"],
    disinfected: ["已消杀", "disinfected"],
    missing: ["缺失", "missing"],
    positive: ["阳性", "positive"],
    negative: ["阴性", "negative"],
    pending: ["待出结果", "pending"],
    imported: ["进口", "imported"],
    domestic: ["国产", "domestic"],
    product: ["产品", "product"],
    packaging: ["外包装", "packaging"],
  };
  const FIELDS = {
    product: ["品名", "product"],
    origin: ["来源", "origin"],
    country_of_origin: ["原产国", "country of origin"],
    quantity_kg: ["数量", "quantity"],
    site_id: ["首站", "first site"],
    zone_id: ["库区", "zone"],
    occurred_at: ["入库时间", "taken in"],
    event_id: ["事件编号", "event id"],
    customs_declaration_no: ["报关单号", "customs declaration"],
    quarantine_cert_no: ["检疫证书号", "quarantine certificate"],
    from_site_id: ["来自", "from"],
    to_site_id: ["运往", "to"],
    parent_trace_codes: ["原料追溯码", "parent codes"],
    certificate_no: ["证书号", "certificate"],
    method: ["方法", "method"],
    agent: ["消杀剂", "agent"],
    result: ["结果", "result"],
    report_no: ["报告号", "report"],
    sample_type: ["样本", "sample"],
    lab: ["检测机构", "lab"],
    vehicle_plate: ["车牌", "vehicle"],
    buyer: ["买方", "buyer"],
  };
  // Shown in the timeline's own columns, not among the details.
  const TIMELINE_COLUMNS = new Set([
    "event_type", "event_id", "trace_code", "site_id", "zone_id", "occurred_at",
  ]);

  const $ = (id) => document.getElementById(id);
  let loadSeq = 0;
  let alertsSeq = 0;

  // ---- building the DOM from data, safely ------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // "中文 english": the English part muted.
  function both(pair, fallback) {
    if (!pair) return document.createTextNode(String(fallback ?? ""));
    return h("span", {}, pair[0] + " ", h("span", { class: "en", text: pair[1] }));
  }

  function word(value) {
    return WORDS[value] ? both(WORDS[value]) : text(value);
  }

  function text(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (Array.isArray(value)) return value.length ? value.join(", ") : "—";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  // Times in China Standard Time (UTC+8), the original kept in the tooltip.
  function cst(value) {
    if (!value) return "—";
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) return String(value);
    return new Date(ms + 8 * 3600 * 1000).toISOString().slice(0, 19).replace("T", " ");
  }

  function timeCell(value) {
    return h("td", { class: "time", title: value || null, text: cst(value) });
  }

  function kg(value) {
    if (value === null || value === undefined) return "—";
    return Number(value).toLocaleString("zh-CN", { maximumFractionDigits: 3 });
  }

  function codeLink(code) {
    return h("a", {
      class: "code",
      href: "?code=" + encodeURIComponent(code),
      text: code,
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        loadBatch(code, true);
      },
    });
  }

  function table(headers, rows, emptyPair) {
    if (!rows.length) return h("p", { class: "empty" }, both(emptyPair));
    const head = h("tr", {}, headers.map(([zh, en, cls]) =>
      h("th", { class: cls || null }, zh + " ", h("span", { class: "en", text: en }))));
    return h("div", { class: "scroll" },
      h("table", {}, h("thead", {}, head), h("tbody", {}, rows)));
  }

  function card(zh, en, id, ...body) {
    return h("section", { class: "card", id },
      h("h2", {}, zh + " ", h("span", { class: "en", text: en })), ...body);
  }

  // ---- talking to the API -------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function explain(status, body, notFound) {
    const detail = body && typeof body.error === "string" ? body.error : "";
    let msg;
    if (status === 401) msg = "令牌无效 Invalid token — 请检查后重新输入 check it and enter it again";
    else if (status === 403) msg = "无权访问 Not allowed for this token";
    else if (status === 404) msg = notFound;
    else if (status === 422) msg = "请求无效 Invalid request";
    else if (status >= 500) msg = "服务器错误 Server error";
    else msg = "请求失败 Request failed";
    return { status, message: `${msg} (HTTP ${status})`, detail };
  }

  // Resolves to {ok, status, body} or {ok: false, status, message, detail}; never throws.
  async function api(path, notFound) {
    const current = token();
    if (!current) {
      return { ok: false, status: 0, message: "请先输入访问令牌 Enter a token first", detail: "" };
    }
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: "Bearer " + current, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
      });
    } catch (err) {
      return { ok: false, status: 0, message: "无法连接服务器 Cannot reach the server", detail: "" };
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (response.ok && body) return { ok: true, status: response.status, body };
    return { ok: false, ...explain(response.status, body, notFound || "未找到 Not found") };
  }

  function showMessage(msg, kind) {
    const box = $("message");
    if (!msg) {
      box.hidden = true;
      box.textContent = "";
      return;
    }
    box.hidden = false;
    box.className = "message" + (kind === "info" ? " info" : "");
    box.textContent = msg;
  }

  function failure(result) {
    return h("p", { class: "error" }, result.message,
      result.detail ? h("span", { class: "en", text: " · " + result.detail }) : null);
  }

  // ---- the batch ----------------------------------------------------------------------

  function declaration(lineage) {
    const d = lineage.declared;
    if (!d) {
      return card("申报信息", "Declaration", "declaration",
        h("p", { class: "empty" }, both(["无入库申报：此追溯码只见于非入库事件",
          "no intake declaration: this code appears only in non-intake events"])));
    }
    const rows = [];
    for (const key of ["product", "origin", "country_of_origin", "quantity_kg", "site_id",
      "zone_id", "occurred_at", "customs_declaration_no", "quarantine_cert_no", "event_id"]) {
      let value = d[key];
      if (key === "occurred_at") value = cst(value);
      else if (key === "quantity_kg") value = kg(value) + " kg";
      rows.push(h("dt", {}, both(FIELDS[key])),
        h("dd", { "data-field": key }, key === "origin" ? word(value) : text(value)));
    }
    return card("申报信息", "Declaration", "declaration", h("dl", { class: "kv" }, rows));
  }

  function relations(lineage) {
    const parents = lineage.parents || [];
    const children = lineage.children || [];
    if (!parents.length && !children.length) return null;
    const line = (pair, codes) => codes.length
      ? h("p", { class: "links" }, both(pair), "：", codes.map(codeLink)) : null;
    return card("批次关系", "Related batches", "relations",
      line(["原料批次", "made from"], parents), line(["加工产出", "made into"], children));
  }

  function certificates(lineage) {
    const c = lineage.certificates || {};
    const dis = c.disinfection || { status: "missing", records: [] };
    const nat = c.nucleic_test || { status: "missing", records: [] };
    const tone = { disinfected: "good", negative: "good", pending: "pending" };
    const block = (pair, cert, describe) => h("div", { class: "cert" },
      h("div", {}, both(pair)),
      h("div", { class: "status" },
        h("span", { class: "tag " + (tone[cert.status] || "bad"), "data-status": cert.status },
          word(cert.status))),
      (cert.records || []).length
        ? cert.records.map((r) => h("div", { class: "details" }, describe(r)))
        : h("div", { class: "details" }, both(["无记录", "no records"])));
    return card("证书状态", "Certificates", "certificates", h("div", { class: "certs" },
      block(["消杀证明", "Disinfection"], dis,
        (r) => `${cst(r.occurred_at)} · ${r.site_id} · ${r.certificate_no}`),
      block(["核酸检测", "Nucleic test"], nat,
        (r) => `${cst(r.occurred_at)} · ${r.site_id} · ${r.report_no} · ${r.result}`)));
  }

  function eventDetails(event) {
    const parts = [];
    for (const [key, value] of Object.entries(event)) {
      if (TIMELINE_COLUMNS.has(key) || value === null || value === undefined) continue;
      if (Array.isArray(value) && !value.length) continue;
      const label = FIELDS[key] ? FIELDS[key][0] : key;
      const shown = key === "quantity_kg" ? kg(value) + " kg"
        : WORDS[value] ? WORDS[value][0] : text(value);
      parts.push(`${label} ${shown}`);
    }
    return parts.join(" · ");
  }

  function timeline(lineage) {
    const events = (lineage.events || []).map((e, i) => [e, i]);
    events.sort((a, b) => (Date.parse(a[0].occurred_at) - Date.parse(b[0].occurred_at))
      || (a[1] - b[1]));
    const rows = events.map(([e]) => h("tr", { "data-event-type": e.event_type },
      timeCell(e.occurred_at),
      h("td", {}, h("span", { class: "tag " + e.event_type }, both(EVENT_TYPES[e.event_type],
        e.event_type))),
      h("td", { text: e.site_id }),
      h("td", { text: text(e.zone_id) }),
      h("td", { class: "details", text: eventDetails(e) }),
      h("td", { class: "mono", text: e.event_id })));
    return card("事件时间线", "Timeline", "timeline", table(
      [["时间", "UTC+8"], ["类型", "type"], ["站点", "site"], ["库区", "zone"],
        ["详情", "details"], ["事件编号", "event id"]],
      rows, ["没有事件", "no events"]));
  }

  function sites(lineage) {
    const rows = (lineage.sites || []).map((s) => h("tr", {},
      h("td", { text: s.site_id }),
      h("td", { text: text(s.zone_id) }),
      h("td", { class: "num", text: kg(s.received_kg) }),
      h("td", { class: "num", text: kg(s.released_kg) }),
      h("td", { class: "num" + (Number(s.on_hand_kg) < 0 ? " neg" : ""), text: kg(s.on_hand_kg) }),
      timeCell(s.first_seen),
      timeCell(s.last_seen)));
    return card("站点与库区", "Sites and zones", "sites", table(
      [["站点", "site"], ["库区", "zone"], ["入库 kg", "received", "num"],
        ["出库 kg", "released", "num"], ["在库 kg", "on hand", "num"],
        ["首次", "first seen"], ["最近", "last seen"]],
      rows, ["没有库存记录", "no stock recorded"]));
  }

  function alertDetails(alert) {
    const d = alert.details;
    if (!d || (typeof d === "object" && !Object.keys(d).length)) return "—";
    return h("details", {}, h("summary", {}, both(["详情", "details"])),
      h("pre", { text: JSON.stringify(d, null, 2) }));
  }

  function batchAlerts(lineage) {
    const rows = (lineage.alerts || []).map((a) => h("tr", { "data-alert-type": a.type },
      h("td", {}, both(ALERT_TYPES[a.type], a.type)),
      h("td", {}, h("span", { class: "tag " + a.severity }, word(a.severity))),
      h("td", {}, word(a.status)),
      h("td", { text: a.zone_id ? `${a.site_id} / ${a.zone_id}` : a.site_id }),
      timeCell(a.occurred_at),
      timeCell(a.detected_at),
      h("td", {}, alertDetails(a))));
    return card("本批次告警", "Alerts of this batch", "batch-alerts", table(
      [["类型", "type"], ["级别", "severity"], ["状态", "status"], ["站点/库区", "site/zone"],
        ["发生", "occurred"], ["发现", "detected"], ["", ""]],
      rows, ["本批次没有告警", "no alerts for this batch"]));
  }

  function downstream(trace) {
    if (!trace.ok) {
      return card("下游追溯", "Downstream trace", "trace",
        h("p", { class: "error" }, "下游追溯暂不可用 Downstream trace unavailable: ",
          trace.message, trace.detail ? h("span", { class: "en", text: " · " + trace.detail }) : null));
    }
    const nodes = [...(trace.body.sites || [])].sort((a, b) => a.hop - b.hop);
    const rows = nodes.map((n) => h("tr", { "data-hop": n.hop },
      h("td", { class: "num", text: n.hop }),
      h("td", {}, codeLink(n.trace_code)),
      h("td", { text: n.site_id }),
      h("td", { class: "mono", text: text(n.via) })));
    const coRows = (trace.body.co_stored || []).map((c) => h("tr", {},
      h("td", {}, codeLink(c.trace_code)),
      h("td", { text: c.site_id }),
      h("td", { text: text(c.zone_id) }),
      timeCell(c.overlap_from),
      c.overlap_until ? timeCell(c.overlap_until)
        : h("td", {}, both(["至今仍同库", "still together"])),
      h("td", {}, c.with_trace_code ? codeLink(c.with_trace_code) : "—")));
    return [
      card("下游追溯", "Downstream trace, hop by hop", "trace", table(
        [["跳数", "hop", "num"], ["追溯码", "trace code"], ["站点", "site"], ["经由事件", "via"]],
        rows, ["没有下游记录", "nothing downstream"])),
      card("同库存放批次", "Co-stored batches", "co-stored", table(
        [["追溯码", "trace code"], ["站点", "site"], ["库区", "zone"], ["同库起", "from"],
          ["同库止", "until"], ["与", "beside"]],
        coRows, ["没有同库存放的批次", "no batch stored beside it"])),
    ];
  }

  function renderBatch(lineage, trace) {
    const head = h("div", { class: "card batch-title" },
      h("h2", { id: "batch-code", text: lineage.trace_code }),
      lineage.declared ? h("span", { text: lineage.declared.product }) : null,
      lineage.declared ? h("span", { class: "tag" }, word(lineage.declared.origin)) : null);
    $("batch").replaceChildren(head, declaration(lineage), certificates(lineage),
      timeline(lineage), sites(lineage), batchAlerts(lineage), ...[downstream(trace)].flat(),
      ...[relations(lineage)].filter(Boolean));
  }

  function codeFromUrl() {
    return (new URLSearchParams(location.search).get("code") || "").trim();
  }

  async function loadBatch(code, push) {
    code = (code || "").trim();
    if (!code) return;
    $("code").value = code;
    const url = "?code=" + encodeURIComponent(code);
    if (push && location.search !== url) history.pushState({ code }, "", url);
    if (!token()) {
      showMessage("请先输入访问令牌 Enter a token first");
      return;
    }
    const seq = ++loadSeq;
    $("batch").replaceChildren(h("p", { class: "empty" }, both(["加载中…", "loading…"])));
    const path = "v1/batches/" + encodeURIComponent(code);
    const [batch, trace] = await Promise.all([
      api(path, "未找到该批次 Batch not found"),
      api(path + "/trace?direction=downstream", "接口未找到 endpoint not found"),
    ]);
    if (seq !== loadSeq) return;
    if (!batch.ok) {
      $("batch").replaceChildren(card("批次", "Batch", "batch-error", failure(batch)));
      showMessage(batch.message);
      return;
    }
    showMessage("");
    renderBatch(batch.body, trace);
  }

  // ---- firing alerts ------------------------------------------------------------------

  async function loadAlerts() {
    const seq = ++alertsSeq;
    const result = await api("v1/alerts?status=firing&limit=100");
    if (seq !== alertsSeq) return;
    const count = $("alerts-count");
    if (!result.ok) {
      count.textContent = "";
      $("alerts-body").replaceChildren(failure(result));
      if (result.status === 401) showMessage(result.message);
      return;
    }
    const alerts = result.body.alerts || [];
    count.textContent = alerts.length ? String(alerts.length) : "";
    $("alerts-updated").textContent = "更新于 updated " + cst(new Date().toISOString());
    const rows = alerts.map((a) => h("tr", { "data-alert-type": a.type },
      h("td", {}, both(ALERT_TYPES[a.type], a.type)),
      h("td", {}, h("span", { class: "tag " + a.severity }, word(a.severity))),
      h("td", {}, codeLink(a.trace_code)),
      h("td", { text: a.zone_id ? `${a.site_id} / ${a.zone_id}` : a.site_id }),
      h("td", {
        class: "time",
        title: `${cst(a.occurred_at)} (UTC+8) · 发现 detected ${cst(a.detected_at)}`,
        text: cst(a.occurred_at).slice(5, 16),
      })));
    $("alerts-body").replaceChildren(table(
      [["类型", "type"], ["级别", "severity"], ["追溯码", "trace code"], ["站点", "site"],
        ["发生", "UTC+8"]],
      rows, ["当前没有告警", "no firing alerts"]));
  }

  // ---- the token ----------------------------------------------------------------------

  function showTokenState() {
    $("token-state").replaceChildren(token()
      ? both(["已设置令牌（仅本标签页）", "token set for this tab"])
      : both(["未设置令牌", "no token"]));
  }

  function start() {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      showTokenState();
      showMessage("");
      loadAlerts();
      const code = $("code").value.trim();
      if (code) loadBatch(code, true);
    });
    $("token-clear").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("token").value = "";
      showTokenState();
      $("alerts-body").replaceChildren();
      $("alerts-count").textContent = "";
      showMessage("令牌已清除 Token cleared", "info");
    });
    $("code-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const pending = $("token").value.trim();
      if (pending) {
        sessionStorage.setItem(TOKEN_KEY, pending);
        $("token").value = "";
        showTokenState();
        loadAlerts();
      }
      loadBatch($("code").value, true);
    });
    $("alerts-refresh").addEventListener("click", () => loadAlerts());
    window.addEventListener("popstate", () => loadBatch(codeFromUrl(), false));
    showTokenState();
    const code = codeFromUrl();
    if (code) $("code").value = code;
    if (token()) {
      loadAlerts();
      if (code) loadBatch(code, false);
    } else {
      showMessage("请先输入访问令牌 Enter a token first", "info");
    }
    setInterval(() => { if (token() && !document.hidden) loadAlerts(); }, ALERTS_EVERY_MS);
  }

  start();
})();
