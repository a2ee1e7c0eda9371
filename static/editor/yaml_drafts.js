// The YAML tab keeps unapplied text: what is typed there is stored in this browser (localStorage, per
// pipeline, with the draft revision it was based on) until it is applied or discarded, so it survives a
// switch to another tab and a reload. A panel the server fills with posted text (a refused apply) is stored
// as is, with the revision it now holds.
(function () {
  "use strict";
  const editor = document.getElementById("editor");
  if (!editor) return;
  const key = `pipedeck:yaml:${editor.dataset.pipelineKey}`;
  const base = editor.dataset.base;

  function stored() {
    try { return JSON.parse(localStorage.getItem(key)); } catch (err) { return null; }
  }
  function store(text, revision) { localStorage.setItem(key, JSON.stringify({ text: text, revision: revision })); }
  function forget() { localStorage.removeItem(key); }

  function adopt(panel) {
    const area = panel.querySelector("#yaml-text");
    const form = panel.querySelector("#yaml-form");
    if (!area || !form) return;
    if (panel.dataset.fromUser === "1") { store(area.value, form.elements.revision.value); return; }
    const kept = stored();
    if (!kept) return;
    if (kept.text === area.value) { forget(); return; } // nothing left unapplied
    area.value = kept.text;
    form.elements.revision.value = kept.revision;
    const note = panel.querySelector("#yaml-restored");
    note.querySelector(".yaml-base").textContent = kept.revision;
    note.hidden = false;
  }

  function reload() {
    return htmx.ajax("GET", `${base}yaml/`, { target: "#yaml-panel", swap: "outerHTML" });
  }

  document.addEventListener("input", function (evt) {
    if (evt.target.id !== "yaml-text") return;
    store(evt.target.value, evt.target.form.elements.revision.value);
  });
  document.addEventListener("click", function (evt) {
    if (!evt.target.closest("#yaml-discard")) return;
    forget();
    reload();
  });
  document.body.addEventListener("yaml-applied", forget);
  htmx.onLoad(function (elt) {
    const panel = elt.id === "yaml-panel" ? elt : elt.querySelector && elt.querySelector("#yaml-panel");
    if (panel) adopt(panel);
  });

  window.pipedeckYaml = {
    /** Show the pipeline as it is now in an open YAML tab that holds no unapplied text. */
    refreshIfClean: function () {
      const panel = document.getElementById("yaml-panel");
      if (stored() || !panel || !panel.querySelector("#yaml-text") || panel.closest("[hidden]")) return;
      reload();
    },
  };
})();
