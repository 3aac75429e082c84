"""The MQTT transport's own bookkeeping, without a broker (the broker tests are in tests/integration/test_mqtt_broker.py).

A connection that ends while aiomqtt's queue still holds messages (a broker that
sends and goes away at once) must not lose them: the client acknowledged them on
receipt, so the broker will not send them again. That moment cannot be produced
on demand with a real broker, so the queue is filled here by hand.
"""

from __future__ import annotations

import asyncio

import aiomqtt

from edge_agent.transports.mqtt import BrokerAddress, MqttDevice, _bounded_queue


def test_messages_left_in_an_ended_connections_queue_are_delivered_in_order() -> None:
    got: list[tuple[str, bytes]] = []
    dev = MqttDevice("gw", BrokerAddress("127.0.0.1", 1883), ("t/#",), lambda topic, payload: got.append((topic, payload)),
                     client_id="teleicu-test")  # fmt: skip

    async def main() -> None:
        queue = _bounded_queue(dev)(maxsize=10)  # what aiomqtt builds for each connection; it registers itself
        for n in range(3):
            queue.put_nowait(aiomqtt.Message(f"t/bed{n}/vitals", b'{"values": {"hr": %d}}' % n, 1, False, n + 1, None))
        dev._drain_received()
        dev._drain_received()  # once only: the queue belongs to the ended connection

    asyncio.run(main())
    assert got == [(f"t/bed{n}/vitals", b'{"values": {"hr": %d}}' % n) for n in range(3)]
    assert dev.messages == 3 and dev.dropped == 0
