// Reading a streamed response a line at a time, for every page that does:
// a fetch() body (fetch, the streamed answer, the connections page) and an
// XMLHttpRequest's growing responseText (xhr, the classic page, the probe);
// and the text of a WebSocket's binary message.
// One copy, so the pages cannot drift apart in how they split a stream.
// Plain script, no modules: a page loads it with a <script> tag, as it is.
const lines = {
  // behind jupyter-server-proxy (JupyterHub, Binder) a response comes as it
  // is sent only to a request whose Accept is exactly text/event-stream; the
  // server answers NDJSON all the same. The view decides (accept_sse, on by
  // default under a path prefix) and base.html tells this script.
  headers: document.body.dataset.acceptSse ? { Accept: "text/event-stream" } : {},

  // the same choice for an XMLHttpRequest, between its open() and send()
  setHeaders(xhr) {
    for (const [name, value] of Object.entries(this.headers)) {
      xhr.setRequestHeader(name, value);
    }
  },

  // Calls onText(text) with each piece of a fetch() Response's body as it
  // arrives, decoded. onText returns false (or throws) to read no more: the
  // body is cancelled, which ends the request, so the server stops too.
  // Resolves to true once the body has ended, false if onText stopped it.
  // Aborting the fetch with the caller's AbortController rejects it with the
  // AbortError.
  async eachChunk(response, onText) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return true;
        if (onText(value) === false) return false;
      }
    } finally {
      // stopped early, by onText or by an error: end the request too, so
      // the server stops. A body that ended or was aborted ignores it
      reader.cancel().catch(() => {});
    }
  },

  // Calls onLine(line) with each complete line of a fetch() Response's body,
  // without its newline, as soon as the line is whole. onLine returns false
  // to read no more (then this resolves to null). Otherwise it resolves to
  // the text after the last newline: "" when the body ended with one, else
  // half a line, which each page judges for itself.
  async eachLine(response, onLine) {
    let unfinished = "";  // text after the last newline: half a line
    const ended = await this.eachChunk(response, (text) => {
      const found = (unfinished + text).split("\n");
      unfinished = found.pop();
      for (const line of found) {
        if (onLine(line) === false) return false;
      }
      return true;
    });
    return ended ? unfinished : null;
  },

  // Reads an XMLHttpRequest's new text on each progress event: onLine(line)
  // for each line completed since the last one, without its newline. Only
  // the new text is searched, never the whole responseText again. onLine
  // returns false to read no more. read() reads what has come since (call it
  // on load: the last progress event may come before the last bytes); rest()
  // is the text after the last newline.
  ofXhr(xhr, onLine) {
    let parsed = 0;  // how much of responseText has been read
    let stopped = false;
    function read() {
      const text = xhr.responseText;
      let end;
      while (!stopped && (end = text.indexOf("\n", parsed)) !== -1) {
        const line = text.slice(parsed, end);
        parsed = end + 1;
        if (onLine(line) === false) stopped = true;
      }
    }
    xhr.addEventListener("progress", read);
    return { read, rest: () => xhr.responseText.slice(parsed) };
  },

  // The text of bytes sent as UTF-8, such as a WebSocket's binary message
  decode(bytes) {
    return new TextDecoder().decode(bytes);
  },

  // The classic way, kept to compare: every complete line of the whole
  // responseText so far, split afresh on each call. The text after the last
  // newline is an unfinished line, left for the next call.
  soFar(xhr) {
    return xhr.responseText.split("\n").slice(0, -1);
  },
};
