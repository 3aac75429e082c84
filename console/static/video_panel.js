// teleicu console: a bed's live video panel, with push-to-talk.
//
// The hub only relays signalling (/ws/video?bed=<id>; messages in wire/video_signal.py): the bed's camera gateway
// offers, this page answers, and media flows peer to peer or through the TURN relay the hub names (with short-lived
// credentials). The stream runs only while the panel is open: closing it, leaving the page or hiding it hangs up,
// and the gateway stops the camera when nobody is left watching. Every state is said in words: connecting, live,
// reconnecting, failed with its reason. Video never touches the vitals on the page; a failure here is shown here.

const RETRIES = 4; // a dropped signalling socket is reopened this many times, 2 s apart, before "failed"

export class VideoPanel {
  constructor({ bed, api, root }) {
    this.bed = bed;
    this.api = api;
    this.root = root;
    this.$ = (sel) => root.querySelector(sel);
    this.ws = null;
    this.pc = null;
    this.mic = null;
    this.talking = false;
    this.open = false;
    this.retries = 0;
    this.talkback = false;
    this.$(".video-open").addEventListener("click", () => (this.open ? this.close("closed") : this.start()));
    const talk = this.$(".video-talk");
    const down = (ev) => { ev.preventDefault(); this.talk(true); };
    const up = () => this.talk(false);
    talk.addEventListener("pointerdown", down);
    talk.addEventListener("pointerup", up);
    talk.addEventListener("pointerleave", up);
    talk.addEventListener("keydown", (ev) => { if ((ev.key === " " || ev.key === "Enter") && !ev.repeat) down(ev); });
    talk.addEventListener("keyup", (ev) => { if (ev.key === " " || ev.key === "Enter") up(); });
    addEventListener("pagehide", () => this.close("closed"));
    document.addEventListener("visibilitychange", () => { if (document.hidden && this.open) this.close("paused while the page was hidden"); });
  }

  async refresh() {
    const res = await this.api(`/api/beds/${encodeURIComponent(this.bed)}/video`);
    if (!res.ok) return this.say("failed", `Video status unavailable (${res.status}).`);
    const v = await res.json();
    this.$(".video-open").disabled = !v.camera && !this.open;
    if (!this.open) {
      this.say(v.camera ? "idle" : "none", v.camera
        ? `Camera ready${v.viewers ? ` · ${v.viewers} watching` : ""}. Video starts only when you open it.`
        : "No camera gateway is connected for this bed.");
    }
  }

  say(state, text) {
    this.root.dataset.video = state;
    this.$(".video-state").textContent = text;
  }

  start() {
    this.open = true;
    this.retries = 0;
    this.$(".video-open").textContent = "Close video";
    this.$(".video-open").disabled = false;
    this.connect();
  }

  connect() {
    this.say("connecting", "Connecting…");
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/video?bed=${encodeURIComponent(this.bed)}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    let ended = false; // the hub said the session is over (hang-up or failure): no reconnect
    ws.onmessage = async (ev) => {
      const msg = JSON.parse(ev.data);
      try {
        if (msg.type === "session") await this.onSession(msg);
        else if (msg.type === "offer") await this.onOffer(msg);
        else if (msg.type === "candidate" && this.pc && msg.candidate) await this.pc.addIceCandidate({ candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex });
        else if (msg.type === "state") this.onState(msg);
        else if (msg.type === "hangup") { ended = true; if (this.root.dataset.video !== "failed") this.fail(msg.reason || "the video ended"); }
      } catch (err) {
        ended = true;
        this.fail(`this browser could not take the video: ${err.message || err}`);
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws || !this.open || ended) return;
      this.teardown(false);
      if (ev.code === 4401 || ev.code === 1008) return this.fail("your session ended or this bed is no longer yours: sign in again");
      if (this.retries++ >= RETRIES) return this.fail("the hub cannot be reached");
      this.say("reconnecting", "Reconnecting…");
      setTimeout(() => { if (this.open) this.connect(); }, 2000);
    };
  }

  async onSession(msg) {
    this.talkback = msg.talkback;
    this.$(".video-talk").hidden = !msg.talkback;
    this.$(".video-talk-note").textContent = msg.talkback ? "" : "Talk-back is off for this bed or not for your role.";
    const pc = new RTCPeerConnection({ iceServers: msg.ice_servers });
    this.pc = pc;
    pc.ontrack = (ev) => {
      if (ev.track.kind !== "video") return;
      const video = this.$("video");
      video.srcObject = new MediaStream([ev.track]);
      video.hidden = false;
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate && this.ws?.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "candidate", candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid, sdpMLineIndex: ev.candidate.sdpMLineIndex }));
      }
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === "connected") { this.retries = 0; this.say("live", "Live"); }
      else if (pc.connectionState === "disconnected") this.say("reconnecting", "Reconnecting… (the network path was lost)");
      else if (pc.connectionState === "failed") this.fail("ICE failed: no network path to the camera (is the TURN relay running?)");
    };
  }

  async onOffer(msg) {
    const pc = this.pc;
    await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    const audio = pc.getTransceivers().find((t) => t.receiver.track.kind === "audio");
    if (audio && this.talkback) {
      try {
        this.mic = this.mic || await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
        const track = this.mic.getAudioTracks()[0];
        track.enabled = false; // silent until push-to-talk
        audio.direction = "sendonly";
        await audio.sender.replaceTrack(track);
      } catch (err) {
        this.$(".video-talk").hidden = true;
        this.$(".video-talk-note").textContent = `Talk-back unavailable: no microphone (${err.name || err}).`;
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    this.ws.send(JSON.stringify({ type: "answer", sdp: pc.localDescription.sdp }));
  }

  onState(msg) {
    if (msg.state === "failed") return this.fail(msg.reason);
    if (msg.state === "live") return this.say("live", "Live");
    if (msg.reason) this.$(".video-talk-note").textContent = msg.reason;
    else this.say(msg.state, msg.state === "connecting" ? "Connecting…" : "Reconnecting…");
  }

  talk(on) {
    const track = this.mic?.getAudioTracks()[0];
    if (!this.talkback || !track || this.talking === on || this.ws?.readyState !== WebSocket.OPEN) return;
    this.talking = on;
    track.enabled = on;
    this.$(".video-talk").setAttribute("aria-pressed", String(on));
    this.$(".video-talk").textContent = on ? "Talking… release to stop" : "Hold to talk";
    this.ws.send(JSON.stringify({ type: "talk", on }));
  }

  fail(reason) {
    this.teardown(true);
    this.open = false;
    this.$(".video-open").textContent = "Open video";
    this.say("failed", `Video failed: ${reason}`);
  }

  close(why) {
    if (!this.open) return;
    this.open = false;
    this.teardown(true);
    this.$(".video-open").textContent = "Open video";
    this.say("idle", why === "closed" ? "Video closed." : `Video ${why}.`);
    this.refresh();
  }

  teardown(hangUp) {
    this.talk(false);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      if (hangUp && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "hangup" }));
      ws.close();
    }
    if (this.pc) this.pc.close();
    this.pc = null;
    for (const t of this.mic?.getTracks() || []) t.stop();
    this.mic = null;
    const video = this.$("video");
    video.srcObject = null;
    video.hidden = true;
    this.$(".video-talk").hidden = true;
  }
}
