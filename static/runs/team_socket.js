// The team's runs websocket, shared by the runs dashboard and the editor: calls onRun(run) for every
// {type: "run", run} message and onLive(true | false) as it opens and closes; it reconnects by itself
// (250 ms, doubling up to 5 s), except after a 4403 close (not allowed).
window.pipedeckTeamRuns = function (team, onRun, onLive) {
  "use strict";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let retryMs = 250;
  function connect() {
    const socket = new WebSocket(`${scheme}://${location.host}/ws/teams/${team}/runs/`);
    socket.onopen = () => { retryMs = 250; onLive(true); };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "run") onRun(data.run);
    };
    socket.onclose = (event) => {
      onLive(false);
      if (event.code === 4403) return;
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }
  connect();
};
