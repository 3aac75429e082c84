"""A bed's detail page in Debian's Chromium against a real hub fed by a real edge connection.

An edge connection streams one bed's vitals (1 Hz) and ECG lead II (250 Hz in 200 ms chunks) while an intensivist
opens /bed/A-01 from the census: she sees the admitted patient, an ECG trace that advances from frame to frame,
trend charts holding exactly the points the trend API returns, the NEWS2 breakdown, the ward's limits, and she
charts consciousness through the form, which the hub then holds as hers. A screenshot is kept.
"""

from __future__ import annotations

import math
import threading
import time

import pytest
from browser_support import launched_chromium, screenshot, sign_in_through_the_page
from support import PASSWORD, HubProcess, get_json, post_json, wait_until
from websockets.sync.client import connect

from wire.codec import decode_hub, encode_edge
from wire.messages import Hello, ObsFrame, Observation, WaveChunk

pytestmark = pytest.mark.integration

def ecg(t_ms: float) -> float:
    """A plausible lead II shape at 75/min, in mV: a narrow R wave and a broad T wave."""
    phase = (t_ms % 800) / 800
    return 1.4 * math.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.25 * math.exp(-(((phase - 0.6) / 0.05) ** 2)) - 0.1


def stream(hub: HubProcess, stop: threading.Event) -> None:
    """Bed A-01's monitor through an edge connection until ``stop``: vitals each second, ECG every 200 ms."""
    beds = ("A-01",)
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", beds)) as ws:
        ws.send(encode_edge(Hello("edge-A", 1, "A", beds)).decode())
        decode_hub(ws.recv(timeout=10))
        seq, t0 = 0, time.time_ns() // 1_000_000
        k = 0
        while not stop.is_set():
            t = t0 + k * 200
            seq += 1
            ws.send(encode_edge(WaveChunk(seq, "A-01", "ecg_ii", t, 250, 0.005, tuple(round(ecg(t + i * 4) / 0.005) for i in range(50)))))
            if k % 5 == 0:
                seq += 1
                vitals = {"hr": 75 + (k // 5) % 7, "spo2": 94, "rr": 21, "nibp_sys": 104, "temp": 38.4}
                ws.send(encode_edge(ObsFrame(seq, tuple(Observation("A-01", p, v, t, t, "mon") for p, v in vitals.items()))).decode())
            k += 1
            while True:  # drain acknowledgements without waiting for them
                try:
                    decode_hub(ws.recv(timeout=0))
                except TimeoutError:
                    break
            stop.wait(max(0.0, (t0 + k * 200 - time.time_ns() // 1_000_000) / 1000))


def test_the_bed_detail_page_shows_the_patient_live_ecg_trends_and_charts(hub: HubProcess) -> None:
    stop = threading.Event()
    feeder = threading.Thread(target=stream, args=(hub, stop), daemon=True)
    feeder.start()
    try:
        wait_until(lambda: "hr" in get_json(f"{hub.base}/api/beds/A-01")["vitals"], "bed A-01 on the census")
        status, body = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": "MRN-8801", "name": "Sunita Sharma", "sex": "female",
                                                                           "birth_date": "1961-07-14"}, "bed": "A-01"})  # fmt: skip
        assert status == 201, body
        with launched_chromium() as browser:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((hub.base, "data:", "ws://127.0.0.1")) else None)
            sign_in_through_the_page(page, hub.base, "intensivist", PASSWORD, "/bed/A-01")  # not signed in: the sign-in page, then back
            page.wait_for_selector(".patient-name", timeout=15_000)
            assert page.text_content(".patient-name") == "Sunita Sharma"
            assert "°C" in page.text_content("#vitals")  # temperature as clinicians write it, not "Cel"

            # the ECG advances: the canvas differs between two moments a few frames apart
            page.wait_for_selector("#wave-ecg_ii", timeout=15_000)
            ink = """() => { const c = document.querySelector('#wave-ecg_ii');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 150 && d[i] < 120) n++; return n; }"""
            page.wait_for_function(f"() => ({ink})() > 200", timeout=10_000)  # a trace is drawn (green pixels)
            first = page.evaluate("() => document.querySelector('#wave-ecg_ii').toDataURL()")
            page.wait_for_function("(first) => document.querySelector('#wave-ecg_ii').toDataURL() !== first", arg=first,
                                   timeout=5_000)  # and it moves  # fmt: skip

            # the heart-rate trend holds exactly what the trend API returns for the same period
            page.wait_for_function("() => document.body.dataset.trendsLoaded", timeout=15_000)
            box = page.query_selector("#trend-hr")
            assert box is not None
            since, until = int(box.get_attribute("data-since") or 0), int(box.get_attribute("data-until") or 0)
            api = get_json(f"{hub.base}/api/beds/A-01/trend?param=hr&since={since}&until={until}")
            valid = [p for p in api["points"] if p["value"] is not None and p["flags"] == 0]
            assert valid and int(box.get_attribute("data-points") or -1) == len(valid)
            assert float(box.get_attribute("data-last") or "nan") == valid[-1]["value"]

            # the NEWS2 breakdown and the ward's limits
            assert "NEWS2" in page.text_content("#scores") and "Temperature" in page.text_content("#scores")
            assert page.query_selector("#limit-rows tr") is not None

            # charting consciousness through the form: the hub holds it, as hers
            page.select_option("#chart-param", "acvpu")
            page.select_option("#chart-choice", "V")
            page.click("#chart-form button[type=submit]")
            page.wait_for_function("() => document.querySelector('#chart-status').dataset.ok === 'true'", timeout=10_000)
            vitals = get_json(f"{hub.base}/api/beds/A-01")["vitals"]
            assert vitals["acvpu"]["value"] == 2 and vitals["acvpu"]["charted_by"] == "intensivist"

            page.evaluate("() => window.scrollTo(0, 0)")
            screenshot(page, "bed-detail-1600x1000")
            assert not errors, errors
            assert not outside, f"requests left the hub: {outside[:5]}"
    finally:
        stop.set()
        feeder.join(10)
