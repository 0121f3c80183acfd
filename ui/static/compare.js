// The comparison page: the same channel of every experiment in one chart; parameters that differ.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  Charts.setup(document, page.project, page.ids);
  Charts.bindTools();
  const only = document.getElementById("only-differing");
  const apply = () => {
    for (const row of document.querySelectorAll("#parameter-diff tr.same")) row.hidden = only.checked;
  };
  only.addEventListener("change", apply);
  apply();
})();
