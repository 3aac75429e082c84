// teleicu console: a bed's recent trend of one vital, for the census tile's sparkline.
//
// The console already receives every bed's latest values (about once a second per bed); a Spark keeps
// them in a bounded ring of time buckets (the mean of each 10 s bucket over the last 30 min: 180 numbers
// per bed, whatever the feed rate) and draws them on a small canvas. Nothing is asked of the hub.

export const BUCKET_MS = 10_000;
export const WINDOW_MS = 30 * 60_000;
const SLOTS = WINDOW_MS / BUCKET_MS;

export class Spark {
  constructor() {
    this.sum = new Float64Array(SLOTS);
    this.n = new Uint16Array(SLOTS);
    this.bucketOf = new Float64Array(SLOTS).fill(-1);  // which bucket (time / BUCKET_MS) each slot holds
    this.lastT = -Infinity;    // device time of the last sample taken (a repeated value is not counted twice)
    this.lastBucket = -1;
    this.drawnBucket = -1;     // the newest bucket when last drawn
    this.drawnDim = null;
  }

  /** One measured value at server time `t` (ms). Returns true when a bucket closed (worth a redraw). */
  push(t, value) {
    if (!Number.isFinite(t) || !Number.isFinite(value) || t <= this.lastT + 500) return false;
    this.lastT = t;
    const b = Math.floor(t / BUCKET_MS);
    const i = b % SLOTS;
    if (this.bucketOf[i] !== b) { this.bucketOf[i] = b; this.sum[i] = 0; this.n[i] = 0; }
    this.sum[i] += value;
    this.n[i] = Math.min(this.n[i] + 1, 65535);
    const closed = b !== this.lastBucket;
    this.lastBucket = Math.max(this.lastBucket, b);
    return closed;
  }

  /** [[bucket start ms, mean]] over the window ending at `now`, oldest first. */
  points(now) {
    const out = [];
    const last = Math.floor(now / BUCKET_MS);
    for (let b = last - SLOTS + 1; b <= last; b++) {
      const i = ((b % SLOTS) + SLOTS) % SLOTS;
      if (this.bucketOf[i] === b && this.n[i] > 0) out.push([b * BUCKET_MS, this.sum[i] / this.n[i]]);
    }
    return out;
  }

  /** Is a redraw due (a new bucket, or the dimmed state changed)? */
  due(dim) {
    return this.lastBucket !== this.drawnBucket || dim !== this.drawnDim;
  }

  /** Draw the window ending at `now` on `canvas`; a gap of more than two buckets breaks the line. Returns [min, max, count]. */
  draw(canvas, now, dim) {
    this.drawnBucket = this.lastBucket;
    this.drawnDim = dim;
    const ctx = canvas.getContext("2d");
    const w = canvas.width, hgt = canvas.height;
    ctx.clearRect(0, 0, w, hgt);
    const pts = this.points(now);
    if (!pts.length) return [null, null, 0];
    let lo = Infinity, hi = -Infinity;
    for (const [, v] of pts) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const span = Math.max(hi - lo, 10);  // a flat line stays flat, not noise blown up to full height
    const mid = (hi + lo) / 2;
    const pad = 2;
    const x = (t) => ((t - (now - WINDOW_MS)) / WINDOW_MS) * (w - 2 * pad) + pad;
    const y = (v) => hgt / 2 - ((v - mid) / span) * (hgt - 2 * pad);
    ctx.lineWidth = Math.max(1, Math.round(hgt / 20));
    ctx.strokeStyle = dim ? "#5c6673" : "#69db7c";
    ctx.beginPath();
    let prevT = -Infinity;
    for (const [t, v] of pts) {
      if (t - prevT > 2 * BUCKET_MS) ctx.moveTo(x(t), y(v)); else ctx.lineTo(x(t), y(v));
      prevT = t;
    }
    if (pts.length === 1) ctx.lineTo(x(pts[0][0]) + 2, y(pts[0][1]));
    ctx.stroke();
    return [lo, hi, pts.length];
  }
}
