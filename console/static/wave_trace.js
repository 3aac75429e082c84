// teleicu console: one live waveform trace, drawn smoothly from the hub's binary chunks through a jitter buffer.
//
// Chunks arrive in bursts and sometimes late. Each sample has its device time; the trace plays samples out at
// (device time + offset + DELAY_MS), where offset is the smallest arrival lag seen lately (device clock to this
// browser's clock, plus the fastest transit). So a chunk that arrives up to DELAY_MS later than the fastest one is
// drawn exactly where and when it belongs, and the sweep never stutters; a chunk later than that fills its place
// behind the sweep when it comes. Missing samples leave a visible gap, never an invented line.

const DELAY_MS = 1000;        // the jitter buffer
const WINDOW_MS = 6000;       // width of the sweep
const ERASE_MS = 250;         // the blank bar ahead of the sweep
const OFFSET_MEMORY_MS = 30_000;  // how long a low lag is remembered (the clocks drift)

/** The message of ingest/wave_feed.py: {lead, t, rate, scale, samples: Int16Array}. */
export function decodeChunk(buf) {
  const view = new DataView(buf);
  if (view.getUint8(0) !== 1) throw new Error("not a version-1 waveform message");
  const nLead = view.getUint8(1);
  const lead = new TextDecoder().decode(new Uint8Array(buf, 2, nLead));
  let o = 2 + nLead;
  const t = view.getFloat64(o, true);
  const rate = view.getUint16(o + 8, true);
  const scale = view.getFloat32(o + 10, true);
  const n = view.getUint32(o + 14, true);
  o += 18;
  const samples = new Int16Array(n);
  for (let i = 0; i < n; i++) samples[i] = view.getInt16(o + 2 * i, true);
  return { lead, t, rate, scale, samples };
}

export class WaveTrace {
  constructor(canvas, lead) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.lead = lead;
    this.chunks = [];        // sorted by t, no two with the same t
    this.lags = [];          // [arrival, lag] of recent chunks
    this.offset = null;
    this.drawnTo = null;     // device time drawn up to
    this.lastY = null;       // the previous sample's y, for a continuous line
    this.lastT = null;
    this.lo = -1; this.hi = 1;  // the vertical scale (values)
    this.frames = 0;
  }

  add(chunk, arrival) {
    const end = chunk.t + (chunk.samples.length * 1000) / chunk.rate;
    if (this.chunks.some((c) => c.t === chunk.t)) return; // a re-send
    this.chunks.push(chunk);
    this.chunks.sort((a, b) => a.t - b.t);
    this.lags.push([arrival, arrival - end]);
    this.lags = this.lags.filter(([at]) => arrival - at < OFFSET_MEMORY_MS);
    this.offset = Math.min(...this.lags.map(([, lag]) => lag));
    this._rescale(chunk);
    if (this.drawnTo !== null && chunk.t < this.drawnTo) this._redrawLate(chunk);
  }

  _rescale(chunk) {
    if (this.lead === "ecg_ii") { this.lo = -1.5; this.hi = 2.0; return; }  // mV, as a monitor shows lead II
    let lo = Infinity, hi = -Infinity;
    for (const s of chunk.samples) { const v = s * chunk.scale; if (v < lo) lo = v; if (v > hi) hi = v; }
    if (hi > lo) { this.lo = Math.min(this.lo, lo); this.hi = Math.max(this.hi, hi); }
  }

  _x(t) { return (((t % WINDOW_MS) + WINDOW_MS) % WINDOW_MS) / WINDOW_MS * this.canvas.width; }

  _y(v) {
    const h = this.canvas.height;
    return h - 6 - ((v - this.lo) / (this.hi - this.lo || 1)) * (h - 12);
  }

  /** Draw everything due by wall time ``now``. */
  draw(now) {
    if (this.offset === null) return;
    const playT = now - this.offset - DELAY_MS;
    if (this.drawnTo === null) this.drawnTo = playT - 1;
    if (playT <= this.drawnTo) return;
    if (playT - this.drawnTo > WINDOW_MS) this.drawnTo = playT - WINDOW_MS;  // the tab slept: start a fresh sweep
    this._erase(this.drawnTo, playT + ERASE_MS);
    this._segment(this.drawnTo, playT);
    this.drawnTo = playT;
    this.chunks = this.chunks.filter((c) => c.t + (c.samples.length * 1000) / c.rate > playT - WINDOW_MS);
    this.frames++;
  }

  _erase(from, to) {
    const ctx = this.ctx, w = this.canvas.width, h = this.canvas.height;
    const x0 = this._x(from), x1 = this._x(to);
    ctx.fillStyle = "#0b0e12";
    if (x1 >= x0) ctx.fillRect(x0, 0, x1 - x0 + 1, h);
    else { ctx.fillRect(x0, 0, w - x0, h); ctx.fillRect(0, 0, x1 + 1, h); }
  }

  /** The samples with device time in (from, to], as one line broken where samples are missing or the sweep wraps. */
  _segment(from, to) {
    const ctx = this.ctx;
    ctx.strokeStyle = this.lead === "ecg_ii" ? "#51cf66" : "#74c0fc";
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (const c of this.chunks) {
      const dt = 1000 / c.rate;
      const end = c.t + c.samples.length * dt;
      if (end <= from || c.t > to) continue;
      const i0 = Math.max(0, Math.ceil((from - c.t) / dt));
      for (let i = i0; i < c.samples.length; i++) {
        const t = c.t + i * dt;
        if (t > to) break;
        if (t <= from) continue;
        const x = this._x(t), y = this._y(c.samples[i] * c.scale);
        const joined = this.lastT !== null && t - this.lastT <= 3 * dt && x >= this._x(this.lastT);
        if (joined) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        this.lastT = t; this.lastY = y;
      }
    }
    ctx.stroke();
  }

  /** A chunk that came after its place was swept: draw it there (it fills the gap it left). */
  _redrawLate(chunk) {
    const end = chunk.t + (chunk.samples.length * 1000) / chunk.rate;
    if (end < this.drawnTo - WINDOW_MS + ERASE_MS) return;  // already scrolled away
    const saveT = this.lastT;
    this.lastT = null;
    const only = this.chunks;
    this.chunks = [chunk];
    this._segment(chunk.t - 1, Math.min(end, this.drawnTo));
    this.chunks = only;
    this.lastT = saveT;
  }
}
