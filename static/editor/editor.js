// Pipedeck editor: palette search, tabs, SortableJS lanes; every change goes to the server through htmx.
(function () {
  "use strict";
  const editor = document.getElementById("editor");
  if (!editor) return;
  const base = editor.dataset.base;
  const editable = editor.dataset.editable === "1";
  const allowedByType = JSON.parse(document.getElementById("allowed-by-type").textContent);
  // Swapped-in buttons work at once (htmx wires new content when it settles; no transitions here).
  htmx.config.defaultSettleDelay = 0;

  function post(path, values) {
    return htmx.ajax("POST", base + path, { target: "#canvas", swap: "outerHTML", values: values });
  }

  // This browser tab's id: the server lets a tab's own edits in flight follow each other, and the live
  // socket (live.js) skips the tab's own changes.
  const client = window.crypto && crypto.randomUUID ? crypto.randomUUID()
    : Date.now().toString(36) + Math.random().toString(36).slice(2);
  window.pipedeckClient = client;

  /** The draft revision this page shows (the status bar's, refreshed with every answer). */
  function revision() {
    const status = document.getElementById("status");
    return status ? status.dataset.revision : "";
  }

  // Every change sent to the server carries the revision it was made on (a form may carry its own: the
  // step form and the YAML tab were made on the revision they were rendered at) and the tab's id.
  document.body.addEventListener("htmx:configRequest", function (evt) {
    const detail = evt.detail;
    if (detail.verb !== "post" || !detail.path.startsWith(base)) return;
    const params = detail.parameters;
    const has = (name) => (params instanceof FormData ? params.has(name) : name in params);
    const set = (name, value) => (params instanceof FormData ? params.set(name, value) : (params[name] = value));
    if (!has("revision")) set("revision", revision());
    set("client", client);
  });

  // Answers can arrive out of order (a drag's answer after the Save button's): never swap in a canvas or
  // status older than the one shown (revision, then the latest saved version's number).
  function stamp(el) {
    return el ? [Number(el.dataset.revision || 0), Number(el.dataset.saved || 0)] : null;
  }
  function older(incoming, shown) {
    return incoming && shown && (incoming[0] < shown[0] || (incoming[0] === shown[0] && incoming[1] < shown[1]));
  }
  document.body.addEventListener("htmx:oobBeforeSwap", function (evt) {
    const target = evt.detail.target;
    if (target.id !== "status" && target.id !== "canvas") return;
    const incoming = evt.detail.fragment && evt.detail.fragment.firstElementChild;
    if (older(stamp(incoming), stamp(target))) evt.detail.shouldSwap = false;
  });
  document.body.addEventListener("htmx:beforeSwap", function (evt) {
    const target = evt.detail.target;
    if (!target || target.id !== "canvas" || !evt.detail.serverResponse) return;
    const found = /id="canvas"[^>]*data-revision="(\d+)"/.exec(evt.detail.serverResponse);
    if (found && Number(found[1]) < Number(target.dataset.revision || 0)) evt.detail.shouldSwap = false;
  });

  // Undo and redo from the keyboard (not while typing: text fields keep their own undo).
  document.addEventListener("keydown", function (evt) {
    if (!(evt.ctrlKey || evt.metaKey) || evt.altKey) return;
    const target = evt.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    const key = evt.key.toLowerCase();
    const redo = (key === "z" && evt.shiftKey) || key === "y";
    if (key !== "z" && key !== "y") return;
    const button = document.getElementById(redo ? "redo-button" : "undo-button");
    if (!button) return;
    evt.preventDefault();
    // (not button.click(): a button swapped in a moment ago is wired by htmx only once it settles)
    if (!button.disabled) post(redo ? "redo/" : "undo/", {});
  });

  // Narrow screens: the palette folds away behind its button.
  const toggle = document.getElementById("palette-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const palette = document.getElementById("palette");
      const open = palette.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // A step form with typed, unapplied values is "dirty": a refresh of the draft leaves it alone.
  document.addEventListener("input", function (evt) {
    const form = evt.target.closest && evt.target.closest("#step-form");
    if (form) form.dataset.dirty = "1";
  });

  // The draft was replaced (undo, redo, discard, a colleague's change, a refused edit): the open step form
  // follows it, unless it holds typed values; a step that is gone closes its form.
  document.body.addEventListener("draft-replaced", function () {
    setTimeout(refreshInspector, 0); // after the swap
  });
  function refreshInspector() {
    const form = document.getElementById("step-form");
    if (!form || form.dataset.dirty === "1") return;
    const phase = form.elements.phase.value, id = form.elements.id.value;
    if (!document.querySelector(`#canvas .step[data-phase="${CSS.escape(phase)}"][data-id="${CSS.escape(id)}"]`)) {
      closeInspector();
      return;
    }
    htmx.ajax("GET", `${base}steps/form/?phase=${encodeURIComponent(phase)}&id=${encodeURIComponent(id)}`,
      { target: "#inspector", swap: "innerHTML" });
  }
  function closeInspector() {
    const inspector = document.getElementById("inspector");
    inspector.replaceChildren(document.getElementById("inspector-empty").content.cloneNode(true));
    htmx.process(inspector);
    document.querySelectorAll("#canvas .step.selected").forEach(function (s) { s.classList.remove("selected"); });
  }
  window.pipedeckEditor = { base: base, client: client, revision: revision, refreshInspector: refreshInspector };

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
      closeInspector();
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

  // The columns a step reads (once a preview or run reported them): a click puts one in its field, as a
  // new line of a list, an item of a YAML list, the next empty key of a mapping, or at the cursor of SQL.
  document.addEventListener("click", function (evt) {
    const pick = evt.target.closest(".column-pick");
    if (!pick) return;
    const picks = pick.closest(".column-picks");
    const column = pick.dataset.column;
    const kind = picks.dataset.kind, widget = picks.dataset.widget;
    if (kind === "keys") {
      const rows = picks.parentElement.querySelector(".kv-rows");
      let empty = [...rows.querySelectorAll("input[name$='-key']")].find(function (i) { return !i.value; });
      if (!empty) {
        picks.parentElement.querySelector(".kv-add").click();
        empty = rows.querySelector(".kv-row:last-child input[name$='-key']");
      }
      empty.value = column;
      empty.focus();
      return;
    }
    const field = document.getElementById(picks.dataset.for);
    if (!field) return;
    const text = field.value;
    if (kind === "expression") {
      const at = field.selectionStart ?? text.length;
      field.value = text.slice(0, at) + column + text.slice(field.selectionEnd ?? at);
      field.selectionStart = field.selectionEnd = at + column.length;
    } else if (widget === "list") {
      const items = text.split("\n").map(function (l) { return l.trim(); }).filter(Boolean);
      if (!items.includes(column)) items.push(column);
      field.value = items.join("\n");
    } else if (widget === "yaml") { // a name, or a YAML list of names
      const trimmed = text.trim();
      if (!trimmed) field.value = column;
      else if (trimmed.startsWith("-")) field.value = trimmed + "\n- " + column;
      else field.value = "- " + trimmed + "\n- " + column;
    } else {
      field.value = column;
    }
    field.focus();
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
    setTimeout(function () {
      const form = document.querySelector("#step-form input[name=id]");
      if (form && !document.querySelector("#canvas .step[data-id='" + CSS.escape(form.value) + "']")) closeInspector();
    }, 0);
  });

  htmx.onLoad(function () { initPalette(); initLanes(); });
  initPalette();
  initLanes();
})();
