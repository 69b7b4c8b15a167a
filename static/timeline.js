// The timeline under a readout: when each message arrived, kept after the
// stream has ended, so that a page whose messages came one by one and one
// whose messages all came at once look different after the fact (a notebook
// run top to bottom is looked at only once everything is Done).
//
// Times are milliseconds from the page's navigation start (performance.now()),
// or from the last reset() on a page that reads more than one stream (the
// streamed answer: from its Send).
// The record is exposed on #timeline as data attributes, which the browser
// tests and the notebooks' front-end checks read:
//   data-count       messages (or, on the picture page, frames seen)
//   data-arrivals    the moments they arrived at: as many as the messages
//                    when they come one by one, fewer when they come in jumps
//   data-first       ms to the first one        (absent before it)
//   data-spread      ms from the first to the last one (absent before it)
//   data-reconnects  how many times the stream came back after a drop
//   data-gap         ms, the longest wait at a reconnect: from the last
//                    message before the drop to the first one after it
//   data-repeated    messages after a reconnect that the page had already
//                    seen (the same SSE id or message number, or on the
//                    WebSocket page, which has neither, the same text)
// and drawn as a strip of ticks from the page's start to the last arrival,
// with a sentence beside it.
//
// The script pages call arrived() through readout.js and drop() when their
// connection drops. The pages without a script of ours (the iframe's
// streamed document, htmx, the MJPEG picture) get an observer instead, chosen
// by #timeline's data-watch: it watches the readout, never the stream.
const timeline = {
  element: document.getElementById("timeline"),
  // the strip is BINS bins wide; a bin's width doubles whenever an arrival
  // comes after the last one, so the record stays this small however long
  // the stream runs (a page may read 100,000 messages)
  BINS: 120,
  binMs: 10,
  bins: new Array(120).fill(0),
  count: 0,
  arrivals: 0,
  first: null,
  last: null,
  what: "messages",
  // reconnects: set by drop(), settled by the first arrival after it
  dropped: false,
  droppedAt: null,
  reconnects: 0,
  gap: 0,
  reconnectedAt: 0,  // the number of the first message after the longest gap
  gaps: [],  // [from, to] of each reconnect's wait, for the drawing (at most 20)
  repeated: 0,
  // what the page has seen, to tell a repeat: the highest id when ids are
  // numbers in order (SSE's, htmx's), else the latest texts (a bounded set)
  byText: false,  // the WebSocket page sets it: its messages have no ids
  highest: null,
  texts: new Set(),
  TEXTS_KEPT: 1000,
  drawing: null,
  origin: 0,

  // n messages arrived now; ids: their ids, in order (or null); texts: their
  // texts, when the page compares texts (byText)
  arrived(n, ids = null, texts = null) {
    if (n <= 0) return;
    const now = performance.now() - this.origin;
    if (this.first === null) this.first = now;
    if (this.dropped) this.reconnected(now);
    for (let k = 0; k < n; k++) {
      const id = ids ? ids[k] : undefined;
      if (id !== undefined && id !== null && id !== "") this.sawId(id);
      else if (texts) this.sawText(texts[k]);
    }
    this.count += n;
    this.arrivals += 1;
    this.last = now;
    this.bin(now, n);
    this.publish();
  },

  // the connection dropped: the next arrival is a reconnect. EventSource
  // reports every failed attempt, so only the first one counts
  drop() {
    if (this.dropped) return;
    this.dropped = true;
    this.droppedAt = performance.now() - this.origin;
  },

  // a new record from now on: a page's next stream
  reset() {
    if (this.drawing !== null) clearTimeout(this.drawing);
    Object.assign(this, {
      binMs: 10, bins: new Array(this.BINS).fill(0), count: 0, arrivals: 0, first: null,
      last: null, dropped: false, droppedAt: null, reconnects: 0, gap: 0,
      reconnectedAt: 0, gaps: [], repeated: 0, highest: null, texts: new Set(),
      drawing: null, origin: performance.now(),
    });
    if (!this.element) return;
    for (const name of ["first", "spread"]) delete this.element.dataset[name];
    this.element.replaceChildren();
    this.publish();
  },

  reconnected(now) {
    this.dropped = false;
    this.reconnects += 1;
    const from = this.last ?? this.droppedAt;
    if (now - from >= this.gap) {
      this.gap = now - from;
      this.reconnectedAt = this.count + 1;
    }
    if (this.gaps.length < 20) this.gaps.push([from, now]);
  },

  sawId(id) {
    // SSE ids are numbers, a feed's are Redis entry ids ("1700000000000-3"):
    // both in order, so anything not past the highest was seen before
    const key = String(id).split("-").map(Number);
    if (key.some(Number.isNaN)) {
      this.sawText(`id ${id}`);
      return;
    }
    if (this.highest && compare(key, this.highest) <= 0) {
      if (this.reconnects) this.repeated += 1;
    } else {
      this.highest = key;
    }
  },

  sawText(text) {
    // a text may come twice in a stream on purpose: only one that comes
    // back after a reconnect counts as repeated
    if (this.texts.has(text)) {
      if (this.reconnects) this.repeated += 1;
      this.texts.delete(text);  // to the newest end again
    }
    this.texts.add(text);
    if (this.texts.size > this.TEXTS_KEPT) {
      this.texts.delete(this.texts.values().next().value);
    }
  },

  bin(now, n) {
    while (now >= this.BINS * this.binMs) {
      // twice as wide: each new bin holds two old ones
      for (let k = 0; k < this.BINS; k++) {
        this.bins[k] = k < this.BINS / 2 ? this.bins[2 * k] + this.bins[2 * k + 1] : 0;
      }
      this.binMs *= 2;
    }
    this.bins[Math.floor(now / this.binMs)] += n;
  },

  // the attributes at once (a test may read them the moment a count shows);
  // the drawing at most every 0.1 s, on a timer rather than an animation
  // frame, which a frame out of view never gets
  publish() {
    const data = this.element && this.element.dataset;
    if (!data) return;
    data.count = this.count;
    data.arrivals = this.arrivals;
    if (this.first !== null) {
      data.first = Math.round(this.first);
      data.spread = Math.round(this.last - this.first);
    }
    data.reconnects = this.reconnects;
    data.gap = Math.round(this.gap);
    data.repeated = this.repeated;
    if (this.drawing === null) {
      this.drawing = setTimeout(() => this.draw(), 100);
    }
  },

  // the stream ended: draw the last state now
  ended() {
    if (this.drawing !== null) clearTimeout(this.drawing);
    this.draw();
  },

  draw() {
    this.drawing = null;
    if (!this.element || this.first === null) return;
    const svgNS = "http://www.w3.org/2000/svg";
    // the strip runs from the page's start to the last arrival
    const end = Math.max(this.last, 1);
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("viewBox", `0 0 ${end} 10`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    for (const [from, to] of this.gaps) {
      const wait = document.createElementNS(svgNS, "rect");
      wait.setAttribute("class", "gap");
      wait.setAttribute("x", from);
      wait.setAttribute("width", Math.max(to - from, end / 300));
      wait.setAttribute("y", 0);
      wait.setAttribute("height", 10);
      svg.append(wait);
    }
    const most = Math.max(...this.bins);
    this.bins.forEach((n, k) => {
      if (!n) return;
      // a tick per bin, taller the more arrived in it: one tall tick is a
      // burst, a row of short ones a message at a time
      const height = 3 + 7 * Math.sqrt(n / most);
      const tick = document.createElementNS(svgNS, "rect");
      tick.setAttribute("class", "tick");
      tick.setAttribute("x", Math.min(k * this.binMs, end - end / 200));
      tick.setAttribute("width", Math.max(this.binMs, end / 200));
      tick.setAttribute("y", 10 - height);
      tick.setAttribute("height", height);
      svg.append(tick);
    });
    const text = document.createElement("span");
    text.textContent = this.sentence();
    this.element.replaceChildren(svg, text);
  },

  sentence() {
    let text = `${this.count} ${this.what}: first after ${seconds(this.first)}, ` +
      `spread ${seconds(this.last - this.first)}`;
    if (this.reconnects) {
      text += `; reconnected after ${seconds(this.gap)} at message ` +
        `${this.reconnectedAt}, ${this.repeated} repeated`;
      if (this.reconnects > 1) text += ` (${this.reconnects} reconnects)`;
    }
    return text;
  },

  // htmx's page: its log grows by a .message per message, and #count says
  // the number of the last one (ids number messages from 0)
  watchLog() {
    const log = document.getElementById("output");
    const count = document.getElementById("count");
    new MutationObserver((records) => {
      const n = added(records, (node) => node.classList.contains("message"));
      if (!n) return;
      const shown = Number(count.textContent);
      const ids = Array.from({ length: n }, (_, k) => shown - n + k);
      this.arrived(n, ids);
    }).observe(log, { childList: true });
    // htmx's EventSource lost its connection and is trying again
    document.addEventListener("htmx:sseError", () => this.drop());
    // the end event (Done, Error) or Stop ends the readout in #latest
    const latest = document.getElementById("latest");
    new MutationObserver(() => {
      if (/^(Done|Stopped|Error:)/.test(latest.textContent)) this.ended();
    }).observe(latest, { childList: true, subtree: true });
  },

  // the iframe's page: the streamed document grows by a .message per
  // message inside the frame. The frame's document appears with the stream's
  // first bytes and no event says so: look for it every 10 ms until then
  // (the first arrival may be timed up to 10 ms late), then observe it
  watchFrame() {
    const frame = document.getElementById("stream");
    let observer = null;
    const look = () => {
      let doc = null;
      try {
        doc = frame.contentDocument;
      } catch (error) {
        // another origin's document: nothing to observe
      }
      const log = doc && doc.getElementById("output");
      if (!log || observer) return;
      clearInterval(looking);
      if (log.childElementCount) this.arrived(log.childElementCount);
      observer = new MutationObserver((records) => this.arrived(added(records)));
      observer.observe(log, { childList: true });
    };
    const looking = setInterval(look, 10);
    frame.addEventListener("load", () => {
      look();  // a document that came whole, at once
      clearInterval(looking);
      if (observer) {
        this.arrived(added(observer.takeRecords()));
        observer.disconnect();
      }
      this.ended();
    });
  },

  // the MJPEG page: the browser gives no event per frame (only a load for
  // the first), so look at the picture every 0.1 s, shrunk to a few thousand
  // pixels, and count it as a new frame when they changed. Frames that come
  // closer together than that are counted as one: the count is of frames
  // seen, not of messages
  watchPicture() {
    this.what = "frames seen (looked at every 0.1 s)";
    const img = document.getElementById("stream");
    const canvas = document.createElement("canvas");
    canvas.width = 96;
    canvas.height = 72;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    let previous = null;
    const look = () => {
      if (!img.naturalWidth) return;
      context.drawImage(img, 0, 0, canvas.width, canvas.height);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let hash = 2166136261;  // FNV-1a
      for (let k = 0; k < pixels.length; k++) hash = Math.imul(hash ^ pixels[k], 16777619);
      if (hash !== previous) {
        previous = hash;
        this.arrived(1);
      }
    };
    const looking = setInterval(look, 100);
    img.addEventListener("error", () => clearInterval(looking));
  },
};

// how many elements the mutation records added (that pass ``which``)
function added(records, which = () => true) {
  let n = 0;
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType === Node.ELEMENT_NODE && which(node)) n += 1;
    }
  }
  return n;
}

// compare two keys of numbers, part by part
function compare(a, b) {
  for (let k = 0; k < Math.max(a.length, b.length); k++) {
    const d = (a[k] || 0) - (b[k] || 0);
    if (d) return d;
  }
  return 0;
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(2)} s`;
}

timeline.publish();
// a page without a script of ours says what to watch
const watching = timeline.element && timeline.element.dataset.watch;
if (watching === "log") timeline.watchLog();
else if (watching === "frame") timeline.watchFrame();
else if (watching === "picture") timeline.watchPicture();
