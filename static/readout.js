// The readout, shared by the script techniques: show() a message's text,
// then done() when the stream ends, stopped() when the reader pressed Stop,
// or fail() if it broke off or sent something it cannot read. Each arrival
// goes on the page's timeline too (timeline.js, loaded before this).
const readout = {
  latest: document.getElementById("latest"),
  count: document.getElementById("count"),
  output: document.getElementById("output"),
  stop: document.getElementById("stop"),
  keep: Number(document.body.dataset.keep) || 1000,  // the log shows the newest this many
  received: 0,
  pending: [],
  pendingIds: [],
  ended: false,
  // id: the message's id where the stream has one (SSE), so the timeline
  // can tell a message that comes again after a reconnect
  show(text, id) {
    if (this.ended) return;
    // messages that arrive in one go are drawn in one DOM update, at the
    // end of the task that read them
    this.pending.push(text);
    if (id !== undefined) this.pendingIds.push(id);
    if (this.pending.length === 1) queueMicrotask(() => this.flush());
  },
  flush() {
    if (this.pending.length === 0) return;
    const items = document.createDocumentFragment();
    // keep at most `keep` of them: older ones would only be removed again
    for (const text of this.pending.slice(-this.keep)) {
      const item = document.createElement("li");
      item.className = "message";
      // textContent, never innerHTML: a message is shown, not run
      item.textContent = text;
      items.append(item);
    }
    this.received += this.pending.length;
    timeline.arrived(
      this.pending.length,
      this.pendingIds.length ? this.pendingIds : null,
      timeline.byText ? this.pending : null,
    );
    this.pendingIds = [];
    this.latest.textContent = this.pending[this.pending.length - 1];
    this.count.textContent = this.received;
    this.pending = [];
    this.output.append(items);
    while (this.output.childElementCount > this.keep) {
      this.output.firstElementChild.remove();
    }
  },
  showLine(line) {
    // one JSON value a line: a string is shown as it is, anything else as
    // the JSON text it came as. A line that is not JSON ends the readout
    // with an error, and false tells the reader to stop reading.
    let message;
    try {
      message = JSON.parse(line);
    } catch (error) {
      this.fail(`a line that is not JSON: ${shorten(line)}`);
      return false;
    }
    this.show(typeof message === "string" ? message : line);
    return true;
  },
  end(text) {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    timeline.ended();
    this.latest.textContent = text;
    this.stop.disabled = true;
  },
  done() { this.end("Done"); },
  stopped() { this.end("Stopped"); },
  fail(why) { this.end(`Error: ${why}`); },
  failStatus(status, type, body) {
    // an error status: the app's own errors are one line of plain text, worth
    // showing; a proxy's are whole HTML pages (jupyter-server-proxy answers
    // 599 when a stream it collects breaks off or runs past 300 s)
    const line = (body || "").trim().split("\n")[0];
    const plain = (type || "").startsWith("text/plain") && line;
    this.fail(`HTTP ${status}` + (plain ? `: ${shorten(line, 200)}` : ""));
  },
  brokeOff(rest) {
    this.fail(`the stream broke off mid-line: ${shorten(rest)}`);
  },
  onStop(callback) {
    this.stop.addEventListener("click", () => {
      callback();
      this.stopped();
    });
  },
};

// a piece of text short enough for the readout
function shorten(text, most = 60) {
  return text.length > most ? `${text.slice(0, most)}…` : text;
}
