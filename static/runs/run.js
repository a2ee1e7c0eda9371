// Live run page: applies the run's events (history, then live) to the step boxes, log and timeline.
// The events come through run_socket.js: each once and in order, across dropped messages and sockets.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const runId = root.dataset.run;
  const eventsUrl = root.dataset.eventsUrl;
  const FINISHED = ["succeeded", "failed", "cancelled"];

  const key = (p, ph, s) => `${p}\u0000${ph}\u0000${s}`;
  const steps = new Map();
  root.querySelectorAll(".run-step").forEach((el) => steps.set(key(el.dataset.pipeline, el.dataset.phase, el.dataset.step), el));
  const pipelines = new Map();
  root.querySelectorAll(".run-pipeline").forEach((el) => pipelines.set(el.dataset.pipeline, el));
  const timings = new Map(); // step key -> {label, start, end, state}
  const logEl = document.getElementById("log");

  function setState(el, state) {
    if (!el) return;
    el.className = el.className.replace(/\bstate-\w+/g, "").trim() + " state-" + state;
    el.dataset.state = state;
    const label = el.querySelector(":scope > .step-state, :scope > h2 > .badge");
    if (label) { label.textContent = state; label.className = label.className.replace(/\bstate-\w+/g, "").trim() + " state-" + state; }
  }
  function text(el, selector, value) {
    const target = el && el.querySelector(selector);
    if (target) target.textContent = value;
  }
  function showError(el, value) {
    if (!el) return;
    el.textContent = value || "";
    el.hidden = !value;
  }
  const secs = (d) => (d === null || d === undefined ? "" : `${Number(d).toFixed(2)} s`);

  function setRunState(state, error) {
    const badge = document.getElementById("run-state");
    badge.textContent = state;
    badge.className = "badge state-" + state;
    badge.dataset.state = state;
    root.dataset.state = state;
    const finished = FINISHED.includes(state);
    const cancel = document.getElementById("cancel-run");
    if (cancel) cancel.hidden = finished;
    const retry = document.getElementById("retry-form");
    if (retry) retry.hidden = !(state === "failed" || state === "cancelled");
    const resume = document.getElementById("resume-form");
    if (resume) resume.hidden = !(state === "failed" || state === "cancelled");
    if (error !== undefined) showError(document.getElementById("run-error"), error);
  }

  function stepEl(ev) {
    let el = steps.get(key(ev.pipeline, ev.phase, ev.step));
    if (!el) { // a step the layout did not know (generated id): add a box
      const pl = pipelines.get(ev.pipeline);
      const phase = pl && pl.querySelector(`.run-phase[data-phase="${CSS.escape(ev.phase)}"] .run-steps`);
      if (!phase) return null;
      el = document.createElement("li");
      el.className = "run-step state-queued";
      el.tabIndex = 0;
      el.title = "Show this step's log lines";
      Object.assign(el.dataset, { pipeline: ev.pipeline, phase: ev.phase, step: ev.step, state: "queued" });
      el.innerHTML = '<span class="step-id"></span><span class="step-plugin"></span><span class="step-state">queued</span>' +
        '<span class="step-stats muted"><span class="step-rows"></span> <span class="step-duration"></span></span>' +
        '<div class="progress" hidden><div class="bar"></div></div><p class="step-error" hidden></p>';
      el.querySelector(".step-id").textContent = ev.step;
      phase.appendChild(el);
      steps.set(key(ev.pipeline, ev.phase, ev.step), el);
    }
    return el;
  }

  // -- log pane: every step's lines; clicking a step box shows only that step's -------------------
  let logFilter = null;
  function log(ev) {
    const source = `${ev.pipeline}.${ev.phase}.${ev.step}`;
    const line = document.createElement("span");
    line.className = "log-line";
    line.dataset.source = source;
    line.textContent = `${new Date(ev.ts * 1000).toISOString().slice(11, 23)} ${ev.level.padEnd(7)} ${source}: ${ev.message}\n`;
    line.hidden = logFilter !== null && logFilter !== source;
    const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
    logEl.append(line);
    if (atBottom) logEl.scrollTop = logEl.scrollHeight;
  }
  function filterLog(source) {
    logFilter = source;
    for (const line of logEl.children) line.hidden = source !== null && line.dataset.source !== source;
    for (const box of document.querySelectorAll(".run-step")) {
      box.classList.toggle("selected", source !== null && stepSource(box) === source);
    }
    const chip = document.getElementById("log-filter");
    chip.hidden = source === null;
    chip.querySelector("strong").textContent = source || "";
  }
  function stepSource(box) {
    return `${box.dataset.pipeline}.${box.dataset.phase}.${box.dataset.step}`;
  }
  // -- the step's output (its first rows, columns, counts), rendered by the server ------------------
  function showOutput(box) {
    const query = new URLSearchParams({ pipeline: box.dataset.pipeline, step: `${box.dataset.phase}.${box.dataset.step}` });
    htmx.ajax("GET", `${root.dataset.outputUrl}?${query}`, { target: "#step-output", swap: "innerHTML" });
  }
  document.addEventListener("click", (event) => {
    const box = event.target.closest(".run-step");
    if (box) {
      filterLog(logFilter === stepSource(box) ? null : stepSource(box));
      showOutput(box);
    }
  });
  document.addEventListener("keydown", (event) => {
    const box = event.target.closest && event.target.closest(".run-step");
    if (box && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      box.click();
    }
  });
  document.getElementById("log-show-all").addEventListener("click", () => filterLog(null));

  function skipQueued(pipeline) {
    steps.forEach((el) => {
      if (el.dataset.state === "queued" && (pipeline === null || el.dataset.pipeline === pipeline)) setState(el, "skipped");
    });
    if (pipeline === null) pipelines.forEach((el) => { if (el && el.dataset.state === "queued") setState(el, "skipped"); });
  }

  function apply(ev) {
    switch (ev.kind) {
      case "run_started":
        setRunState("running", "");
        steps.forEach((el) => setState(el, "queued"));
        pipelines.forEach((el) => setState(el, "queued"));
        timings.clear();
        break;
      case "run_finished":
        setRunState(ev.status, ev.error || "");
        text(document, "#run-duration", secs(ev.duration));
        skipQueued(null); // what never started was skipped (as the server stores it)
        break;
      case "pipeline_started":
        setState(pipelines.get(ev.pipeline), "running");
        break;
      case "pipeline_finished": {
        const el = pipelines.get(ev.pipeline);
        setState(el, ev.status);
        skipQueued(ev.pipeline); // its steps after a failure never start
        text(el, ".pl-duration", secs(ev.duration));
        showError(el && el.querySelector(".pl-error"), ev.error);
        break;
      }
      case "step_started": {
        const el = stepEl(ev);
        setState(el, "running");
        if (el) { text(el, ".step-plugin", ev.plugin); showError(el.querySelector(".step-error"), ""); }
        timings.set(key(ev.pipeline, ev.phase, ev.step), { label: `${ev.pipeline} · ${ev.step}`, start: ev.ts, end: null, state: "running" });
        break;
      }
      case "step_progress": {
        const el = stepEl(ev);
        if (!el) break;
        text(el, ".step-rows", `${ev.rows} rows${ev.total ? " of " + ev.total : ""}`);
        const bar = el.querySelector(".progress");
        if (ev.total) { bar.hidden = false; bar.firstElementChild.style.width = `${Math.min(100, (100 * ev.rows) / ev.total)}%`; }
        break;
      }
      case "step_log":
        log(ev);
        break;
      case "step_finished": {
        const el = stepEl(ev);
        setState(el, ev.status);
        if (el) {
          const rows = [ev.rows_in != null ? `${ev.rows_in} in` : "", ev.rows_out != null ? `${ev.rows_out} out` : ""].filter(Boolean).join(" · ");
          text(el, ".step-rows", rows);
          text(el, ".step-duration", secs(ev.duration));
          showError(el.querySelector(".step-error"), ev.error);
          const bar = el.querySelector(".progress");
          if (!bar.hidden) bar.firstElementChild.style.width = "100%";
        }
        const t = timings.get(key(ev.pipeline, ev.phase, ev.step)) || { label: `${ev.pipeline} · ${ev.step}`, start: ev.ts - (ev.duration || 0) };
        t.end = ev.ts; t.state = ev.status;
        timings.set(key(ev.pipeline, ev.phase, ev.step), t);
        break;
      }
      default:
        break;
    }
    if (ev.kind.startsWith("step_") && ev.kind !== "step_log") scheduleGantt();
  }

  // -- timeline -------------------------------------------------------------------------------
  let ganttPending = false;
  function scheduleGantt() {
    if (ganttPending) return;
    ganttPending = true;
    requestAnimationFrame(() => { ganttPending = false; drawGantt(); });
  }
  // A step from 1 ms to 1 day: ticks of 1, 2 or 5 x 10^n seconds, at most ~8 across.
  function tickStep(span) {
    for (let unit = 0.001; ; unit *= 10) {
      for (const m of [1, 2, 5]) if (span / (unit * m) <= 8) return unit * m;
    }
  }
  function fmtSeconds(s, step) {
    if (step >= 60) return `${Math.round(s / 60)} min`;
    const digits = step >= 1 ? 0 : step >= 0.1 ? 1 : step >= 0.01 ? 2 : 3;
    return `${s.toFixed(digits)} s`;
  }
  function drawGantt() {
    const svg = document.getElementById("gantt");
    const items = [...timings.values()];
    if (!items.length) { svg.innerHTML = ""; return; }
    const now = Date.now() / 1000;
    const t0 = Math.min(...items.map((t) => t.start));
    const t1 = Math.max(...items.map((t) => t.end || now), t0 + 0.001);
    const width = svg.clientWidth || 800, label = 220, row = 18, axis = 18;
    const scale = (width - label - 10) / (t1 - t0);
    const bottom = items.length * row + 4;
    svg.setAttribute("height", String(bottom + axis));
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const step = tickStep(t1 - t0);
    for (let s = 0; s <= t1 - t0 + 1e-9; s += step) { // the time axis: a light line and a label per tick
      const x = label + s * scale;
      const line = document.createElementNS(ns, "line");
      line.setAttribute("x1", String(x)); line.setAttribute("x2", String(x));
      line.setAttribute("y1", "0"); line.setAttribute("y2", String(bottom));
      line.setAttribute("class", "gantt-tick");
      const text = document.createElementNS(ns, "text");
      text.setAttribute("x", String(x)); text.setAttribute("y", String(bottom + 13));
      text.setAttribute("class", "gantt-tick-label");
      text.textContent = fmtSeconds(s, step);
      svg.append(line, text);
    }
    items.forEach((t, i) => {
      const y = i * row + 2;
      const name = document.createElementNS(ns, "text");
      name.setAttribute("x", "0"); name.setAttribute("y", String(y + 12)); name.textContent = t.label;
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", String(label + (t.start - t0) * scale));
      bar.setAttribute("y", String(y));
      bar.setAttribute("width", String(Math.max(2, ((t.end || now) - t.start) * scale)));
      bar.setAttribute("height", String(row - 4));
      bar.setAttribute("class", "gantt-bar state-" + t.state);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${t.label}: ${((t.end || now) - t.start).toFixed(2)} s (${t.state})`;
      bar.appendChild(title);
      svg.append(name, bar);
    });
  }

  setInterval(() => { if (root.dataset.state === "running") scheduleGantt(); }, 1000);
  const live = window.pipedeckRunSocket(Number(runId), {
    eventsUrl,
    onEvent(ev) { apply(ev); root.dataset.lastSeq = String(ev.seq); },
    onLive(connected) { root.dataset.connected = connected ? "1" : "0"; },
    onSynced() { root.dataset.synced = "1"; },
    onPaused(paused) {
      root.dataset.paused = paused ? "1" : "0";
      const notice = document.getElementById("live-paused");
      if (notice) notice.hidden = !paused;
    },
  });
  window.pipedeckRun = live; // receive(events), drop(), lastSeq: for tests and the console
})();
