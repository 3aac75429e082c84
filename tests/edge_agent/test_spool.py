"""The edge spool on a real SQLite file: durability across reopen, acknowledgement, size policy."""

from pathlib import Path

from edge_agent.spool import KIND_OBS, KIND_WAVE, Spool


def test_frames_survive_reopen_with_epoch_and_sequence(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.sqlite3")
    epoch = sp.epoch
    seqs = [sp.next_seq + i for i in range(3)]
    sp.append([(s, KIND_OBS, b"x" * 10) for s in seqs])
    sp.close()
    again = Spool(tmp_path / "s.sqlite3")
    assert again.epoch == epoch and again.next_seq == seqs[-1] + 1
    assert [s for s, _ in again.read(0, 10**9, 100)] == seqs
    assert again.stats.frames == 3 and again.stats.bytes == 30


def test_acknowledge_watermark_and_individual_frames(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.sqlite3")
    sp.append([(s, KIND_OBS, b"abcd") for s in range(1, 11)])
    sp.acknowledge(3, also=(7, 9, 42))
    assert [s for s, _ in sp.read(0, 100, 100)] == [4, 5, 6, 8, 10]
    assert sp.stats.frames == 5 and sp.stats.bytes == 20
    assert [s for s, _ in sp.read(4, 9, 100)] == [5, 6, 8]


def test_size_limit_drops_waveforms_first_then_oldest_numerics(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.sqlite3", max_bytes=1000)
    sp.append([(1, KIND_OBS, b"o" * 300), (2, KIND_WAVE, b"w" * 300), (3, KIND_OBS, b"o" * 300)])
    sp.append([(4, KIND_WAVE, b"w" * 300)])  # 1200 bytes: the oldest waveform goes
    assert [s for s, _ in sp.read(0, 100, 100)] == [1, 3, 4]
    assert (sp.stats.dropped_wave_frames, sp.stats.dropped_obs_frames) == (1, 0)
    sp.append([(5, KIND_OBS, b"o" * 300), (6, KIND_OBS, b"o" * 300)])  # waveforms go first, then the oldest numerics
    assert [s for s, _ in sp.read(0, 100, 100)] == [3, 5, 6]
    assert (sp.stats.dropped_wave_frames, sp.stats.dropped_obs_frames) == (2, 1)
    assert sp.stats.bytes == 900
    sp.close()
    again = Spool(tmp_path / "s.sqlite3", max_bytes=1000)
    assert again.report()["dropped_frames"] == 3 and again.stats.bytes == 900
