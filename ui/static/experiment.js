// The experiment page: tabs at #hash, lazy charts, searchable text logs that follow the tail,
// image galleries with a step slider, and a long poll of the status that keeps a running experiment live.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const base = `/p/${page.project}/e/${encodeURIComponent(page.id)}`;

  // --- tabs --------------------------------------------------------------------------------
  function showTab() {
    const name = (location.hash || "#charts").slice(1);
    for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${name}`;
    for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("active", link.dataset.tab === name);
  }
  window.addEventListener("hashchange", showTab);
  showTab();

  // --- charts ------------------------------------------------------------------------------
  Charts.setup(document.getElementById("tab-charts"), page.project, [page.id]);
  Charts.setup(document.getElementById("tab-monitoring"), page.project, [page.id]);
  Charts.bindTools();

  // with many logs, a filter by name: hidden cards are never in view, so they are neither asked for nor drawn
  const chartFilter = document.getElementById("chart-filter");
  if (chartFilter) {
    let filterTimer = null;
    chartFilter.addEventListener("input", () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => {
        const needle = chartFilter.value.toLowerCase();
        for (const box of document.querySelectorAll("#tab-charts .group-box")) {
          let shown = 0;
          for (const card of box.querySelectorAll(".chart-card")) {
            card.hidden = !card.dataset.channel.toLowerCase().includes(needle);
            if (!card.hidden) shown++;
          }
          box.hidden = shown === 0;
        }
      }, 200);
    });
  }

  // --- text logs ---------------------------------------------------------------------------
  const logSelect = document.getElementById("log-channel");
  const logBox = document.getElementById("log-lines");
  const logSearch = document.getElementById("log-search");
  let lastX = null;

  // a long line shows its first characters in the list, with a link to the whole line as plain text
  const SHOWN = 2000;
  function lineElement(line) {
    const row = document.createElement("div");
    row.className = "line";
    const x = document.createElement("span");
    x.className = "x";
    x.textContent = String(line.x);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = line.text.length > SHOWN ? line.text.slice(0, SHOWN) : line.text;  // text, never markup
    row.append(x, text);
    if (line.length > SHOWN) {
      const option = logSelect.selectedOptions[0];
      const whole = document.createElement("a");
      whole.className = "cut";
      whole.target = "_blank";
      whole.href = `${base}/text/line?${new URLSearchParams({ channel: option.value,
        namespace: option.dataset.namespace, x: String(line.x) })}`;
      whole.textContent = ` … whole line (${line.length.toLocaleString("en")} characters)`;
      row.append(whole);
    }
    return row;
  }

  async function loadLog(append) {
    if (!logSelect) return;
    const option = logSelect.selectedOptions[0];
    const q = new URLSearchParams({ channel: option.value, namespace: option.dataset.namespace, q: logSearch.value });
    if (append && lastX !== null) q.set("after", String(lastX));
    let response;
    try { response = await fetch(`${base}/api/text?${q}`); } catch (err) { return; }
    if (!response.ok) return;
    const { lines } = await response.json();
    if (!append) logBox.replaceChildren();
    for (const line of lines) logBox.append(lineElement(line));
    if (lines.length) lastX = lines[lines.length - 1].x;
    else if (!append) lastX = null;
    if (document.getElementById("log-follow").checked) logBox.scrollTop = logBox.scrollHeight;
  }
  if (logSelect) {
    logSelect.addEventListener("change", () => loadLog(false));
    let timer = null;
    logSearch.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => loadLog(false), 250); });
    loadLog(false);
  }

  // --- images ------------------------------------------------------------------------------
  const lightbox = document.getElementById("lightbox");
  // a small image shown larger keeps its pixels sharp; a big one shown smaller is smoothed (no aliasing)
  const sharpWhenEnlarged = (img) => img.addEventListener("load", () => {
    img.classList.toggle("pixels", img.naturalWidth < img.clientWidth);
  });
  if (lightbox) sharpWhenEnlarged(lightbox.querySelector("img"));
  // the gallery shows a thumbnail (at most 720 px a side: an image may be 15 MB); a click opens the full image
  function imageUrl(channel, x, thumb) {
    const q = new URLSearchParams({ channel, x: String(x) });
    if (thumb) q.set("thumb", "1");
    return `${base}/image?${q}`;
  }
  async function loadGallery(gallery) {
    const channel = gallery.dataset.channel;
    const response = await fetch(`${base}/api/images?${new URLSearchParams({ channel })}`);
    if (!response.ok) return;
    const { images } = await response.json();
    const slider = gallery.querySelector(".step");
    const label = gallery.querySelector(".step-label");
    const strip = gallery.querySelector(".gallery-strip");
    slider.max = String(Math.max(0, images.length - 1));
    slider.value = slider.max;
    function show() {
      const item = images[Number(slider.value)];
      strip.replaceChildren();
      if (!item) { label.textContent = "no images"; return; }
      label.textContent = `x = ${item.x} · ${item.name}${item.description ? " · " + item.description : ""}`;
      const img = document.createElement("img");
      img.src = imageUrl(channel, item.x, true);
      img.alt = item.name;
      img.loading = "lazy";
      sharpWhenEnlarged(img);
      img.addEventListener("click", () => {
        lightbox.querySelector("img").src = imageUrl(channel, item.x, false);
        lightbox.querySelector(".caption").textContent = label.textContent;
        lightbox.hidden = false;
      });
      strip.append(img);
    }
    slider.addEventListener("input", show);
    show();
  }
  for (const gallery of document.querySelectorAll(".gallery")) loadGallery(gallery);
  if (lightbox) lightbox.addEventListener("click", () => { lightbox.hidden = true; });

  // --- live --------------------------------------------------------------------------------
  let seen = null;
  let channels = null;
  let state = null;
  async function poll() {
    let again = 500;
    try {
      // a long poll: the server answers as soon as new events are materialized or the state changes
      const wait = seen === null ? "" : `?${new URLSearchParams({ events: seen, state: state, wait: 2 })}`;
      const response = await fetch(`${base}/api/status${wait}`);
      if (response.ok) {
        const status = await response.json();
        const badge = document.getElementById("state");
        badge.textContent = status.state;
        badge.className = `state ${status.state}`;
        if (channels !== null && status.channels !== channels) {
          location.reload();  // a new log (or a reset one): the page lays out its charts anew
          return;
        }
        channels = status.channels;
        if (seen !== null && status.events !== seen) {
          Charts.refresh(false);
          if (logSelect && !logSearch.value) loadLog(true);
        }
        seen = status.events;
        state = status.state;
        document.body.dataset.events = String(status.events);
        again = 0;
      }
      document.body.classList.remove("offline");
    } catch (err) {
      document.body.classList.add("offline");  // the server is away (restarting?): keep polling
    } finally {
      setTimeout(poll, again);
    }
  }
  poll();
})();
