// The leaderboard: sorting and paging are links over the same URL (shareable); columns can be hidden
// (remembered per project in this browser); checked rows open the comparison.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const form = document.getElementById("filters");
  const params = () => new URLSearchParams(new FormData(form));

  for (const link of document.querySelectorAll("a.sort")) {
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      const q = params();
      const same = q.get("sort") === link.dataset.sort;
      q.set("sort", link.dataset.sort);
      q.set("order", same && q.get("order") === "desc" ? "asc" : "desc");
      location.search = q.toString();
    });
  }
  for (const link of document.querySelectorAll("a.page-link")) {
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      const q = params();
      q.set("offset", link.dataset.offset);
      location.search = q.toString();
    });
  }

  const compare = document.getElementById("compare-button");
  const picked = () => [...document.querySelectorAll("input.pick:checked")].map((box) => box.value);
  for (const box of document.querySelectorAll("input.pick")) {
    box.addEventListener("change", () => { compare.disabled = picked().length < 2; });
  }
  compare.addEventListener("click", () => {
    location.href = `/p/${page.project}/compare?${new URLSearchParams({ ids: picked().join(",") })}`;
  });

  // --- columns -------------------------------------------------------------------------------
  const key = `expstream.hidden.${page.project}`;
  const hidden = new Set(JSON.parse(localStorage.getItem(key) || "[]"));
  const picker = document.getElementById("column-picker");
  const columns = [...document.querySelectorAll("#leaderboard thead th[data-column]")].map((th) => th.dataset.column);
  function applyColumns() {
    for (const cell of document.querySelectorAll("#leaderboard [data-column]")) {
      cell.hidden = hidden.has(cell.dataset.column);
    }
  }
  for (const column of columns) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !hidden.has(column);
    box.addEventListener("change", () => {
      if (box.checked) hidden.delete(column); else hidden.add(column);
      localStorage.setItem(key, JSON.stringify([...hidden]));
      applyColumns();
    });
    label.append(box, document.createTextNode(" " + column));
    picker.append(label);
  }
  document.getElementById("columns-button").addEventListener("click", () => { picker.hidden = !picker.hidden; });
  applyColumns();
})();
