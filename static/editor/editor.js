// Pipedeck editor: palette search, tabs, SortableJS lanes; every change goes to the server through htmx.
(function () {
  "use strict";
  const editor = document.getElementById("editor");
  if (!editor) return;
  const base = editor.dataset.base;
  const editable = editor.dataset.editable === "1";
  const allowedByType = JSON.parse(document.getElementById("allowed-by-type").textContent);

  function post(path, values) {
    return htmx.ajax("POST", base + path, { target: "#canvas", swap: "outerHTML", values: values });
  }

  // Palette search: a client-side filter over names and descriptions.
  const search = document.getElementById("palette-search");
  search.addEventListener("input", function () {
    const q = search.value.trim().toLowerCase();
    editor.querySelectorAll(".palette .plugin").forEach(function (el) {
      el.hidden = q !== "" && !el.dataset.search.includes(q);
    });
    editor.querySelectorAll(".palette-group").forEach(function (group) {
      group.hidden = !group.querySelector(".plugin:not([hidden])");
    });
  });

  // Tabs.
  editor.querySelectorAll(".tab").forEach(function (tab) {
    tab.addEventListener("click", function () {
      editor.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t === tab); });
      editor.querySelectorAll(".tab-panel").forEach(function (p) { p.hidden = p.dataset.panel !== tab.dataset.tab; });
    });
  });

  function accepts(to, from, dragEl) {
    return dragEl.dataset.kind === to.el.dataset.kind;
  }

  function initPalette() {
    editor.querySelectorAll(".palette-list").forEach(function (list) {
      if (list._sortable) return;
      list._sortable = Sortable.create(list, {
        group: { name: "steps", pull: "clone", put: false },
        sort: false,
        animation: 0,
      });
    });
  }

  function initLanes() {
    if (!editable) return;
    document.querySelectorAll("#canvas ul.steps").forEach(function (list) {
      if (list._sortable) return;
      list._sortable = Sortable.create(list, {
        group: { name: "steps", pull: true, put: accepts },
        animation: 120,
        filter: ".step-remove",
        preventOnFilter: false,
        emptyInsertThreshold: 24,
        onAdd: function (evt) {
          const item = evt.item;
          if (evt.from.classList.contains("palette-list")) {
            item.classList.add("pending");
            post("steps/add/", {
              phase: list.dataset.phase, slot: list.dataset.slot, plugin: item.dataset.plugin, index: evt.newIndex,
            });
          } else {
            post("steps/move/", {
              phase: item.dataset.phase, id: item.dataset.id,
              to_phase: list.dataset.phase, to_slot: list.dataset.slot, to_index: evt.newIndex,
            });
          }
        },
        onUpdate: function (evt) {
          const item = evt.item;
          post("steps/move/", {
            phase: item.dataset.phase, id: item.dataset.id, slot: list.dataset.slot,
            to_phase: list.dataset.phase, to_slot: list.dataset.slot, to_index: evt.newIndex,
          });
        },
      });
    });
  }

  // Switching type: warn before steps in lanes the new type lacks are dropped.
  document.addEventListener("change", function (evt) {
    const select = evt.target;
    if (select.id === "type-select") {
      const next = select.value;
      const allowed = allowedByType[next] || [];
      const dropped = [];
      document.querySelectorAll("#canvas .lane").forEach(function (lane) {
        if (allowed.includes(lane.dataset.phase)) return;
        lane.querySelectorAll(".step").forEach(function (s) { dropped.push(lane.dataset.phase + "." + s.dataset.id); });
      });
      if (dropped.length && !window.confirm(
        "Switching to " + next + " drops " + dropped.length + " step(s): " + dropped.join(", ") + ". Continue?")) {
        select.value = select.dataset.current;
        return;
      }
      post("type/", { type: next, confirm: "1" });
    } else if (select.classList.contains("secret-pick") && select.value) {
      const input = document.getElementById(select.dataset.for);
      if (input) input.value = select.value;
      select.value = "";
    }
  });

  // Key/value rows: add one more. Closing a step's form shows the pipeline's details again.
  document.addEventListener("click", function (evt) {
    if (evt.target.closest(".inspector-close")) {
      const inspector = document.getElementById("inspector");
      inspector.replaceChildren(document.getElementById("inspector-empty").content.cloneNode(true));
      htmx.process(inspector);
      document.querySelectorAll("#canvas .step.selected").forEach(function (s) { s.classList.remove("selected"); });
      return;
    }
    const add = evt.target.closest(".kv-add");
    if (!add) return;
    const rows = add.previousElementSibling;
    const last = rows.querySelector(".kv-row:last-child");
    const copy = last.cloneNode(true);
    copy.querySelectorAll("input").forEach(function (i) { i.value = ""; });
    rows.appendChild(copy);
  });

  // Mark the step whose form is open.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    const opener = evt.detail.elt.closest && evt.detail.elt.closest(".step-open");
    if (!opener) return;
    document.querySelectorAll("#canvas .step.selected").forEach(function (s) { s.classList.remove("selected"); });
    opener.parentElement.classList.add("selected");
  });

  // A removed step's form must not stay open.
  document.body.addEventListener("step-removed", function () {
    const form = document.querySelector("#step-form input[name=id]");
    if (form && !document.querySelector("#canvas .step[data-id='" + CSS.escape(form.value) + "']")) {
      document.getElementById("inspector").innerHTML = '<p class="muted">Step removed.</p>';
    }
  });

  htmx.onLoad(function () { initPalette(); initLanes(); });
  initPalette();
  initLanes();
})();
