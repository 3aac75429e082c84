// teleicu OPD token board: the chime that announces a call, through Web Audio, once the user turns sound on.
//
// Browsers allow sound only after a click, so the board starts silent and the
// "Turn sound on" button creates the audio context inside that click. A call is
// a soft two-note chime (rising), unlike the console's alarm bursts.

const NOTES_HZ = [660, 880];
const NOTE_S = 0.35;
const GAP_S = 0.12;
const RAMP_S = 0.02;

let ctx = null;
let on = false;

export function toneOn() {
  return on;
}

/** Turn the chime on (creating the audio context inside the click) or off; returns whether it is on. */
export async function setTone(wanted) {
  on = !!wanted;
  if (!on) return false;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) { on = false; return false; }
  if (!ctx) ctx = new Ctx();
  if (ctx.state === "suspended") { try { await ctx.resume(); } catch { /* stays silent */ } }
  return true;
}

/** Play the call chime; false when sound is off. */
export function chime() {
  if (!on || !ctx) return false;
  const t0 = ctx.currentTime + 0.03;
  NOTES_HZ.forEach((hz, i) => {
    const at = t0 + i * (NOTE_S + GAP_S);
    const osc = ctx.createOscillator();
    osc.type = "sine";
    osc.frequency.value = hz;
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(0.3, at + RAMP_S);
    gain.gain.setValueAtTime(0.3, at + NOTE_S - RAMP_S);
    gain.gain.linearRampToValueAtTime(0, at + NOTE_S);
    osc.connect(gain).connect(ctx.destination);
    osc.start(at);
    osc.stop(at + NOTE_S + 0.01);
  });
  return true;
}
