// Editor: the other editors of this pipeline, live. The pipeline's socket (editor/consumers.py) says when
// its draft changed ("changed": revision, who, what) and who else has it open ("presence"). A change from
// another tab refreshes the lanes and the status (the server says what changed) and the open step form
// (unless it holds typed values); the YAML tab follows unless it holds unapplied text. Reconnects by itself.
(function () {
  "use strict";
  const presence = document.getElementById("presence");
  const editor = window.pipedeckEditor;
  if (!presence || !editor) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let retryMs = 250;

  function current() { return Number(editor.revision() || 0); }

  function refresh() {
    htmx.ajax("GET", `${editor.base}canvas/?since=${current()}`, { target: "#canvas", swap: "outerHTML" })
      .then(function () {
        if (window.pipedeckYaml) window.pipedeckYaml.refreshIfClean();
      });
  }

  function showPresence(users) {
    presence.hidden = users.length === 0;
    presence.querySelector(".presence-names").textContent = users.join(", ");
    presence.dataset.users = users.join(",");
  }

  function connect() {
    const socket = new WebSocket(`${scheme}://${location.host}${presence.dataset.socket}?client=${editor.client}`);
    socket.onopen = function () { retryMs = 250; presence.dataset.live = "1"; };
    socket.onmessage = function (message) {
      const data = JSON.parse(message.data);
      if (data.type === "presence") showPresence(data.users);
      else if ((data.type === "changed" || data.type === "hello") && data.client !== editor.client && data.revision > current()) refresh();
    };
    socket.onclose = function (event) {
      presence.dataset.live = "0";
      if (event.code === 4403) return;
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }
  connect();
})();
