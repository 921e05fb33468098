// The ttfb-lab dashboard: one page, hash routes (#/releases/v1.1 is a deep link), the public REST
// API only, uPlot for the plots. Pages with work in progress poll every few seconds.
"use strict";

(() => {
  const main = document.getElementById("main");
  const liveNote = document.getElementById("live");
  const POLL_MS = 3000;
  let timer = null;
  let plots = [];
  let generation = 0;
  let fetched = [];      // the API's answers read by the render in progress
  let shown = "";        // what the page on screen was drawn from (hash + answers)

  // ---- DOM ------------------------------------------------------------------------------------
  // h("a", {href: "#/x"}, "text", child): text is always text (API strings are never HTML).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const kid of kids) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return el;
  }
  const table = (head, rows, numeric = []) =>
    h("div", { class: "table-wrap" },
      h("table", {},
        h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, t)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: numeric.includes(i) ? "num" : null }, c)))))));
  const facts = (pairs) => h("dl", { class: "facts" }, pairs.filter((p) => p).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));

  // ---- formatting -----------------------------------------------------------------------------
  const num = (x) => typeof x === "number" && isFinite(x);
  const pct = (x, d = 1) => (num(x) ? (x >= 0 ? "+" : "") + x.toFixed(d) + "%" : "–");
  const ms = (x, d = 1) => (num(x) ? x.toFixed(d) + " ms" : "–");
  const pval = (x) => (num(x) ? (x < 1e-3 ? x.toExponential(1) : x.toPrecision(2)) : "–");
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
  const short = (sha) => (sha ? String(sha).slice(0, 7) : "–");
  const ci = (lo, hi) => (num(lo) && num(hi) ? `[${pct(lo)}, ${pct(hi)}]` : "");
  const effect = (o) => `${pct(o.effect_pct)} ${ci(o.ci_low_pct, o.ci_high_pct)}`.trim();
  const cv = (x) => (num(x) ? `${(100 * x).toFixed(1)}%` : "–");
  const ref = (r) => (r ? (r.ref && r.ref !== r.commit ? `${r.ref} (${short(r.commit)})` : short(r.commit)) : "–");
  const enc = encodeURIComponent;

  const KIND = {
    bad: ["regression", "blocked", "error", "failed"],
    good: ["passed", "no_change", "improvement", "found", "done", "delivered", "no_regression", "alive", "same", "faster", "not_slower"],
    info: ["pending", "running", "queued", "searching", "verifying", "sending"],
    warn: ["inconclusive", "broken", "unknown", "dead", "unresolved", "unsure", "sandwich_failed", "unmeasurable"],
  };
  const SIDES = { good: ["good", "good level"], bad: ["bad", "slow level"], culprit: ["bad", "culprit"], broken: ["warn", "broken"],
    untested: ["neutral", "not measured"], measured: ["info", "measured"] };
  const sideBadge = (side) => h("span", { class: `badge ${(SIDES[side] || SIDES.measured)[0]}` }, (SIDES[side] || SIDES.measured)[1]);
  function badge(word, extra) {
    const w = word || "pending";
    let kind = "neutral";
    for (const [k, list] of Object.entries(KIND)) if (list.includes(w)) kind = k;
    if (w === "found") kind = "bad";  // a bisection that found culprits found a regression
    return h("span", { class: `badge ${kind}` }, w.replace(/_/g, " ") + (extra ? ` ${extra}` : ""));
  }

  // ---- API ------------------------------------------------------------------------------------
  class AuthNeeded extends Error {}
  async function api(path) {
    const into = fetched;  // this render's list, even if a newer render starts while we wait
    const headers = { Accept: "application/json" };
    const token = localStorage.getItem("ttfb-lab-token");
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(path, { headers });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (res.status === 401) throw new AuthNeeded(body?.error?.message || "this server needs a token for reads");
    if (!res.ok) throw new Error(body?.error?.message || `${path}: HTTP ${res.status}`);
    into.push([path, body]);
    return body;
  }

  // ---- plots ----------------------------------------------------------------------------------
  function plot(container, opts, data) {
    const width = Math.max(280, Math.min(container.clientWidth || main.clientWidth - 20, 1100));
    const u = new uPlot({ width, height: 260, ...opts }, data, container);
    plots.push(u);
    return u;
  }
  function sizePlots() {
    for (const u of plots) {
      const w = Math.max(280, Math.min(u.root.parentElement.clientWidth, 1100));
      if (Math.abs(u.width - w) > 4) u.setSize({ width: w, height: u.height });
    }
  }
  window.addEventListener("resize", () => requestAnimationFrame(sizePlots));

  // The ECDF of both arms' measured runs: where the candidate's curve sits right of the
  // baseline's, it starts slower at that quantile. The runs the verdict was decided on are solid
  // lines; the independent confirmation rerun, when there is one, is dashed beside them.
  function ecdfPlot(container, arms) {
    const xs = [...new Set(arms.flatMap((a) => a.ms))].sort((a, b) => a - b);
    const F = (ms) => {
      const v = [...ms].sort((a, b) => a - b);
      let i = 0;
      return xs.map((x) => { while (i < v.length && v[i] <= x) i++; return v.length ? i / v.length : null; });
    };
    plot(container, {
      title: "TTFB of every measured run, cumulative",
      scales: { x: { time: false } },
      axes: [{ label: "time to first batch (ms)" }, { label: "fraction of runs", values: (u, t) => t.map((v) => `${Math.round(v * 100)}%`) }],
      series: [{ label: "ms", value: (u, v) => (v == null ? "–" : v.toFixed(1)) },
        ...arms.map((a) => ({ label: `${a.label} (${a.ms.length} runs)`, stroke: a.color, width: 2, dash: a.dash,
          points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) }))],
    }, [xs, ...arms.map((a) => F(a.ms))]);
  }

  // Per-phase change (candidate - baseline, ms) with its interval: which phase moved.
  function phaseBars(phases) {
    const rows = phases.filter((p) => num(p.delta_ms));
    if (!rows.length) return h("p", { class: "muted" }, "No phases reported.");
    const lo = Math.min(0, ...rows.map((p) => (num(p.delta_ci_low_ms) ? p.delta_ci_low_ms : p.delta_ms)));
    const hi = Math.max(0, ...rows.map((p) => (num(p.delta_ci_high_ms) ? p.delta_ci_high_ms : p.delta_ms)));
    const W = 640, label = 110, right = 150, rowH = 26, plotW = W - label - right;
    const x = (v) => label + ((v - lo) / (hi - lo || 1)) * plotW;
    const svg = s("svg", { viewBox: `0 0 ${W} ${rows.length * rowH + 24}`, width: "100%", role: "img", class: "phasebars",
      "aria-label": "change of each phase in ms, candidate minus baseline" });
    svg.append(s("line", { x1: x(0), x2: x(0), y1: 0, y2: rows.length * rowH + 4, stroke: "#57606a" }));
    rows.forEach((p, i) => {
      const y = i * rowH + 4, moved = p.significant;
      const color = !moved ? "#8c959f" : p.delta_ms > 0 ? "#cf222e" : "#1a7f37";
      svg.append(s("text", { x: 0, y: y + 15 }, p.name));
      svg.append(s("rect", { x: Math.min(x(0), x(p.delta_ms)), y: y + 3, width: Math.max(1, Math.abs(x(p.delta_ms) - x(0))), height: rowH - 10, fill: color },
        s("title", {}, `${p.name}: ${p.delta_ms.toFixed(1)} ms${moved ? " (moved)" : " (within noise)"}`)));
      if (num(p.delta_ci_low_ms) && num(p.delta_ci_high_ms))
        svg.append(s("line", { x1: x(p.delta_ci_low_ms), x2: x(p.delta_ci_high_ms), y1: y + rowH / 2 - 1, y2: y + rowH / 2 - 1, stroke: "#1b1f24", "stroke-width": 1.5 }));
      svg.append(s("text", { x: W - right + 8, y: y + 15 }, `${p.delta_ms >= 0 ? "+" : ""}${p.delta_ms.toFixed(1)} ms${moved ? "" : " ·noise"}`));
    });
    svg.append(s("text", { x: x(0) - 4, y: rows.length * rowH + 20 }, "0"));
    return svg;
  }

  // A suite of workflows: each workflow's effect with its interval, and the geometric mean's
  // interval as a band behind them (server/stats/suite.hpp).
  function suitePlot(suite, workflows) {
    const rows = workflows.map((w) => ({ name: w.workflow, verdict: w.verdict, r: w.result || {} }))
      .filter((x) => num(x.r.effect_pct));
    if (!rows.length) return h("p", { class: "muted" }, "No workflow measured.");
    const ends = rows.flatMap((x) => [num(x.r.ci_low_pct) ? x.r.ci_low_pct : x.r.effect_pct, num(x.r.ci_high_pct) ? x.r.ci_high_pct : x.r.effect_pct]);
    if (num(suite.ci_low_pct)) ends.push(suite.ci_low_pct, suite.ci_high_pct);
    const lo = Math.min(0, ...ends), hi = Math.max(0, ...ends);
    const W = 640, label = 170, right = 130, rowH = 26, plotW = W - label - right, H = (rows.length + 1) * rowH + 24;
    const x = (v) => label + ((v - lo) / (hi - lo || 1)) * plotW;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", class: "suiteplot",
      "aria-label": "each workflow's effect with its interval, and the suite's geometric mean" });
    if (num(suite.ci_low_pct) && num(suite.ci_high_pct))
      svg.append(s("rect", { x: x(suite.ci_low_pct), y: 0, width: Math.max(1, x(suite.ci_high_pct) - x(suite.ci_low_pct)), height: H - 20, fill: "#ddf4ff" },
        s("title", {}, `geometric mean ${pct(suite.geomean_effect_pct)} [${pct(suite.ci_low_pct)}, ${pct(suite.ci_high_pct)}]`)));
    svg.append(s("line", { x1: x(0), x2: x(0), y1: 0, y2: H - 20, stroke: "#57606a" }));
    const color = (v) => (v === "regression" ? "#cf222e" : v === "improvement" ? "#1a7f37" : "#57606a");
    rows.forEach((w, i) => {
      const y = i * rowH + 4 + rowH / 2;
      svg.append(s("text", { x: 0, y: y + 5 }, w.name));
      if (num(w.r.ci_low_pct) && num(w.r.ci_high_pct))
        svg.append(s("line", { x1: x(w.r.ci_low_pct), x2: x(w.r.ci_high_pct), y1: y, y2: y, stroke: color(w.verdict), "stroke-width": 2 }));
      svg.append(s("circle", { cx: x(w.r.effect_pct), cy: y, r: 5, fill: color(w.verdict) },
        s("title", {}, `${w.name}: ${pct(w.r.effect_pct)} (${w.verdict || "pending"})`)));
      svg.append(s("text", { x: W - right + 8, y: y + 5 }, `${pct(w.r.effect_pct)} ${w.verdict || ""}`));
    });
    if (num(suite.geomean_effect_pct)) {
      const y = rows.length * rowH + 4 + rowH / 2;
      svg.append(s("text", { x: 0, y: y + 5, "font-weight": "bold" }, "geometric mean"));
      svg.append(s("rect", { x: x(suite.geomean_effect_pct) - 5, y: y - 5, width: 10, height: 10, fill: "#0969da" }));
      svg.append(s("text", { x: W - right + 8, y: y + 5 }, pct(suite.geomean_effect_pct)));
    }
    svg.append(s("text", { x: x(0) - 4, y: H - 4 }, "0"));
    return svg;
  }

  // ---- pages ----------------------------------------------------------------------------------
  function verdictCell(w) {
    if (!w) return "–";
    const v = w.verdict || (w.state === "done" ? "error" : w.state);
    return h("span", {}, badge(v, w.confirmed ? "(confirmed)" : ""), " ", num(w.effect_pct) ? pct(w.effect_pct) : "");
  }

  async function releasesPage() {
    const { releases } = await api("/api/v1/releases?limit=50");
    const workflows = [...new Set(releases.flatMap((r) => r.workflows || []))].sort();
    const rows = releases.map((r) => {
      const byWf = Object.fromEntries((r.experiment?.workflows || []).map((w) => [w.workflow, w]));
      const culprits = (r.bisections || []).flatMap((b) => (b.culprits || []).map((c) => [b, c]));
      return [h("a", { href: `#/releases/${enc(r.name)}` }, r.name), badge(r.status), `${ref(r.base)} .. ${ref(r.candidate)}`,
        ...workflows.map((wf) => ((r.workflows || []).includes(wf) ? verdictCell(byWf[wf]) : h("span", { class: "muted" }, "not gated"))),
        culprits.length ? culprits.map(([b, c]) => h("div", {}, h("a", { href: `#/bisections/${b.id}` }, short(c.commit)), ` ${c.author}`))
          : (r.bisections || []).map((b) => h("div", {}, h("a", { href: `#/bisections/${b.id}` }, `bisection ${b.id}`), " ", badge(b.status)))];
    });
    return {
      live: releases.some((r) => r.status === "pending" || (r.bisections || []).some((b) => ["verifying", "searching"].includes(b.status))),
      content: [h("h1", {}, "Releases"),
        releases.length ? table(["release", "gate", "range", ...workflows, "culprits"], rows)
          : h("p", { class: "muted" }, "No release gates yet: ttfb-lab release gate NAME --repo R --base REF --candidate REF")],
    };
  }

  function bisectionCard(b) {
    return h("div", { class: "card" },
      h("div", {}, h("a", { href: `#/bisections/${b.id}` }, `Bisection ${b.id}`), " ", badge(b.status), " ", b.workflow),
      h("div", { class: "muted" }, `${ref(b.good)} .. ${ref(b.bad)}, ${b.range?.candidates ?? "?"} candidate commits`),
      (b.culprits || []).map((c) => h("div", {}, h("strong", {}, short(c.commit)), ` ${c.subject} — ${c.author}, ${effect(c)}`)),
      b.message ? h("div", { class: "muted" }, b.message) : null);
  }

  async function releasePage(name) {
    const r = await api(`/api/v1/releases/${enc(name)}`);
    const wfs = r.experiment?.workflows || [];
    return {
      live: r.status === "pending" || (r.bisections || []).some((b) => ["verifying", "searching"].includes(b.status)),
      content: [
        h("h1", {}, `Release ${r.name} `, badge(r.status)),
        r.reason ? h("p", {}, r.reason) : null,
        facts([["repository", r.repo], ["base", ref(r.base)], ["candidate", ref(r.candidate)],
          ["owner", `${r.owner || "–"}${r.owner_email ? ` <${r.owner_email}>` : ""}`],
          ["created", when(r.created_at)], ["decided", when(r.decided_at || r.finished_at)],
          r.experiment ? ["experiment", h("a", { href: `#/experiments/${r.experiment.id}` }, `experiment ${r.experiment.id}`)] : null]),
        h("h2", {}, "Workflows"),
        table(["workflow", "verdict", "effect [CI]", "p", "threshold", "phase that moved"],
          wfs.map((w) => [w.workflow, verdictCell({ ...w, effect_pct: null }), effect(w), pval(w.p_value),
            num(w.threshold_pct) ? `${w.threshold_pct.toFixed(1)}%` : "–", w.phase_summary || "–"]), [3, 4]),
        h("h2", {}, "Bisections"),
        (r.bisections || []).length ? h("div", { class: "cards" }, r.bisections.map(bisectionCard))
          : h("p", { class: "muted" }, r.status === "blocked" ? "Starting…" : "None: the gate is not blocked."),
      ],
    };
  }

  async function experimentsPage() {
    const { experiments } = await api("/api/v1/experiments?limit=50");
    return {
      live: experiments.some((e) => ["queued", "running"].includes(e.status)),
      content: [h("h1", {}, "Experiments"),
        table(["id", "purpose", "title", "status", "verdict", "created"],
          experiments.map((e) => [h("a", { href: `#/experiments/${e.id}` }, String(e.id)), e.purpose, e.title || "–",
            badge(e.status), e.verdict ? badge(e.verdict) : "–", when(e.created_at)]), [0])],
    };
  }

  async function experimentPage(id) {
    const e = await api(`/api/v1/experiments/${enc(id)}`);
    const done = !["queued", "running"].includes(e.status);
    const samples = (await api(`/api/v1/experiments/${enc(id)}/samples`)).samples || [];
    const sections = [], draws = [];
    for (const w of e.workflows || []) {
      const r = w.result || {};
      const runs = samples.filter((x) => x.workflow === w.workflow && !x.warmup);
      const pick = (arm, rerun) => runs.filter((x) => x.arm === arm && (x.stage === "confirmation") === rerun).map((x) => x.ttfb_ms);
      const base = pick("baseline", false), cand = pick("candidate", false);
      const arms = [{ label: "baseline", ms: base, color: "#0969da" }, { label: "candidate", ms: cand, color: "#cf222e" },
        { label: "baseline, rerun", ms: pick("baseline", true), color: "#0969da", dash: [6, 4] },
        { label: "candidate, rerun", ms: pick("candidate", true), color: "#cf222e", dash: [6, 4] }].filter((a) => a.ms.length);
      const plotBox = h("div", { class: "plot", role: "img", "aria-label": `cumulative TTFB of ${w.workflow}, baseline and candidate` });
      sections.push(
        h("h2", {}, `${w.workflow} `, badge(w.verdict || w.state, r.confirmed ? "(confirmed)" : "")),
        r.reason ? h("p", {}, r.reason) : null,
        table(["arm", "runs", "median", "mean", "CV", "outliers dropped"], [
          ["baseline", String(r.n_baseline ?? base.length), ms(r.median_baseline_ms), ms(r.mean_baseline_ms), cv(r.cv_baseline), String(r.outliers_baseline ?? "–")],
          ["candidate", String(r.n_candidate ?? cand.length), ms(r.median_candidate_ms), ms(r.mean_candidate_ms), cv(r.cv_candidate), String(r.outliers_candidate ?? "–")],
        ], [1, 2, 3, 4, 5]),
        facts([["effect", `${effect(r)}${num(r.confidence) ? ` at ${(100 * r.confidence).toPrecision(4)}%` : ""}${r.effect_source === "rerun" ? " (the confirmation rerun's)" : ""}`],
          ...(r.first_stage ? [["first stage", `${effect(r.first_stage)} (biased upwards by stopping early)`]] : []),
          ["p", `${pval(r.p_value)}${r.p_value_kind ? ` (${r.p_value_kind})` : ""}`],
          ...(r.cpu_time ? [["CPU time to first batch", r.cpu_time.tested
            ? `${effect(r.cpu_time)}, p ${pval(r.cpu_time.p_value)} (alpha ${r.cpu_time.alpha}; TTFB's ${r.ttfb_alpha})`
            : `not tested: ${r.cpu_time.why}`]] : []),
          ...(r.tail?.tested ? [["slow runs (tail)", `${r.tail.slow_candidate} of ${r.tail.n_candidate} candidate, ${r.tail.slow_baseline} of ${r.tail.n_baseline} baseline; exact p ${pval(r.tail.p_slower)}; 90th percentile ${pct(r.tail.p90_change_pct)}`]] : []),
          ...(r.decided_by ? [["decided by", r.decided_by === "cpu_time"
            ? "CPU time to the first batch (TTFB undecided through its noise, pointing the same way)"
            : r.decided_by === "tail" ? "the slow tail (more slow runs than chance gives, a slower 90th percentile)" : "TTFB"]] : []),
          ["test", r.test === "blocked_log_t" ? `t-test within jobs (${r.blocks} jobs)` : r.test === "welch_log_t" ? "Welch t-test" : "–"],
          ["detection threshold", num(r.threshold_pct) ? `${r.threshold_pct.toFixed(2)}%` : "–"],
          ["equivalence margin", num(r.equivalence_margin_pct) ? `±${r.equivalence_margin_pct.toFixed(2)}%` : "–"],
          ["confirmed", !r.confirmation ? (r.confirmed ? "yes" : "not needed or not yet")
            : r.confirmation.status === "disabled" ? "no rerun (a fixed design): not confirmed"
            : r.confirmation.status === "pending" ? "rerun pending"
            : `${r.confirmation.status.replace(/_/g, " ")}: ${effect(r.confirmation)}`]]),
        arms.length ? plotBox : h("p", { class: "muted" }, "No runs yet."),
        h("h3", {}, "Which phase moved"),
        r.phase_summary ? h("p", {}, r.phase_summary) : null,
        phaseBars(r.phases || []));
      if (arms.length) draws.push(() => ecdfPlot(plotBox, arms));
    }
    let diff = null;
    const dep = e.candidate?.dependency;
    if (e.candidate?.diff_lines || dep?.diff_sha256) {
      try { diff = await (await fetch(`/api/v1/experiments/${enc(id)}/diff`, { headers: authHeaders() })).text(); } catch (_) { diff = null; }
    }
    // What the candidate runs differently from the base (an infra owner's experiment), in words.
    const env = Object.entries(e.candidate?.env || {}).sort(([a], [b]) => (a < b ? -1 : 1));
    const runtime = [
      ...env.filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`),
      ...env.filter(([, v]) => v === null).map(([k]) => `unset ${k}`),
      ...(e.candidate?.command_prefix ? [`prefix: ${e.candidate.command_prefix.join(" ")}`] : []),
      ...(e.candidate?.interpreter ? [`interpreter: ${e.candidate.interpreter.join(" ")}`] : []),
      ...(dep ? [dep.commit ? `dependency ${dep.repo} at ${dep.ref ? `${dep.ref} (${dep.commit.slice(0, 12)})` : dep.commit.slice(0, 12)}`
        : `dependency ${dep.repo} with the diff below`] : []),
    ];
    const content = [
      h("h1", {}, `Experiment ${e.id}: ${e.title || e.purpose} `, badge(e.verdict || e.status)),
      facts([["purpose", e.purpose], ["repository", e.repo], ["base", ref(e.base)],
        ["candidate", `${ref(e.candidate)}${e.candidate?.diff_lines ? ` + a diff of ${e.candidate.diff_lines} lines` : ""}`],
        ...(runtime.length ? [["candidate runs with", h("code", {}, runtime.join("; "))]] : []),
        ...(e.selection?.length ? [["workflows chosen by the files they open",
          `${e.selection.filter((s) => s.chosen).map((s) => s.workflow).join(", ") || "none"}` +
          (e.selection.some((s) => !s.chosen) ? `; skipped (not touched): ${e.selection.filter((s) => !s.chosen).map((s) => s.workflow).join(", ")}` : "")]] : []),
        ["author", e.author || "–"], ["submitted by", e.submitted_by || "–"], ["status", badge(e.status)],
        ["progress", `${e.progress?.runs_done ?? 0} of ${e.progress?.runs_total ?? 0} runs`],
        ["created", when(e.created_at)], ["finished", when(e.finished_at)],
        ["samples", h("a", { href: `/api/v1/experiments/${enc(id)}/samples`, download: `experiment-${e.id}-samples.json` }, "download (JSON)")]]),
      e.error ? h("p", { class: "error" }, `${e.error.code || "error"}: ${e.error.message || ""}`) : null,
      e.suite ? [h("h2", {}, "The suite ", badge(e.suite.verdict, e.suite.certified ? "(certified)" : "")),
        h("p", {}, e.suite.statement),
        facts([["workflows", `${e.suite.workflows}: ${Object.entries(e.suite.counts || {}).filter(([, n]) => n).map(([k, n]) => `${n} ${k.replace(/_/g, " ")}`).join(", ")}`],
          ["after Holm's correction", `slower: ${(e.suite.regressed || []).join(", ") || "none"}; faster: ${(e.suite.improved || []).join(", ") || "none"} (alpha ${e.suite.alpha})`]]),
        suitePlot(e.suite, e.workflows || [])] : null,
      ...sections,
      diff ? [h("h2", {}, dep && !e.candidate?.diff_lines ? `The diff of ${dep.repo}` : "The diff"), h("pre", { class: "diff", tabindex: "0" }, diff)] : null,
    ];
    return { live: !done, content, after: draws };
  }
  function authHeaders() {
    const token = localStorage.getItem("ttfb-lab-token");
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  async function bisectionsPage() {
    const { bisections } = await api("/api/v1/bisections?limit=50");
    return {
      live: bisections.some((b) => ["verifying", "searching"].includes(b.status)),
      content: [h("h1", {}, "Bisections"),
        bisections.length ? h("div", { class: "cards" }, bisections.map(bisectionCard)) : h("p", { class: "muted" }, "No bisections yet.")],
    };
  }

  async function bisectionPage(id) {
    const b = await api(`/api/v1/bisections/${enc(id)}`);
    const commits = b.commits || [];
    const culpritIdx = (b.culprits || []).map((c) => c.index);
    const first = culpritIdx.length ? Math.min(...culpritIdx) : null;
    const side = (c) => {
      if (c.state === "culprit" || c.state === "broken" || c.state === "untested") return c.state;
      if (first === null) return c.index === 0 ? "good" : c.index === commits.length - 1 ? "bad" : "measured";
      return c.index < first ? "good" : "bad";
    };
    const strip = h("div", { class: "strip", role: "list", "aria-label": "the range, oldest first" },
      commits.map((c) => h("a", {
        role: "listitem", class: side(c), href: `#/bisections/${b.id}/commit/${c.index}`,
        title: `${short(c.commit)} ${c.subject} — ${c.author}\n${c.state}${c.runs ? `, ${c.runs} runs, median ${ms(c.median_ms)}` : ""}`,
        "aria-label": `${short(c.commit)} ${c.subject}: ${c.state}${num(c.median_ms) ? `, median ${ms(c.median_ms)}` : ""}`,
      }, short(c.commit))));
    const plotBox = h("div", { class: "plot", role: "img", "aria-label": "median TTFB of each probed commit" });
    const measured = commits.filter((c) => num(c.median_ms));
    const content = [
      h("h1", {}, `Bisection ${b.id}: ${b.workflow} `, badge(b.status)),
      b.message ? h("p", {}, b.message) : null,
      facts([["repository", b.repo], ["range", `${ref(b.good)} .. ${ref(b.bad)} (${b.range?.commits ?? commits.length} commits)`],
        b.release ? ["release", h("a", { href: `#/releases/${enc(b.release)}` }, b.release)] : null,
        ["slowdown, good to bad", pct(b.total_effect_pct)],
        ["explained by the culprits", num(b.explained_fraction) ? `${Math.round(100 * b.explained_fraction)}%` : "–"],
        num(b.remainder_pct) ? ["left unexplained", `${pct(b.remainder_pct)} [${pct(b.remainder_ci_low_pct)}, ${pct(b.remainder_ci_high_pct)}] (${Math.round(100 * b.ci_level)}% CI)`] : null,
        ["cost", `${b.cost?.runs ?? 0} runs measured (+${b.cost?.reused_runs ?? 0} reused, ${b.cost?.sandwich_runs ?? 0} in sandwiches, ${b.cost?.part_runs ?? 0} deciding parts side by side), ${b.cost?.jobs ?? 0} jobs, ${b.cost?.rounds ?? 0} rounds, ${Math.round(b.cost?.wall_seconds ?? 0)} s`],
        b.cost?.reopened ? ["re-searched", `${b.cost.reopened} interval(s) after a failed sandwich`] : null,
        ["experiment", h("a", { href: `#/experiments/${b.experiment_id}` }, `experiment ${b.experiment_id}`)]]),
      h("h2", {}, "Culprits"),
      (b.culprits || []).length ? h("div", { class: "cards" }, b.culprits.map((c) => h("div", { class: "card culprit" },
        h("div", {}, h("strong", { class: "mono" }, short(c.commit)), " ", c.subject),
        h("div", {}, `${c.author} <${c.email}>`),
        h("div", {}, `${effect(c)} against its parent ${short(c.parent)} (${num(c.ci_level) ? `${Math.round(100 * c.ci_level)}% CI` : "CI"}, p ${pval(c.p_value)})`),
        c.phase ? h("div", {}, `mostly ${c.phase} (${c.phase_delta_ms >= 0 ? "+" : ""}${c.phase_delta_ms.toFixed(1)} ms)`) : null,
        c.unsure ? h("div", {}, badge("unsure"), " a probe on its path was classified at its run budget") : null,
        (c.broken_between || []).length ? h("div", { class: "muted" }, `or one of the broken commits before it: ${c.broken_between.map(short).join(", ")}`) : null)))
        : h("p", { class: "muted" }, ["verifying", "searching"].includes(b.status) ? "Searching…" : "None."),
      h("h2", {}, "The range"),
      h("div", { class: "legend" }, [["good", "at the good level"], ["bad", "at the bad level"], ["culprit", "culprit"], ["broken", "does not build or crashes"], ["untested", "not measured"]]
        .map(([k, t]) => h("span", {}, h("span", { class: `swatch`, style: `background: var(--${k === "good" ? "good-bg" : k === "bad" ? "bad-bg" : k === "culprit" ? "bad" : k === "broken" ? "warn-bg" : "panel"})` }), t))),
      strip,
      measured.length ? plotBox : null,
      (b.parts || []).length ? [h("h2", {}, "Parts without a culprit"),
        table(["from", "to", "commits", "decided", "change", "why"], b.parts.map((p) => [h("span", { class: "mono" }, short(p.good)),
          h("span", { class: "mono" }, short(p.bad)), String(p.commits), badge(p.state),
          num(p.effect_pct) ? `${pct(p.effect_pct)} [${pct(p.ci_low_pct)}, ${pct(p.ci_high_pct)}]` : "–", p.reason]), [2])] : null,
      (b.broken || []).length ? [h("h2", {}, "Broken commits (skipped, never blamed)"),
        table(["commit", "subject", "author", "error"], b.broken.map((x) => [h("span", { class: "mono" }, short(x.commit)), x.subject, x.author, x.error]))] : null,
      h("h2", {}, "Commits"),
      table(["#", "commit", "subject", "author", "runs", "median", "state"],
        commits.map((c) => [String(c.index), h("span", { class: "mono", id: `commit-${c.index}` }, short(c.commit)), c.subject, c.author,
          String(c.runs), ms(c.median_ms), sideBadge(side(c))]), [0, 4, 5]),
    ];
    const after = measured.length ? [() => {
      const xs = measured.map((c) => c.index);
      plot(plotBox, {
        title: b.reference_ms ? `median TTFB per commit (scaled to the good end's level, ${b.reference_ms.toFixed(1)} ms)` : "median TTFB per commit",
        scales: { x: { time: false } },
        axes: [{ label: "commit (oldest first)", values: (u, t) => t.map((v) => (Number.isInteger(v) && commits[v] ? short(commits[v].commit) : "")) }, { label: "ms" }],
        series: [{ label: "commit", value: (u, v) => (v == null ? "–" : `#${v} ${short(commits[v]?.commit)}`) },
          { label: "probed", stroke: "#57606a", width: 0, points: { show: true, size: 9, fill: "#8c959f" } },
          { label: "culprit", stroke: "#b3261e", width: 0, points: { show: true, size: 13, fill: "#b3261e" } }],
      }, [xs, measured.map((c) => c.median_ms), measured.map((c) => (c.state === "culprit" ? c.median_ms : null))]);
    }] : [];
    return { live: ["verifying", "searching"].includes(b.status), content, after };
  }

  async function workflowsPage() {
    const { workflows } = await api("/api/v1/workflows");
    return {
      live: false,
      content: [h("h1", {}, "Workflows"),
        table(["workflow", "repository", "threshold", "calibrated", "description"],
          workflows.map((w) => [h("a", { href: `#/workflows/${enc(w.name)}` }, w.name), w.repo,
            num(w.threshold_pct) ? `${w.threshold_pct.toFixed(2)}%` : "–", w.calibrated ? badge("done", "calibrated") : badge("unknown", "not calibrated"),
            w.description || ""]))],
    };
  }

  async function workflowPage(name) {
    const [w, hist] = await Promise.all([api(`/api/v1/workflows/${enc(name)}`), api(`/api/v1/workflows/${enc(name)}/history?limit=200`)]);
    const cal = w.calibration || {};
    const exps = (hist.experiments || []).filter((e) => num(e.baseline_median_ms)).slice().reverse();
    const timeBox = h("div", { class: "plot", role: "img", "aria-label": "baseline median TTFB of each experiment over time" });
    const rocBox = h("div", { class: "plot", role: "img", "aria-label": "ROC curve of the calibration, with the chosen operating point" });
    const roc = (w.roc || []).slice().sort((a, b) => a.fpr - b.fpr || a.k - b.k);
    const effects = cal.current?.result?.injected_effects_pct || [];
    const content = [
      h("h1", {}, `Workflow ${w.name}`),
      h("p", {}, w.description || ""),
      facts([["repository", w.repo], ["detection threshold", num(w.threshold_pct) ? `${w.threshold_pct.toFixed(2)}% (k ${w.k ?? "–"} × A/A noise ${num(w.sigma_aa_pct) ? w.sigma_aa_pct.toFixed(2) + "%" : "–"}, at least the ${w.policy?.detection_floor_pct ?? "–"}% floor)` : "–"],
        ["equivalence margin", num(w.policy?.equivalence_margin_pct) ? `±${w.policy.equivalence_margin_pct}%` : "–"],
        ["levels", `first stage ${w.policy?.alpha ?? "–"} (two-sided screen), rerun ${w.policy?.rerun_alpha ?? "–"} (one-sided)`],
        ["false alerts", num(w.achieved_fpr) ? `${(100 * w.achieved_fpr).toFixed(3)}% per workflow-test, modelled (target ${(100 * w.target_fpr).toFixed(2)}%, with a safety factor of 2): ${w.budget_met ? "within budget" : "over budget"}` : "not calibrated"],
        ["smallest effect confirmed 90% of the time", num(w.smallest_effect_90_pct) ? `${w.smallest_effect_90_pct}%` : "–"],
        ["calibration", cal.current ? `${when(cal.current.finished_at)}${cal.stale ? ` — stale: ${cal.stale_reason}` : ""}` : cal.running ? "running" : "none yet"],
        ["command", h("code", {}, (w.command || []).join(" "))]]),
      h("h2", {}, "Baseline TTFB over time"),
      exps.length ? timeBox : h("p", { class: "muted" }, "No finished experiments yet."),
      h("h2", {}, "A/A noise"),
      (hist.calibrations || []).length ? table(["calibration", "finished", "A/A noise (σ)", "k", "threshold", "trigger"],
        hist.calibrations.map((c) => [String(c.id), when(c.finished_at), pct(c.sigma_aa_pct, 2).replace("+", ""), num(c.k) ? c.k.toFixed(2) : "–",
          num(c.threshold_pct) ? `${c.threshold_pct.toFixed(2)}%` : "–", c.trigger]), [2, 3, 4]) : h("p", { class: "muted" }, "Not calibrated yet."),
      h("h2", {}, "ROC: false positives against power, by k"),
      roc.length ? rocBox : h("p", { class: "muted" }, "No calibration yet."),
    ];
    const after = [];
    if (exps.length) after.push(() => {
      // One series per base (main, a release tag, ...): experiments measured against different
      // bases are not one line. The most frequent bases get their own colour, the rest share one.
      const colors = ["#0969da", "#8250df", "#1a7f37", "#bf3989", "#953800"];
      const byCount = {};
      for (const e of exps) byCount[e.base_ref] = (byCount[e.base_ref] || 0) + 1;
      const bases = Object.keys(byCount).sort((a, b) => byCount[b] - byCount[a] || (a < b ? -1 : 1));
      const shown = bases.slice(0, colors.length - (bases.length > colors.length ? 1 : 0));
      const group = (e) => (shown.includes(e.base_ref) ? e.base_ref : "other bases");
      const groups = [...shown, ...(bases.length > shown.length ? ["other bases"] : [])];
      const t = exps.map((e) => Date.parse(e.finished_at) / 1000);
      // The threshold above the most measured base: what a change against it must exceed.
      const thr = exps.map((e) => (group(e) === groups[0] && num(e.threshold_pct) ? e.baseline_median_ms * (1 + e.threshold_pct / 100) : null));
      plot(timeBox, {
        title: "median of the baseline runs, per experiment, by base",
        axes: [{}, { label: "ms" }],
        series: [{}, ...groups.map((g, i) => ({ label: `base ${g}`, stroke: colors[i % colors.length], width: 2, spanGaps: true,
          points: { show: true, size: 7 } })),
          { label: `base ${groups[0]} + threshold`, stroke: "#bf8700", dash: [6, 4], width: 1, points: { show: false }, spanGaps: true }],
      }, [t, ...groups.map((g) => exps.map((e) => (group(e) === g ? e.baseline_median_ms : null))), thr]);
    });
    if (roc.length) after.push(() => {
      const colors = ["#8c959f", "#0969da", "#8250df", "#cf222e", "#1a7f37", "#bf8700"];
      const opIdx = roc.findIndex((p) => Math.abs(p.k - (w.k ?? -1)) < 1e-9);
      const pick = effects.findIndex((e) => e === w.smallest_effect_90_pct);
      const at = pick >= 0 ? pick : effects.length - 1;
      // The false-positive budget as a vertical line: k is the smallest whose point lies left of it.
      const budget = num(w.target_fpr) ? w.target_fpr : null;
      const budgetLine = (u) => {
        if (budget == null) return;
        const x = u.valToPos(budget, "x", true), { top, height } = u.bbox, ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = "#cf222e";
        ctx.setLineDash([4, 4]);
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
        ctx.fillStyle = "#cf222e";
        ctx.textAlign = "left";
        ctx.font = `${12 * devicePixelRatio}px sans-serif`;
        ctx.fillText(` budget ${(100 * budget).toFixed(2)}%`, x, top + 14 * devicePixelRatio);
        ctx.restore();
      };
      plot(rocBox, {
        title: "each line: one injected slowdown; each point: one k",
        scales: { x: { time: false, range: [0, Math.max(budget ?? 0, ...roc.map((p) => p.fpr)) * 1.25 || 0.01] }, y: { range: [0, 1] } },
        hooks: { draw: [budgetLine] },
        axes: [{ label: "false positives per experiment",
          values: (u, v, ax, space, incr) => v.map((x) => `${(100 * x).toFixed(Math.max(0, Math.ceil(-Math.log10(100 * incr))))}%`) },
          { label: "power", values: (u, v) => v.map((x) => `${Math.round(100 * x)}%`) }],
        series: [{ label: "FPR", value: (u, v) => (v == null ? "–" : `${(100 * v).toFixed(2)}%`) },
          ...effects.map((e, i) => ({ label: `+${e}%`, stroke: colors[i % colors.length], width: 2, points: { show: true, size: 5 } })),
          { label: `chosen k = ${w.k}`, stroke: "#1b1f24", width: 0, points: { show: true, size: 14, fill: "#ffd33d" } }],
      }, [roc.map((p) => p.fpr), ...effects.map((e, i) => roc.map((p) => p.tpr?.[i] ?? null)),
        roc.map((p, j) => (j === opIdx ? p.tpr?.[at] ?? null : null))]);
    });
    return { live: !!cal.running, content, after };
  }

  async function fleetPage() {
    const [{ workers }, jobs] = await Promise.all([api("/api/v1/workers"), api("/api/v1/jobs?limit=50")]);
    const counts = jobs.counts || {};
    const maxCount = Math.max(1, ...Object.values(counts));
    const bars = s("svg", { viewBox: "0 0 420 130", width: "420", role: "img", "aria-label": "jobs by state" });
    Object.entries(counts).forEach(([state, n], i) => {
      const y = i * 25 + 5;
      bars.append(s("text", { x: 0, y: y + 14, "font-size": 13 }, state));
      bars.append(s("rect", { x: 80, y: y + 2, width: Math.max(1, (n / maxCount) * 280), height: 16,
        fill: state === "failed" ? "#cf222e" : state === "running" ? "#0969da" : state === "queued" ? "#bf8700" : "#8c959f" }));
      bars.append(s("text", { x: 86 + Math.max(1, (n / maxCount) * 280), y: y + 14, "font-size": 13 }, String(n)));
    });
    return {
      live: true,
      content: [h("h1", {}, "Fleet and queue"),
        h("h2", {}, "Workers"),
        table(["worker", "state", "current job", "host", "cores", "cpu", "kernel", "version", "last seen"],
          workers.map((w) => [w.name, badge(w.alive ? "alive" : "dead"),
            w.current_job ? h("a", { href: `#/experiments/${w.current_job.experiment_id}` },
              `job ${w.current_job.id} (${w.current_job.workflow}), ${w.current_job.runs_done}/${w.current_job.runs_total} runs`) : "idle",
            w.host, String(w.cores ?? "–"), w.cpu_model || "–", w.kernel || "–", w.version || "–", when(w.last_seen)])),
        h("h2", {}, "Jobs by state"),
        bars,
        table(["job", "experiment", "purpose", "workflow", "stage", "state", "worker", "runs", "created", "error"],
          (jobs.jobs || []).map((j) => [String(j.id), h("a", { href: `#/experiments/${j.experiment_id}` }, String(j.experiment_id)), j.purpose, j.workflow,
            j.stage, badge(j.state), j.worker || "–", `${j.runs_done}/${j.runs_total}`, when(j.created_at),
            j.error ? `${j.error.code || ""} ${j.error.message || ""}` : ""]), [0, 1, 7])],
    };
  }

  async function alertsPage() {
    const { alerts } = await api("/api/v1/alerts?limit=100");
    return {
      live: alerts.some((a) => ["pending", "sending"].includes(a.status)),
      content: [h("h1", {}, "Alerts"),
        alerts.length ? table(["id", "kind", "status", "to", "channel", "title", "attempts", "created", "delivered", "last error"],
          alerts.map((a) => [String(a.id), a.kind.replace(/_/g, " "), badge(a.status),
            `${a.recipient?.name || "–"}${a.recipient?.email ? ` <${a.recipient.email}>` : ""}`, `${a.channel} ${a.target}`,
            a.url ? h("a", { href: a.url.includes("/#/") ? "#/" + a.url.split("/#/")[1] : a.url }, a.title) : a.title,
            `${a.attempts}/${a.max_attempts}`, when(a.created_at), when(a.delivered_at), a.last_error || ""]), [0])
          : h("p", { class: "muted" }, "Nothing sent yet.")],
    };
  }

  function tokenForm(message) {
    const input = h("input", { type: "password", id: "token", autocomplete: "off", "aria-label": "API token" });
    return [h("h1", {}, "A token is needed"), h("p", {}, message),
      h("form", { class: "token", onsubmit: (ev) => { ev.preventDefault(); localStorage.setItem("ttfb-lab-token", input.value.trim()); render(); } },
        h("label", { for: "token" }, "Token with the read scope"), input, h("button", { type: "submit" }, "Use it"))];
  }

  // ---- router ---------------------------------------------------------------------------------
  const routes = [
    [/^#\/releases\/(.+)$/, releasePage, "releases"], [/^#\/releases$/, releasesPage, "releases"],
    [/^#\/experiments\/(\d+)$/, experimentPage, "experiments"], [/^#\/experiments$/, experimentsPage, "experiments"],
    [/^#\/bisections\/(\d+)(?:\/commit\/\d+)?$/, bisectionPage, "bisections"], [/^#\/bisections$/, bisectionsPage, "bisections"],
    [/^#\/workflows\/(.+)$/, workflowPage, "workflows"], [/^#\/workflows$/, workflowsPage, "workflows"],
    [/^#\/fleet$/, fleetPage, "fleet"], [/^#\/alerts$/, alertsPage, "alerts"],
  ];

  async function render(navigated) {
    clearTimeout(timer);
    const mine = ++generation;
    const hash = location.hash || "#/releases";
    let page = null, args = [], section = "";
    for (const [re, fn, sec] of routes) {
      const m = hash.match(re);
      if (m) { page = fn; args = m.slice(1).map(decodeURIComponent); section = sec; break; }
    }
    for (const a of document.querySelectorAll(".top nav a")) {
      if (a.dataset.section === section) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    let view;
    fetched = [];
    try {
      if (!page) throw new Error(`no such page: ${hash}`);
      view = await page(...args);
    } catch (err) {
      view = { live: false, content: err instanceof AuthNeeded ? tokenForm(err.message) : [h("h1", {}, "Could not load this page"), h("p", { class: "error" }, err.message)] };
    }
    if (mine !== generation) return;  // a newer render started meanwhile
    liveNote.textContent = view.live ? `updating every ${POLL_MS / 1000} s` : `updated ${new Date().toLocaleTimeString()}`;
    if (view.live) timer = setTimeout(() => render(false), POLL_MS);
    // A poll that brings nothing new leaves the page alone (focus, selection, scroll in tables).
    // Requests made together (Promise.all) finish in any order: compare the answers by path.
    fetched.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const drawnFrom = hash + JSON.stringify(fetched, (k, v) => (k === "last_seen" ? undefined : v));
    if (!navigated && drawnFrom === shown) return;
    shown = drawnFrom;
    const focusedHref = main.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    for (const u of plots) u.destroy();
    plots = [];
    const y = window.scrollY;
    main.replaceChildren(...[view.content].flat(Infinity).filter((x) => x));
    for (const f of view.after || []) f();
    document.title = `${(main.querySelector("h1")?.textContent || "ttfb-lab").trim()} · ttfb-lab`;
    if (navigated) { main.focus({ preventScroll: true }); window.scrollTo(0, 0); } else window.scrollTo(0, y);
    const sub = hash.match(/\/commit\/(\d+)$/);
    if (navigated && sub) document.getElementById(`commit-${sub[1]}`)?.scrollIntoView({ block: "center" });
    if (!navigated && focusedHref) main.querySelector(`[href="${CSS.escape(focusedHref)}"]`)?.focus({ preventScroll: true });
  }

  window.addEventListener("hashchange", () => render(true));
  render(false);
})();
