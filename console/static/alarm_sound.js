// teleicu console: alarm sound through Web Audio, after the user turns it on.
//
// Browsers only allow sound after a click on the page, so sound starts muted and
// the console shows that; one click on the sound button creates the audio
// context. Tones follow the IEC 60601-1-8 pattern: each pulse is a tone with
// harmonics (a fundamental of 150-1000 Hz with several harmonics), high priority
// is a burst of 10 pulses (3 + 2, pause, 3 + 2), medium a burst of 3 slower ones.

const FUNDAMENTAL_HZ = 523;     // C5
const HARMONICS = [1, 0.5, 0.33, 0.25, 0.2];  // fundamental + four harmonics, amplitude falling

/** Pulse onsets (s from the burst's start) and pulse length for each priority. */
const BURSTS = {
  high: { onsets: [0, 0.25, 0.5, 1.0, 1.25, 2.25, 2.5, 2.75, 3.25, 3.5], pulse: 0.15, pitch: [1, 1.26, 1.5, 1.26, 1.5, 1, 1.26, 1.5, 1.26, 1.5] },
  medium: { onsets: [0, 0.4, 0.8], pulse: 0.2, pitch: [1, 1.26, 1.5] },
};
const RISE_S = 0.02;            // pulse rise and fall: no clicks

let ctx = null;
let enabled = false;
let wave = null;

export function soundOn() {
  return enabled;
}

/** Turn sound on (creating the audio context inside the click that asked for it) or off. */
export async function setSound(on) {
  enabled = !!on;
  if (!enabled) return false;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) { enabled = false; return false; }
  if (!ctx) ctx = new Ctx();
  if (ctx.state === "suspended") { try { await ctx.resume(); } catch { /* stays suspended: nothing plays */ } }
  return true;
}

function harmonicWave() {
  if (!wave) {
    const real = new Float32Array(HARMONICS.length + 1);
    const imag = new Float32Array([0, ...HARMONICS]);
    wave = ctx.createPeriodicWave(real, imag);
  }
  return wave;
}

function pulse(at, freq, length, out) {
  const osc = ctx.createOscillator();
  osc.setPeriodicWave(harmonicWave());
  osc.frequency.value = freq;
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0, at);
  gain.gain.linearRampToValueAtTime(0.25, at + RISE_S);
  gain.gain.setValueAtTime(0.25, at + length - RISE_S);
  gain.gain.linearRampToValueAtTime(0, at + length);
  osc.connect(gain).connect(out);
  osc.start(at);
  osc.stop(at + length + 0.01);
}

/** Play one burst for `priority` ("high" | "medium"); false when sound is off or not possible. */
export function playBurst(priority) {
  const b = BURSTS[priority];
  if (!enabled || !ctx || !b) return false;
  const t0 = ctx.currentTime + 0.05;
  b.onsets.forEach((dt, i) => pulse(t0 + dt, FUNDAMENTAL_HZ * b.pitch[i], b.pulse, ctx.destination));
  return true;
}
