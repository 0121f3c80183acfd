// expstream charts: every chart asks the server for the per-pixel envelope of its x-range
// (first/min/max/last per pixel column) and draws it with the plotly bundle the server serves.
// Zoom and pan ask again for the zoomed range, so nothing is ever sampled away.
// An experiment may have thousands of logs: a chart is asked for only when it scrolls into view, the charts in
// view in batches of BATCH a request and at most MAX_IN_FLIGHT requests at a time (a card scrolled past before its
// turn is skipped), and at most MAX_DRAWN stay drawn
// (the ones out of view are purged first and drawn again when they come back), so the page stays responsive.
// The plotly bundle is a deferred script that takes about a second to evaluate: the charts in view are asked
// for before it runs (their answers arrive meanwhile) and drawn once it has.
"use strict";

const Charts = (() => {
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const settings = { axis: "step", ylog: false, smooth: 0 };
  const cards = [];
  const MAX_IN_FLIGHT = 4;
  const BATCH = 20;  // charts asked in one request at most
  const MAX_DRAWN = 60;
  const queue = [];
  let inFlight = 0;
  let pumping = false;
  let observer = null;
  // the deferred bundle is parsed before this file runs, and executes after it: its load event says it is ready
  const plotlyReady = new Promise((resolve) => {
    if (window.Plotly) { resolve(); return; }
    const tag = document.querySelector('script[src$="plotly.min.js"]');
    if (tag) tag.addEventListener("load", () => resolve(), { once: true });
  });

  // plotly reads a little HTML in trace names: user strings go in as text, entities and all
  const asText = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const toX = (v) => (settings.axis === "time" ? new Date(v * 1000).toISOString().replace("Z", "") : v);
  const fromX = (v) =>
    settings.axis === "time" ? Date.parse(String(v).replace(" ", "T") + "Z") / 1000 : Number(v);

  function ema(ys, alpha) {
    const out = new Array(ys.length);
    let last = null;
    for (let i = 0; i < ys.length; i++) {
      last = last === null ? ys[i] : last * alpha + ys[i] * (1 - alpha);
      out[i] = last;
    }
    return out;
  }

  function axisTitle() {
    return { step: "step", relative: "seconds since start", time: "time (UTC)" }[settings.axis];
  }

  const widthOf = (card) => Math.max(50, Math.min(4000, Math.round(card.plot.clientWidth || 600)));

  function fail(card, message) {
    card.el.classList.add("failed");
    card.el.querySelector("figcaption").dataset.error = String(message);
  }

  // one card's answer for range (a zoom), or null when the request failed (the card says why)
  async function request(card, range) {
    const q = new URLSearchParams({
      ids: card.ids.join(","), channel: card.channel, namespace: card.namespace, axis: settings.axis,
      width: String(widthOf(card)),
    });
    if (range) { q.set("x_from", String(range[0])); q.set("x_to", String(range[1])); }
    try {
      const response = await fetch(`/p/${card.project}/api/chart?${q}`);  // rejects when offline
      if (!response.ok) throw new Error(`chart ${card.channel}: ${response.status}`);
      return await response.json();
    } catch (err) {
      fail(card, err.message);
      return null;
    }
  }

  // the whole range of every card of a batch (one namespace) in one request: one answer or null per card
  async function requestBatch(batch) {
    const first = batch[0];
    const q = new URLSearchParams({
      ids: first.ids.join(","), namespace: first.namespace, axis: settings.axis,
      width: String(Math.max(...batch.map(widthOf))),
    });
    for (const card of batch) q.append("channel", card.channel);
    let answers;
    try {
      const response = await fetch(`/p/${first.project}/api/charts?${q}`);
      if (!response.ok) throw new Error(`charts: ${response.status}`);
      answers = (await response.json()).charts;
    } catch (err) {
      answers = batch.map(() => ({ error: err.message }));
    }
    return batch.map((card, i) => {
      const answer = answers[i];
      if (answer && !answer.error) return answer;
      fail(card, answer ? answer.error : "no answer");
      return null;
    });
  }

  // cards of one namespace, at most BATCH a request
  function batches(list) {
    const out = [];
    for (const card of list) {
      const last = out[out.length - 1];
      if (last && last.length < BATCH && last[0].namespace === card.namespace) last.push(card);
      else out.push([card]);
    }
    return out;
  }

  // ask for a batch and draw its answers; answered() runs as soon as the answers are in, before the drawing
  async function load(batch, answered) {
    const asked = batch.map((card) => ++card.asked);
    for (const card of batch) card.loading = true;
    try {
      const answers = await requestBatch(batch);
      if (answered) answered();
      await Promise.all(batch.map((card, i) => show(card, answers[i], null, asked[i])));
    } finally {
      for (const card of batch) card.loading = false;
    }
  }

  async function draw(card) {
    const range = card.range;
    const asked = ++card.asked;
    await show(card, await request(card, range), range, asked);
  }

  // draw an answer, unless the card was asked again since (a setting changed, a zoom): the later answer draws
  async function show(card, data, range, asked) {
    if (!data) return;
    await plotlyReady;
    if (asked !== card.asked) return;
    card.data = data;
    const traces = [];
    data.series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      const xs = s.x.map(toX);
      const name = asText(card.ids.length > 1 ? s.experiment : card.channel);
      if (settings.smooth > 0) {
        traces.push({ x: xs, y: s.y, mode: "lines", line: { width: 1, color }, opacity: 0.25,
                      hoverinfo: "skip", showlegend: false });
        traces.push({ x: xs, y: ema(s.y, settings.smooth), mode: "lines", line: { width: 1.8, color }, name });
      } else {
        traces.push({ x: xs, y: s.y, mode: "lines", line: { width: 1.5, color }, name });
      }
    });
    const layout = {
      height: 250, margin: { l: 55, r: 12, t: 8, b: 38 },
      xaxis: { title: { text: axisTitle(), font: { size: 11 } }, type: settings.axis === "time" ? "date" : "linear",
               zeroline: false },
      yaxis: { type: settings.ylog ? "log" : "linear", zeroline: false },
      hovermode: "x unified", showlegend: card.ids.length > 1,
      legend: { orientation: "h", y: 1.12 }, font: { family: "system-ui, sans-serif", size: 11 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    };
    if (range) layout.xaxis.range = range.map(toX);
    card.drawing = true;
    await Plotly.react(card.plot, traces, layout, { displaylogo: false, responsive: true,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "toImage"] });
    card.drawing = false;
    card.el.dataset.drawn = String((Number(card.el.dataset.drawn) || 0) + 1);
    card.el.dataset.points = data.series.map((s) => s.points).join(",");
    if (!card.bound) {
      card.bound = true;
      card.plot.on("plotly_relayout", (ev) => {
        if (card.drawing) return;
        if (ev["xaxis.autorange"]) { card.range = null; draw(card); return; }
        const a = ev["xaxis.range[0]"], b = ev["xaxis.range[1]"];
        if (a !== undefined && b !== undefined) { card.range = [fromX(a), fromX(b)]; draw(card); }
      });
    }
  }

  // the cards queued while in view, in batches; a slot is free again once a batch's answers are in, so the
  // next request need not wait for plotly to draw the last one
  function pump() {
    while (inFlight < MAX_IN_FLIGHT && queue.length) {
      const wanted = queue.splice(0, BATCH);
      for (const card of wanted) card.queued = false;
      const ready = wanted.filter((card) => card.visible && !card.data);  // not scrolled past before their turn
      for (const batch of batches(ready)) {
        inFlight++;
        load(batch, () => { inFlight--; pump(); }).finally(forget);
      }
    }
  }

  function visible(card) {
    if (!card.visible || card.queued || card.loading) return;
    card.queued = true;
    queue.push(card);
    if (!pumping) {  // once the cards that came into view together are queued: they share requests
      pumping = true;
      queueMicrotask(() => { pumping = false; pump(); });
    }
  }

  // purge the charts out of view beyond MAX_DRAWN (their DOM and data); they are asked again when back in view
  function forget() {
    let excess = cards.filter((c) => c.data).length - MAX_DRAWN;
    for (const card of cards) {
      if (excess <= 0) break;
      if (card.visible || !card.data) continue;
      excess--;
      Plotly.purge(card.plot);
      card.data = null;
      card.range = null;  // back in view, it is drawn whole again
      card.bound = false;
      delete card.el.dataset.drawn;
      delete card.el.dataset.points;
    }
  }

  // project: "ns/name"; ids: experiments drawn in every chart of root
  function setup(root, project, ids) {
    if (!observer) {
      observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          const card = entry.target.__card;
          card.visible = entry.isIntersecting;
          if (card.visible && !card.data) visible(card);
        }
      }, { rootMargin: "200px" });
    }
    for (const el of root.querySelectorAll(".chart-card")) {
      const card = { el, plot: el.querySelector(".plot"), channel: el.dataset.channel,
                     namespace: el.dataset.namespace || "user", project, ids, range: null, asked: 0 };
      el.__card = card;
      cards.push(card);
      observer.observe(el);
    }
    // the observer first reports after a rendering step, which waits for the deferred plotly bundle: ask for
    // the charts already in view now, so that their answers arrive while the bundle evaluates
    const bottom = window.innerHeight + 200;
    for (const card of cards) {
      if (card.visible || card.el.closest("[hidden]")) continue;
      const box = card.el.getBoundingClientRect();
      if (box.height > 0 && box.top < bottom && box.bottom > -200) { card.visible = true; visible(card); }
    }
  }

  // redraw what is visible and not zoomed (live updates); everything after a setting changed
  function refresh(all) {
    const whole = [];
    for (const card of cards) {
      if (all) { card.range = null; card.data = card.visible ? card.data : null; }
      if (card.visible && card.range === null && (all || !card.loading)) whole.push(card);
    }
    for (const batch of batches(whole)) load(batch);
  }

  function bindTools() {
    const axis = document.getElementById("axis");
    const ylog = document.getElementById("ylog");
    const smooth = document.getElementById("smooth");
    if (axis) axis.addEventListener("change", () => { settings.axis = axis.value; refresh(true); });
    if (ylog) ylog.addEventListener("change", () => { settings.ylog = ylog.checked; refresh(true); });
    if (smooth) smooth.addEventListener("change", () => {
      settings.smooth = Number(smooth.value);
      document.getElementById("smooth-value").textContent = smooth.value;
      refresh(false);
    });
  }

  return { setup, refresh, bindTools, cards, settings };
})();
window.expstreamCharts = Charts;
