// The one server-sent-events stream (/v1/watch) the whole page lives on. Its event ids are
// registry revisions, so the browser's own reconnect resumes where it stopped (Last-Event-ID);
// when the daemon cannot resume (history moved on, or it restarted) it says "resync" and we
// start over from a fresh initial state.
//
// The stream is "live" only once a frame proved it: the initial state completed, or a
// change/progress frame arrived (the page asks for a progress frame every 2 s). An `open`
// alone is not proof: a restarted daemon opens and then says resync.
//
// A fleet relay also sends `coverage` frames (which sources its view covers), first and
// whenever a source's state changes; a daemon never does.

import { watchUrl } from "./api.js";

export class Stream {
  /**
   * @param handlers {initial(nodes, revision), change(event), progress(revision),
   *                  state(kind), refused(), coverage(coverage)}: kind is connecting |
   *                  live | reconnecting | resyncing; refused() when the daemon answered the
   *                  stream with an error (401/403), which EventSource does not retry;
   *                  coverage() for a relay's Coverage (a frame of its own, or a field of
   *                  the initial state).
   */
  constructor(handlers) {
    this.h = handlers;
    this.source = null;
    this.pending = [];
    this.receivingInitial = false;
  }

  connect(fresh) {
    this.close();
    this.h.state(fresh ? "connecting" : "resyncing");
    const source = new EventSource(watchUrl());
    this.source = source;
    this.receivingInitial = false;
    source.addEventListener("initial", (e) => this.onInitial(JSON.parse(e.data)));
    source.addEventListener("change", (e) => {
      this.h.change(JSON.parse(e.data));
      this.h.state("live");
    });
    source.addEventListener("progress", (e) => {
      this.h.progress(JSON.parse(e.data).revision);
      this.h.state("live");
    });
    source.addEventListener("coverage", (e) => this.h.coverage(JSON.parse(e.data)));
    source.addEventListener("resync", () => {
      source.close();
      this.h.state("resyncing");
      setTimeout(() => this.connect(false), 200);
    });
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        this.h.state("reconnecting");
        this.h.refused();
        return;
      }
      // The browser reconnects by itself (retry: 1000), sending Last-Event-ID.
      this.h.state("reconnecting");
    });
  }

  onInitial(msg) {
    // The initial state may come in several frames; the last says complete.
    if (!this.receivingInitial) {
      this.pending = [];
      this.receivingInitial = true;
    }
    for (const node of msg.initialNodes || []) this.pending.push(node);
    if (msg.coverage) this.h.coverage(msg.coverage);
    if (msg.initialStateComplete) {
      this.receivingInitial = false;
      const nodes = this.pending;
      this.pending = [];
      this.h.initial(nodes, msg.revision);
      this.h.state("live");
    }
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
  }
}
