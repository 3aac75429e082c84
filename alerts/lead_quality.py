"""The signal quality of one waveform lead of one bed, as the hub's signal-processing worker reports it.

The worker analyses the last ~10 s of each ECG and pleth (SpO2 plethysmogram)
lead every ~2 s (``alerts.waveforms.quality``, which makes these) and hands the
alarm engine its verdict (``AlarmEngine.set_lead_quality``). The engine only reads it: which lead is
good, what rate it shows, and, when poor, why in words a nurse can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ECG, PLETH = "ecg", "pleth"
SIGNALS = (ECG, PLETH)


@dataclass(frozen=True, slots=True)
class LeadQuality:
    """One lead's quality over one window. ``indices``: the named SQIs (``bsqi``, ``ksqi``, ``psqi``, ``bas_sqi``,
    ``amplitude``, ``since_last_beat_s`` for ECG; ``template_sqi``, ``skew_sqi``, ``amplitude``, ``pulses``, ``gap_s``,
    ``since_last_pulse_s`` for pleth). ``since_last_*_s``: seconds from the last beat (pulse) to ``t_end``, the window's
    length when there was none in it."""

    signal: str  # "ecg" or "pleth"
    t_end: int  # ms since epoch, end of the analysed window
    window_s: float
    good: bool  # combined verdict of the quality indices
    sqi: float  # 0..1
    rate: float | None  # beats/min: heart rate from ECG, pulse rate from pleth
    indices: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # when poor, in words: "ECG noisy (motion?)", "pleth flat (probe off?)"
