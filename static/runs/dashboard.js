// Runs dashboard: the team's websocket pushes {type: "run", run: {...}} when a run is queued or changes state.
(function () {
  "use strict";

  // "Start a run": the pipeline choice lists the chosen project's pipelines only.
  function limitPipelines() {
    const project = document.getElementById("run-project"), pipeline = document.getElementById("run-pipeline");
    if (!project || !pipeline) return;
    for (const option of pipeline.options) {
      option.hidden = Boolean(option.dataset.project) && option.dataset.project !== project.value;
    }
    if (pipeline.selectedOptions[0]?.hidden) pipeline.value = "";
  }
  document.getElementById("run-project")?.addEventListener("change", limitPipelines);
  limitPipelines();

  function matches(list, run) {
    const project = list.dataset.filterProject, state = list.dataset.filterState, pipeline = list.dataset.filterPipeline;
    if (state && run.state !== state) return false;
    if (pipeline && !(run.pipelines || []).includes(pipeline)) return false;
    if (project && run.project_slug && run.project_slug !== project) return false;
    return true;
  }

  function cell(tr, value, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
    tr.appendChild(td);
  }

  function badge(state) {
    const span = document.createElement("span");
    span.className = "badge state-" + state;
    span.textContent = state;
    return span;
  }

  function render(list, run) {
    const tr = document.createElement("tr");
    tr.dataset.run = run.id;
    tr.dataset.state = run.state;
    const link = document.createElement("a");
    link.href = list.dataset.runUrl.replace(/0\/$/, `${run.id}/`);
    link.textContent = `#${run.id}`;
    cell(tr, link);
    cell(tr, run.project);
    cell(tr, (run.pipelines || []).join(", ") || "all");
    cell(tr, badge(run.state));
    cell(tr, run.created_at ? run.created_at.slice(0, 19).replace("T", " ") : "");
    cell(tr, run.duration != null ? `${run.duration.toFixed(2)} s` : "", "duration");
    return tr;
  }

  function update(run) {
    const list = document.getElementById("run-list");
    if (!list) return;
    const rows = document.getElementById("run-rows");
    const existing = rows.querySelector(`tr[data-run="${run.id}"]`);
    if (existing) {
      existing.replaceWith(render(list, run));
    } else if (matches(list, run)) {
      const empty = rows.querySelector("tr.empty");
      if (empty) empty.remove();
      rows.prepend(render(list, run));
    }
  }

  const list = document.getElementById("run-list");
  if (list) {
    window.pipedeckTeamRuns(list.dataset.team, update, (live) => { document.body.dataset.runsLive = live ? "1" : "0"; });
  }
})();
