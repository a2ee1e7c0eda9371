// Runs dashboard: the team's websocket pushes {type: "run", run, html} when a run is queued or changes
// state; `html` is the row the server renders for the page too (runs/_run_row.html), swapped in here.
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

  // Does a new run belong in the list as filtered? (A listed run's row is always replaced.)
  function matches(list, run) {
    const project = list.dataset.filterProject, state = list.dataset.filterState, pipeline = list.dataset.filterPipeline;
    if (state && run.state !== state) return false;
    if (pipeline && !(run.pipelines || []).includes(pipeline)) return false;
    if (project && run.project_slug && run.project_slug !== project) return false;
    return true;
  }

  function row(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function update(run, html) {
    const list = document.getElementById("run-list"), rows = document.getElementById("run-rows");
    if (!list || !rows || !html) return;
    const existing = rows.querySelector(`tr[data-run="${CSS.escape(String(run.id))}"]`);
    if (existing) {
      existing.replaceWith(row(html));
    } else if (matches(list, run)) {
      rows.querySelector("tr.empty")?.remove();
      rows.prepend(row(html));
    }
  }

  // After a dropped connection, the list as the server has it now (messages may have been missed).
  function refresh() {
    htmx.ajax("GET", location.pathname + location.search, { target: "#run-list", swap: "outerHTML" });
  }

  const list = document.getElementById("run-list");
  if (list) {
    window.pipedeckTeamRuns(
      list.dataset.team,
      update,
      (live, reopened) => {
        document.body.dataset.runsLive = live ? "1" : "0";
        if (live && reopened) refresh();
      },
      (paused) => {
        const notice = document.getElementById("live-paused");
        if (notice) notice.hidden = !paused;
        if (!paused) refresh(); // rows that changed while live updates were paused
      },
    );
  }
})();
