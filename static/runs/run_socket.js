// One run's events, live, for every page that follows a run (the run page, the editor's step badges).
//
// pipedeckRunSocket(runId, {eventsUrl, onEvent, onLive, onSynced, onPaused}) connects to
// /ws/runs/<id>/?after=<seq>;
// the server replays the stored events after that seq, says "synced", then sends live batches. Events carry
// a gapless `seq` (1, 2, 3... per run), so each reaches onEvent exactly once and in order:
//   - a duplicate (seq already seen: a replay overlapping live messages) is skipped;
//   - a gap (a message lost) holds what came after it and fetches the missing ones from `eventsUrl`
//     (?after=<last seq>), then goes on;
//   - a dropped socket reconnects by itself (250 ms, doubling up to 5 s, with jitter) with ?after=<last
//     seq>, so nothing is missed and nothing repeats. A 4403 close (not allowed) or close() ends it.
// onPaused(true) when the server's channel layer is down (it then sends what is stored every few seconds),
// onPaused(false) when it is back and the server has caught up.
// The handle: receive(events) (what a socket message does), drop(pauseMs) (cut the connection as a network
// fault would; tests use it), close(), lastSeq. Every open handle is in window.pipedeckRunSockets.
(function () {
  "use strict";
  const FORBIDDEN = 4403;
  const FIRST_RETRY_MS = 250, MAX_RETRY_MS = 5000;
  const open = new Set();
  window.pipedeckRunSockets = open;

  window.pipedeckRunSocket = function (runId, options) {
    const { eventsUrl, onEvent } = options;
    const onLive = options.onLive || function () {};
    const onSynced = options.onSynced || function () {};
    const onPaused = options.onPaused || function () {};
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let lastSeq = 0, syncing = false, held = [], socket = null, retryMs = FIRST_RETRY_MS;
    let closed = false, timer = null;

    function receive(events, afterResync = false) {
      if (syncing) { held.push(...events); return; }
      for (let i = 0; i < events.length; i++) {
        const ev = events[i];
        if (ev.seq <= lastSeq) continue; // a duplicate
        if (ev.seq > lastSeq + 1 && !afterResync) { // a gap: fetch what is missing, then these
          held.push(...events.slice(i));
          resync();
          return;
        }
        lastSeq = ev.seq;
        onEvent(ev);
        if (closed) return; // onEvent may close the handle (the run finished)
      }
    }

    async function resync() {
      syncing = true;
      try {
        for (;;) {
          const response = await fetch(`${eventsUrl}?after=${lastSeq}`, { headers: { Accept: "application/json" } });
          if (!response.ok) break;
          const data = await response.json();
          for (const ev of data.events) {
            if (ev.seq !== lastSeq + 1) continue;
            lastSeq = ev.seq;
            onEvent(ev);
          }
          if (!data.more) break;
        }
      } catch (err) {
        console.warn("run events re-sync failed", err);
      } finally {
        syncing = false;
        const pending = held.sort((a, b) => a.seq - b.seq);
        held = [];
        receive(pending, true); // the server has nothing older: never loop on a gap it cannot fill
      }
    }

    function connect() {
      timer = null;
      if (closed) return;
      const ws = new WebSocket(`${scheme}://${location.host}/ws/runs/${runId}/?after=${lastSeq}`);
      socket = ws;
      ws.onopen = () => { retryMs = FIRST_RETRY_MS; onPaused(false); onLive(true); };
      ws.onmessage = (message) => {
        const data = JSON.parse(message.data);
        if (data.type === "events") receive(data.events);
        else if (data.type === "synced") onSynced(data.last_seq);
        else if (data.type === "paused") onPaused(true);
        else if (data.type === "resumed") onPaused(false);
      };
      ws.onclose = (event) => {
        if (socket !== ws) return; // replaced by drop() or close()
        socket = null;
        onLive(false);
        if (closed || event.code === FORBIDDEN) { open.delete(handle); return; }
        reconnectIn(retryMs * (0.8 + 0.4 * Math.random()));
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      };
    }

    function reconnectIn(ms) {
      clearTimeout(timer);
      timer = setTimeout(connect, ms);
    }

    function cut() {
      const ws = socket;
      socket = null;
      if (ws) { ws.onmessage = null; ws.close(); onLive(false); }
    }

    const handle = {
      receive,
      /** Cut the connection as a network fault would; reconnect (with replay) after `pauseMs`. */
      drop(pauseMs = 0) { if (!closed) { cut(); reconnectIn(pauseMs); } },
      /** Stop following the run: close, and never reconnect. */
      close() { closed = true; clearTimeout(timer); cut(); open.delete(handle); },
      get lastSeq() { return lastSeq; },
      get connected() { return socket !== null && socket.readyState === WebSocket.OPEN; },
      runId,
    };
    open.add(handle);
    connect();
    return handle;
  };
})();
