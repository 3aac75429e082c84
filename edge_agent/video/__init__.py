"""Live bedside video: the edge publishes each bed's camera over WebRTC and plays talk-back audio at the bedside.

The hub only relays signalling (``wire.video_signal``); media flows peer to
peer or through the TURN relay. ``publisher`` keeps the sessions, ``sources``
opens one shared camera per bed, ``talkback`` plays what the console says,
``signalling_link`` is the agent's WebSocket to the hub's ``/ws/edge/video``
and ``test_pattern`` is the simulator camera whose frames can be read back.
"""
