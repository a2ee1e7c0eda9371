// The team's runs websocket, shared by the runs dashboard and the editor: calls onRun(run, html) for every
// {type: "run", run, html} message (``run``: its summary; ``html``: its dashboard row, rendered by the
// server) and onLive(open, reopened) as it opens and closes. It reconnects by itself (250 ms, doubling up
// to 5 s), except after a 4403 close (not allowed); `reopened` tells a page it may have missed messages.
// onPaused(paused) follows the server's channel layer: down (no live rows) or back (missed rows: reload).
window.pipedeckTeamRuns = function (team, onRun, onLive, onPaused) {
  "use strict";
  onPaused = onPaused || function () {};
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let retryMs = 250, opened = false;
  function connect() {
    const socket = new WebSocket(`${scheme}://${location.host}/ws/teams/${team}/runs/`);
    socket.onopen = () => { retryMs = 250; onLive(true, opened); opened = true; };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "run") onRun(data.run, data.html);
      else if (data.type === "paused") onPaused(true);
      else if (data.type === "resumed") onPaused(false);
    };
    socket.onclose = (event) => {
      onLive(false, opened);
      if (event.code === 4403) return;
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }
  connect();
};
