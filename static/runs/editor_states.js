// Editor: each step's badge follows the latest run of this pipeline live. The team's runs socket says
// when a run of it is queued or starts; the page then follows that run through run_socket.js (history,
// then live events, across dropped sockets) and sets each step's badge from step_started / step_finished.
(function () {
  "use strict";
  const root = document.getElementById("run-states");
  if (!root) return;
  const { team, project, pipeline, eventsUrl } = root.dataset;
  let following = null, runSocket = null;

  function cards(phase, stepId) {
    const id = CSS.escape(stepId);
    const exact = document.querySelectorAll(`.step[data-phase="${CSS.escape(phase)}"][data-id="${id}"]`);
    return exact.length ? exact : document.querySelectorAll(`.step[data-id="${id}"]`);
  }

  function setBadge(card, state, title) {
    const button = card.querySelector(".step-open");
    if (!button) return;
    let badge = button.querySelector("[data-step-state]");
    if (!badge) {
      badge = document.createElement("span");
      (button.querySelector(".step-plugin") || button.lastElementChild).after(badge);
    }
    badge.className = `run-state run-state-${state}`;
    badge.dataset.stepState = state;
    badge.textContent = state;
    badge.title = title;
  }

  function apply(runId, ev) {
    if (ev.pipeline !== pipeline || !ev.step) return;
    if (ev.kind === "step_started") {
      for (const card of cards(ev.phase, ev.step)) setBadge(card, "running", `Run #${runId}: running`);
    } else if (ev.kind === "step_finished") {
      const title = `Run #${runId}: ${ev.status}` + (ev.duration != null ? ` in ${ev.duration.toFixed(2)} s` : "")
        + (ev.error ? ` — ${ev.error}` : "");
      for (const card of cards(ev.phase, ev.step)) setBadge(card, ev.status, title);
    }
  }

  function follow(runId) {
    if (following === runId) return;
    following = runId;
    if (runSocket) runSocket.close();
    // Every step starts queued; the run's history (replayed first) then live events set the rest.
    for (const card of document.querySelectorAll(".step[data-id]")) setBadge(card, "queued", `Run #${runId}: queued`);
    root.dataset.following = String(runId);
    const socket = window.pipedeckRunSocket(runId, {
      eventsUrl: eventsUrl.replace(/\/0\/events\/$/, `/${runId}/events/`),
      onEvent(ev) {
        if (ev.kind === "run_finished" || (ev.kind === "pipeline_finished" && ev.pipeline === pipeline)) {
          // steps that never started (after a failure) were skipped
          for (const badge of document.querySelectorAll('.step [data-step-state="queued"]')) {
            badge.className = "run-state run-state-skipped";
            badge.dataset.stepState = "skipped";
            badge.textContent = "skipped";
            badge.title = `Run #${runId}: skipped`;
          }
        }
        if (ev.kind === "run_finished") { socket.close(); root.dataset.following = ""; } else apply(runId, ev);
      },
    });
    runSocket = socket;
  }

  window.pipedeckTeamRuns(team, (run) => {
    if (run.project_slug !== project || !(run.pipelines || []).includes(pipeline)) return;
    if (run.state === "queued" || run.state === "running") follow(run.id);
  }, (live) => { root.dataset.live = live ? "1" : "0"; });
  if (root.dataset.activeRun) follow(Number(root.dataset.activeRun)); // a run of it was already going
})();
