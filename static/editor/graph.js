// Project page: the pipelines' `needs` graph drawn with Cytoscape.js + dagre (left to right: upstream first).
// The server-rendered SVG stays as the fallback when scripts do not run.
(function () {
  "use strict";

  function draw() {
    const container = document.getElementById("cy");
    const source = document.getElementById("graph-data");
    if (!container || !source || !window.cytoscape || container.dataset.drawn === "1") return;
    const data = JSON.parse(source.textContent);
    if (window.pipedeckGraph && !document.body.contains(window.pipedeckGraph.container())) {
      window.pipedeckGraph.destroy();  // its section was swapped out by htmx
    }
    const elements = data.nodes.map(function (n) {
      return { data: { id: n.id, label: n.id + "\n" + n.type, url: n.url, valid: n.valid ? "yes" : "no" } };
    }).concat(data.edges.map(function (e) {
      return { data: { id: e.source + "->" + e.target, source: e.source, target: e.target } };
    }));
    container.hidden = false;
    container.style.height = Math.max(220, 70 * Math.min(data.nodes.length, 8)) + "px";
    const cy = window.cytoscape({
      container: container,
      elements: elements,
      layout: { name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 80 },
      maxZoom: 1.1,
      userZoomingEnabled: false,
      style: [
        { selector: "node", style: {
          "shape": "round-rectangle", "width": 160, "height": 46, "background-color": "#fff",
          "border-width": 2, "border-color": "#8aa4d6", "label": "data(label)", "text-wrap": "wrap",
          "text-valign": "center", "font-size": 12, "color": "#1d2330" } },
        { selector: "node[valid = 'no']", style: { "border-color": "#c0392b" } },
        { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 2,
          "line-color": "#8a94a6", "target-arrow-color": "#8a94a6" } },
      ],
    });
    cy.on("tap", "node", function (evt) { window.location.href = evt.target.data("url"); });
    container.dataset.drawn = "1";
    const svg = document.querySelector(".graph-svg");
    if (svg) svg.hidden = true;
    window.pipedeckGraph = cy;  // for tests and the console: pipedeckGraph.edges().length
  }

  document.addEventListener("DOMContentLoaded", draw);
  if (window.htmx) htmx.onLoad(draw);
  document.addEventListener("htmx:load", draw);
})();
