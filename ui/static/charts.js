// expstream charts: every chart asks the server for the per-pixel envelope of its x-range
// (first/min/max/last per pixel column) and draws it with uPlot, served from the installed uplot-python wheel.
// A drag over a chart, a shift-drag (pan) and a double-click (reset) ask again for the new range, so nothing is
// ever sampled away.
// An experiment may have thousands of logs: a chart is asked for only when it scrolls into view, the charts in
// view in batches of BATCH a request and at most MAX_IN_FLIGHT requests at a time (a card scrolled past before its
// turn is skipped), and at most MAX_DRAWN stay drawn
// (the ones out of view are freed first and drawn again when they come back), so the page stays responsive.
// Why uPlot: it evaluates in milliseconds and draws a chart of a few thousand points in about one; plotly took
// about a second to evaluate and half a second to draw a page of 20 charts on two cores.
"use strict";

const Charts = (() => {
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const PLOT_HEIGHT = 230;
  const settings = { axis: "step", ylog: false, smooth: 0 };
  const cards = [];
  const MAX_IN_FLIGHT = 4;
  const BATCH = 20;  // charts asked in one request at most
  const MAX_DRAWN = 60;
  const queue = [];
  let inFlight = 0;
  let pumping = false;
  let observer = null;

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
      batch.forEach((card, i) => show(card, answers[i], null, asked[i]));
    } finally {
      for (const card of batch) card.loading = false;
    }
  }

  async function draw(card) {
    const range = card.range;
    const asked = ++card.asked;
    show(card, await request(card, range), range, asked);
  }

  // the columns uPlot draws: one shared x and a y per series. Several experiments have x of their own, so each
  // series holds its values at its own x and null elsewhere (spanGaps joins its points); on a log y the values
  // that a log cannot show (zero, negative) are left out, as gaps
  function table(series) {
    const keep = (y) => (settings.ylog && !(y > 0) ? null : y);
    if (series.length === 1) return [series[0].x, series[0].y.map(keep)];
    const order = [];
    series.forEach((s, j) => s.x.forEach((x, i) => order.push([x, j, i])));
    order.sort((a, b) => a[0] - b[0]);
    const columns = series.map(() => new Array(order.length).fill(null));
    order.forEach(([, j, i], k) => { columns[j][k] = keep(series[j].y[i]); });
    return [order.map((o) => o[0]), ...columns];
  }

  function ema(column, alpha) {
    const out = new Array(column.length).fill(null);
    let last = null;
    for (let i = 0; i < column.length; i++) {
      if (column[i] === null) continue;
      last = last === null ? column[i] : last * alpha + column[i] * (1 - alpha);
      out[i] = last;
    }
    return out;
  }

  const pointerOnly = (type) => type === "mousemove" || type === "mouseleave";

  // hover: each series shows its own point nearest the cursor, not the null it holds at another series' x
  function nearest(u, seriesIdx, hovered) {
    const ys = u.data[seriesIdx];
    if (seriesIdx === 0 || ys[hovered] !== null) return hovered;
    for (let d = 1; d < ys.length; d++) {
      if (hovered - d >= 0 && ys[hovered - d] !== null) return hovered - d;
      if (hovered + d < ys.length && ys[hovered + d] !== null) return hovered + d;
      if (hovered - d < 0 && hovered + d >= ys.length) break;
    }
    return hovered;
  }

  // draw an answer, unless the card was asked again since (a setting changed, a zoom): the later answer draws
  function show(card, data, range, asked) {
    if (!data || asked !== card.asked) return;
    card.data = data;
    const [xs, ...columns] = table(data.series);
    const lines = [settings.axis === "time" ? { label: axisTitle(), value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" }
                                            : { label: axisTitle() }];
    const values = [xs];
    const fade = (color) => color + "40";
    columns.forEach((column, i) => {
      const stroke = COLORS[i % COLORS.length];
      const label = card.ids.length > 1 ? data.series[i].experiment : card.channel;
      if (settings.smooth > 0) {
        lines.push({ label: `${label} (raw)`, stroke: fade(stroke), width: 1, spanGaps: true });
        values.push(column);
        lines.push({ label, stroke, width: 1.8, spanGaps: true });
        values.push(ema(column, settings.smooth));
      } else {
        lines.push({ label, stroke, width: 1.5, spanGaps: true });
        values.push(column);
      }
    });
    const font = "11px system-ui, sans-serif";
    const x = { time: settings.axis === "time" };
    const empty = data.series.every((s) => s.x.length === 0);
    if (range) x.range = () => [range[0], range[1]];
    else if (empty) x.range = () => [0, 1];
    else if (xs[0] === xs[xs.length - 1]) x.range = () => [xs[0] - 1, xs[0] + 1];  // one x: centred
    card.el.classList.toggle("no-points", empty);
    const options = {
      width: widthOf(card), height: PLOT_HEIGHT,
      scales: { x, y: settings.ylog ? { distr: 3 } : {} },
      series: lines,
      axes: [{ label: axisTitle(), labelSize: 16, labelFont: font, font, size: 36 }, { font, size: 56 }],
      legend: { live: true },
      cursor: {
        y: false,  // a vertical line only: the y of one chart means nothing on the others
        drag: { x: true, y: false, setScale: false }, bind: { dblclick: () => null }, dataIdx: nearest,
        // hovering one chart shows the same x on the others of its tab (only the pointer: a drag zooms one chart)
        sync: { key: card.group, scales: ["x", null], filters: { pub: pointerOnly } },
      },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      hooks: { setSelect: [(u) => select(card, u)] },
    };
    if (card.chart) card.chart.destroy();
    card.chart = new uPlot(options, values, card.plot);
    card.el.dataset.drawn = String((Number(card.el.dataset.drawn) || 0) + 1);
    card.el.dataset.points = data.series.map((s) => s.points).join(",");
    if (!card.bound) bind(card);
  }

  // a drag over the chart selects an x-range: ask for it at full resolution
  function select(card, u) {
    if (u.select.width < 2) return;
    const range = [u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x")];
    u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
    zoomTo(card, range);
  }

  function zoomTo(card, range) {
    card.range = range;
    draw(card);
  }

  // double-click: the whole range again; shift-drag: pan, the new range asked for when the button is let go
  function bind(card) {
    card.bound = true;
    card.plot.addEventListener("dblclick", (ev) => {
      ev.stopPropagation();
      card.range = null;
      draw(card);
    }, true);
    card.plot.addEventListener("mousedown", (ev) => {
      if (!ev.shiftKey || !card.chart || ev.button !== 0) return;
      ev.stopPropagation();  // not uPlot's selection
      ev.preventDefault();
      const u = card.chart;
      const start = ev.clientX, from = u.scales.x.min, to = u.scales.x.max;
      const perPixel = (to - from) / Math.max(1, u.bbox.width / devicePixelRatio);
      let shift = 0;
      const move = (e) => {
        shift = (e.clientX - start) * perPixel;
        u.setScale("x", { min: from - shift, max: to - shift });
      };
      const up = () => {
        document.removeEventListener("mousemove", move);
        document.removeEventListener("mouseup", up);
        if (shift !== 0) zoomTo(card, [from - shift, to - shift]);
      };
      document.addEventListener("mousemove", move);
      document.addEventListener("mouseup", up);
    }, true);
  }

  function resize() {
    for (const card of cards) if (card.chart) card.chart.setSize({ width: widthOf(card), height: PLOT_HEIGHT });
  }

  // the cards queued while in view, in batches; a slot is free again once a batch's answers are in, so the
  // next request need not wait for the drawing of the last one
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
      card.chart.destroy();
      card.chart = null;
      card.data = null;
      card.range = null;  // back in view, it is drawn whole again
      delete card.el.dataset.drawn;
      delete card.el.dataset.points;
    }
  }

  // project: "ns/name"; ids: experiments drawn in every chart of root
  let groups = 0;

  function setup(root, project, ids) {
    const group = `expstream-${++groups}`;  // the cards of one setup share a hover cursor
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
      const card = { el, plot: el.querySelector(".plot"), channel: el.dataset.channel, group,
                     namespace: el.dataset.namespace || "user", project, ids, range: null, asked: 0 };
      el.__card = card;
      cards.push(card);
      observer.observe(el);
    }
    // the observer first reports after a rendering step: ask for the charts already in view now
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

  // the drawn chart of a card (its uPlot instance), for tests and the console
  const chartOf = (el) => (el.__card ? el.__card.chart : null);
  // ask for an x-range of a card at full resolution, as a drag over it does
  const zoom = (el, range) => zoomTo(el.__card, range);

  window.addEventListener("resize", resize);
  return { setup, refresh, bindTools, cards, settings, chartOf, zoom };
})();
window.expstreamCharts = Charts;
