"""Cameras in the edge YAML: defaults, and each mistake named with its key path."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.config import CameraConfig, EdgeConfigError, parse_edge_config, video_url


def base(cameras: Any = None, **more: Any) -> dict:
    raw = {"agent": {"id": "edge-A", "ward": "A"}, "hub": {"url": "ws://127.0.0.1:8080/ws/edge", "secret_file": "edge.secret"},
           "devices": [{"bed": "A-01", "id": "m1", "driver": "tsp", "port": "/dev/ttyUSB0"}], **more}  # fmt: skip
    if cameras is not None:
        raw["cameras"] = cameras
    return raw


def test_no_cameras_by_default() -> None:
    cfg = parse_edge_config(base())
    assert cfg.cameras == () and cfg.video.max_sessions == 8


def test_camera_defaults_suit_a_district_uplink() -> None:
    cfg = parse_edge_config(base([{"bed": "A-01", "source": "testpattern"}], video={"max_sessions": 3}))
    assert cfg.cameras == (CameraConfig("A-01", "testpattern", 640, 480, 15, 500, True, "default"),)
    assert cfg.video.max_sessions == 3


@pytest.mark.parametrize("source", ["testpattern", "v4l2:/dev/video0", "rtsp://cam.icu/stream1", "rtsps://u:p@cam/s",
                                    "http://cam/mjpeg", "https://cam/x"])  # fmt: skip
def test_sources_accepted(source: str) -> None:
    assert parse_edge_config(base([{"bed": "A-01", "source": source}])).cameras[0].source == source


@pytest.mark.parametrize(
    ("cams", "message"),
    [
        ([{"bed": "A-01", "source": "testpattern", "fps": 0}], "cameras[0].fps: must be at least 1, not 0"),
        ([{"bed": "A-01", "source": "testpattern", "fps": 31}], "cameras[0].fps: must be at most 30, not 31"),
        ([{"bed": "A-01", "source": "testpattern", "fps": "15"}], "cameras[0].fps: must be a whole number, not '15'"),
        ([{"bed": "A-01", "source": "/dev/video0"}], "cameras[0].source: must be testpattern, v4l2:/dev/videoN or an rtsp://"),
        ([{"bed": "A-01", "source": "v4l2:video0"}], "cameras[0].source: must be testpattern"),
        ([{"bed": "A-01", "source": "testpattern", "width": 641}], "cameras[0].width: must be even"),
        ([{"bed": "A-01", "source": "testpattern", "height": 100}], "cameras[0].height: must be at least 240, not 100"),
        ([{"bed": "A-01", "source": "testpattern", "bitrate_kbps": 50}], "cameras[0].bitrate_kbps: must be at least 100, not 50"),
        ([{"bed": "A-01", "source": "testpattern", "talkback": "yes"}], "cameras[0].talkback: must be true or false, not 'yes'"),
        ([{"bed": "A-01", "source": "testpattern", "talkback_output": "speaker"}],
         "cameras[0].talkback_output: must be default, none or wav:/path/file.wav, not 'speaker'"),
        ([{"bed": "A-01", "source": "testpattern", "colour": True}], "cameras[0]: unknown keys ['colour']; expected bed, source,"),
        ([{"source": "testpattern"}], "cameras[0]: missing bed"),
        ([{"bed": "A-01", "source": "testpattern"}, {"bed": "A-01", "source": "v4l2:/dev/video1"}],
         "cameras[1].bed: bed 'A-01' has a camera already: one camera per bed"),
        ({"bed": "A-01"}, "cameras: must be a list"),
    ],
)
def test_camera_mistakes_are_named(cams: Any, message: str) -> None:
    with pytest.raises(EdgeConfigError) as info:
        parse_edge_config(base(cams), "edge-A.yaml")
    assert str(info.value).startswith(f"edge-A.yaml: {message}"), str(info.value)


def test_video_section_checked() -> None:
    with pytest.raises(EdgeConfigError, match=r"video.max_sessions: must be at least 1, not 0"):
        parse_edge_config(base(video={"max_sessions": 0}))


def test_cameras_need_a_hub_url_ending_in_ws_edge() -> None:
    raw = base([{"bed": "A-01", "source": "testpattern"}])
    raw["hub"]["url"] = "wss://hub.example/edge"
    with pytest.raises(EdgeConfigError, match=r"hub.url: must end in /ws/edge for video"):
        parse_edge_config(raw)


def test_video_url_is_beside_the_edge_socket() -> None:
    assert video_url("wss://hub.example:8443/ws/edge") == "wss://hub.example:8443/ws/edge/video"
    assert video_url("ws://10.0.0.2/teleicu/ws/edge/?x=1") == "ws://10.0.0.2/teleicu/ws/edge/video?x=1"
